"""Incoming LivionKey notifications turned into trigger events.

- API V1 "push notification service": flat JSON, no signature; the integrator may ask Livion to
  send a custom header (e.g. ``x-api-key``), which the connection can require.
- API V2 webhooks: Standard Webhooks envelope and signature; the event id is ``webhook-id``,
  which stays the same across retries, so the engine's dedupe drops redeliveries.

Which trigger an event starts is the connection's ``eventTypes`` setting over the defaults in
``assumptions``; an event that starts none is returned as ``UnmappedEvent`` (kept as dropped).
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from latchflow import (
    JSON,
    Connection,
    TriggerEvent,
    UnmappedEvent,
    WebhookError,
    WebhookRequest,
    map_event,
)
from latchflow_livionkey import standard_webhooks
from latchflow_livionkey.assumptions import (
    V1_EVENT_TYPES,
    V1_WEBHOOK_HEADER,
    V2_EVENT_TYPES,
    V2_WEBHOOK_TOLERANCE_SECONDS,
)

V1_CONTRACT_TYPES = ("default", "fetch", "return")
V1_CODE_TYPES = ("right-pincode", "right-return-code", "right-access-code")
V1_CONTRACT_FIELDS = (
    "pincode",
    "contractId",
    "contractObjectId",
    "time",
    "start",
    "end",
    "deviceId",
    "keyId",
    "tag",
)
TEST_DEVICE_ID = "000000"  # V2 §7: activation test deliveries use this placeholder device
Event = TriggerEvent | UnmappedEvent


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise WebhookError("the body is not JSON", status_code=400) from exc


def v1_key_status(data: JSON) -> tuple[str, JSON]:
    """A V1 key-status notification (pushed or polled) as an event id and the event's data."""
    event = {
        "deviceId": str(data.get("deviceId")),
        "keyId": str(data.get("keyId")),
        "lockerIndex": None if data.get("lockerIndex") is None else str(data["lockerIndex"]),
        "contractId": data.get("contractId"),
        "contractObjectId": data.get("contractObjectId"),
        "state": data.get("state"),
        "time": str(data.get("time")),
        "tag": data.get("tag"),
    }
    # The same for a push and a poll of the same status change, so the engine dedupes them.
    return f"{event['deviceId']}:{event['keyId']}:{event['state']}:{event['time']}", event


def v1_event(connection: Connection, data: JSON) -> Event:
    """One V1 push as the event its type maps to (``eventTypes``), or as unmapped.

    The push's ``type`` is not always the event's name (V1 §7): it is the contract type for
    contract-update and the code type for code-entered.
    """
    kind = str(data.get("type"))
    if kind == "key-status":
        event_id, event = v1_key_status(data)
        vendor_type = f"key-status:{data.get('state')}"
    elif kind in V1_CONTRACT_TYPES:
        event = {"contractType": kind, **{k: data.get(k) for k in V1_CONTRACT_FIELDS}}
        event_id = ":".join(
            str(data.get(k)) for k in ("contractObjectId", "deviceId", "keyId", "time")
        )
        vendor_type = "contract-update"
    else:
        vendor_type = "code-entered" if kind in V1_CODE_TYPES else kind
        event = dict(data)
        event_id = ":".join(str(data.get(k)) for k in ("type", "deviceId", "time"))
    return map_event(connection, vendor_type, V1_EVENT_TYPES, event_id, event)


async def v1_webhook(request: WebhookRequest, connection: Connection) -> list[Event]:
    secret = connection.config.get("webhook_secret")
    if secret:
        name = str(connection.config.get("webhook_header") or V1_WEBHOOK_HEADER).lower()
        given = {k.lower(): v for k, v in request.headers.items()}.get(name, "")
        if not hmac.compare_digest(given.encode(), str(secret).encode()):
            raise WebhookError(f"missing or wrong {name} header", status_code=401)
    body = _parse(request.body)
    items = body if isinstance(body, list) else [body]
    if not all(isinstance(data, dict) for data in items):
        raise WebhookError("each notification must be a JSON object", status_code=400)
    return [v1_event(connection, data) for data in items]


async def v2_webhook(request: WebhookRequest, connection: Connection) -> list[Event]:
    secret = str(connection.config.get("webhook_secret") or "")
    if not secret:
        raise WebhookError(
            "this connection has no webhook_secret: paste the whsec_... secret LivionKey showed"
            " when the subscription was created",
            status_code=401,
        )
    try:
        msg_id = standard_webhooks.verify(
            secret,
            request.headers,
            request.body,
            connection.clock.now().timestamp(),
            V2_WEBHOOK_TOLERANCE_SECONDS,
        )
    except ValueError as exc:  # a malformed secret in the connection
        raise WebhookError(f"webhook_secret: {exc}", status_code=500) from exc
    envelope = _parse(request.body)
    if not isinstance(envelope, dict) or not isinstance(envelope.get("data"), dict):
        raise WebhookError("expected an envelope object with a 'data' object", status_code=400)
    data: JSON = envelope["data"]
    kind = str(envelope.get("type"))
    event = {
        **data,
        "eventId": msg_id,
        "eventType": kind,
        "occurredAt": envelope.get("occurredAt"),
        "organizationUnitId": envelope.get("organizationUnitId"),
    }
    if data.get("deviceId") == TEST_DEVICE_ID:
        # A subscription's signed test delivery: kept as dropped, so its arrival shows.
        reason = "a subscription's test delivery (it arrived: the webhook works); nothing runs"
        return [UnmappedEvent(kind, msg_id, event, reason)]
    vendor_type = f"key-status:{data.get('state')}" if kind == "key-status" else kind
    return [map_event(connection, vendor_type, V2_EVENT_TYPES, msg_id, event)]
