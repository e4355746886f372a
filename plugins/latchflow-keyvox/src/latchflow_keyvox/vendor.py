"""The KEYVOX vendor: connection settings, connection test, webhook handler, simulator, sandbox."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

from latchflow import (
    JSON,
    Connection,
    TriggerEvent,
    UnmappedEvent,
    Vendor,
    WebhookError,
    WebhookRequest,
    event_types_schema,
    map_event,
)
from latchflow_keyvox import assumptions as A
from latchflow_keyvox.client import DEFAULT_TIMEOUT_SECONDS, KeyvoxClient
from latchflow_keyvox.events import booking_from_webhook, lock_direction_of, lock_event

WEBHOOK_TRIGGERS = list(A.EVENT_TYPES.values())

CONNECTION_SCHEMA: JSON = {
    "type": "object",
    "required": ["apiKey", "apiSecret"],
    "properties": {
        "apiKey": {
            "type": "string",
            "minLength": 1,
            "description": "API key from the BACS console (Organization → Developer)",
        },
        "apiSecret": {
            "type": "string",
            "minLength": 1,
            "writeOnly": True,
            "description": "API secret shown once when the key is generated",
        },
        "baseUrl": {
            "type": "string",
            "format": "uri",
            "default": A.DEFAULT_BASE_URL,
            "description": "API base URL up to /v1 (the production eagle-pms path by default)",
        },
        "timeoutSeconds": {
            "type": "number",
            "minimum": 1,
            "maximum": 60,
            "default": DEFAULT_TIMEOUT_SECONDS,
            "description": (
                "How long one call may wait for KEYVOX's answer; a call that hangs longer is"
                " retried, so a few hung calls do not hold the connection's slots for long"
            ),
        },
        "eventTypes": event_types_schema(A.EVENT_TYPES, WEBHOOK_TRIGGERS),
    },
    "additionalProperties": False,
}


async def test_connection(connection: Connection) -> JSON:
    """Call getUnits: proves the key, the secret, the clock and the IP whitelist."""
    units = await KeyvoxClient(connection, "connection test").call("getUnits", {}) or []
    return {"ok": True, "units": len(units)}


async def webhook(
    request: WebhookRequest, connection: Connection
) -> list[TriggerEvent | UnmappedEvent]:
    """Unlock-history (JSON format) and reservation webhooks; KEYVOX does not sign them. The
    connection's ``eventTypes`` decides which trigger each event type starts."""
    try:
        body: Any = request.json()
    except ValueError:
        raise WebhookError("body is not JSON", status_code=400) from None
    if not isinstance(body, dict):
        raise WebhookError("body must be a JSON object", status_code=400)
    if "text" in body and "event" not in body:
        raise WebhookError(
            "this is the Text (Slack) webhook format; choose the JSON format for this webhook"
            " in the KEYVOX console (Developer → Webhook)",
            status_code=422,
        )
    vendor_type = str(body.get("event", ""))
    raw_id = hashlib.sha256(request.body).hexdigest()[:32]
    mapped = map_event(connection, vendor_type, A.EVENT_TYPES, raw_id, body)
    if isinstance(mapped, UnmappedEvent):
        return [UnmappedEvent(vendor_type, raw_id, _without_access(body))]
    event = _event_for(mapped.trigger, body)
    if event is None:
        raise WebhookError(
            f"a {vendor_type!r} event starts {mapped.trigger} but its data lacks"
            f" {'data.lockId' if lock_direction_of(mapped.trigger) else 'data.reservationCode'};"
            " if KEYVOX means another event by this type, map it in the connection's eventTypes",
            status_code=422,
        )
    return [event]


def _without_access(body: JSON) -> JSON:
    """A body kept as a dropped event: without the PINs and QR URLs of its ``accessInfo``."""
    data = body.get("data")
    if isinstance(data, dict) and "accessInfo" in data:
        return {**body, "data": {k: v for k, v in data.items() if k != "accessInfo"}}
    return body


def _event_for(trigger: str, body: JSON) -> TriggerEvent | None:
    direction = lock_direction_of(trigger)
    if direction is None:
        return booking_from_webhook(trigger, body)
    data = body.get("data")
    if not isinstance(data, dict) or not data.get("lockId"):
        return None
    item = {**data, "etime": body.get("eventTime", data.get("etime", 0))}
    return lock_event(
        direction,
        item,
        str(data["lockId"]),
        str(data.get("unitId") or ""),
        str(data.get("deviceName") or ""),
    )


def simulator() -> Any:
    from latchflow_keyvox.simulator import create_app

    return create_app()


async def sandbox(sim_base_url: str, webhook_url: str) -> JSON:
    """Register ``webhook_url`` with a running simulator; connection settings for its demo key."""
    base = sim_base_url.rstrip("/")
    async with httpx.AsyncClient(timeout=10.0) as http:
        response = await http.post(f"{base}/_sim/webhooks", json={"url": webhook_url})
        response.raise_for_status()
    return {
        "apiKey": A.SIM_DEMO_API_KEY,
        "apiSecret": A.SIM_DEMO_API_SECRET,
        "baseUrl": base + A.SIM_PREFIXES[1],
    }


KEYVOX = Vendor(
    key="keyvox",
    title="KEYVOX",
    description=(
        "KEYVOX (Blockchain Lock) smart locks, smart lockers, IC cards and reservation"
        " management, through the HMAC-signed eagle-pms API."
    ),
    connection_schema=CONNECTION_SCHEMA,
    test_connection=test_connection,
    webhook=webhook,
    simulator=simulator,
    sandbox=sandbox,
    max_concurrency=4,
)
