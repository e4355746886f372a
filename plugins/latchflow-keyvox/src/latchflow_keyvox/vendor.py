"""The KEYVOX vendor: connection settings, connection test, webhook handler, simulator, sandbox."""

from __future__ import annotations

from typing import Any

import httpx

from latchflow import JSON, Connection, TriggerEvent, Vendor, WebhookError, WebhookRequest
from latchflow_keyvox import assumptions as A
from latchflow_keyvox.client import KeyvoxClient
from latchflow_keyvox.events import booking_from_webhook, lock_event

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
    },
    "additionalProperties": False,
}


async def test_connection(connection: Connection) -> JSON:
    """Call getUnits: proves the key, the secret, the clock and the IP whitelist."""
    units = await KeyvoxClient(connection).call("getUnits", {}) or []
    return {"ok": True, "units": len(units)}


async def webhook(request: WebhookRequest, connection: Connection) -> list[TriggerEvent]:
    """Unlock-history (JSON format) and reservation webhooks; KEYVOX does not sign them."""
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
    event = str(body.get("event", ""))
    data = body.get("data")
    if event in A.UNLOCK_WEBHOOK_EVENTS and isinstance(data, dict) and data.get("lockId"):
        item = {A.HISTORY_ACTION_FIELD: event, "etime": body.get("eventTime"), **data}
        return [
            lock_event(
                item,
                str(data["lockId"]),
                str(data.get("unitId") or ""),
                str(data.get("deviceName") or ""),
            )
        ]
    booking = booking_from_webhook(body)
    return [booking] if booking is not None else []


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
