"""Incoming LivionKey notifications turned into trigger events.

- API V1 "push notification service": flat JSON, no signature; the integrator may ask Livion to
  send a custom header (e.g. ``x-api-key``), which the connection can require.
- API V2 webhooks: Standard Webhooks envelope and signature; the event id is ``webhook-id``,
  which stays the same across retries, so the engine's dedupe drops redeliveries.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from latchflow import JSON, Connection, TriggerEvent, WebhookError, WebhookRequest
from latchflow_livionkey import standard_webhooks
from latchflow_livionkey.assumptions import V1_WEBHOOK_HEADER, V2_WEBHOOK_TOLERANCE_SECONDS

V1_KEY_TRIGGERS = {
    "key-fetched": "livionkey.key_fetched",
    "key-returned": "livionkey.key_returned",
    "key-not-returned": "livionkey.key_not_returned",
    "key-not-fetched": "livionkey.key_not_fetched",
}
V2_KEY_TRIGGERS = {
    "key-fetched": "livionkey.v2_key_fetched",
    "key-returned": "livionkey.v2_key_returned",
    "key-not-returned": "livionkey.v2_key_not_returned",
    "key-not-fetched": "livionkey.v2_key_not_fetched",
}
V2_TRIGGERS = {
    "contract-update": "livionkey.v2_contract_updated",
    "code-entered": "livionkey.v2_code_entered",
    "device-alarm": "livionkey.v2_device_alarm",
}
V1_CONTRACT_TYPES = ("default", "fetch", "return")
TEST_DEVICE_ID = "000000"  # V2 §7: activation test deliveries use this placeholder device


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise WebhookError("the body is not JSON", status_code=400) from exc


def v1_key_event(data: JSON) -> TriggerEvent | None:
    """A V1 key-status notification (pushed or polled) as an event, or None if not offered."""
    trigger = V1_KEY_TRIGGERS.get(str(data.get("state")))
    if trigger is None:
        return None
    event = {
        "deviceId": str(data.get("deviceId")),
        "keyId": str(data.get("keyId")),
        "lockerIndex": None if data.get("lockerIndex") is None else str(data["lockerIndex"]),
        "contractId": data.get("contractId"),
        "contractObjectId": data.get("contractObjectId"),
        "state": data["state"],
        "time": str(data.get("time")),
        "tag": data.get("tag"),
    }
    # The same for a push and a poll of the same status change, so the engine dedupes them.
    event_id = f"{event['deviceId']}:{event['keyId']}:{event['state']}:{event['time']}"
    return TriggerEvent(trigger=trigger, id=event_id, data=event)


async def v1_webhook(request: WebhookRequest, connection: Connection) -> list[TriggerEvent]:
    secret = connection.config.get("webhook_secret")
    if secret:
        name = str(connection.config.get("webhook_header") or V1_WEBHOOK_HEADER).lower()
        given = {k.lower(): v for k, v in request.headers.items()}.get(name, "")
        if not hmac.compare_digest(given.encode(), str(secret).encode()):
            raise WebhookError(f"missing or wrong {name} header", status_code=401)
    body = _parse(request.body)
    items = body if isinstance(body, list) else [body]
    events: list[TriggerEvent] = []
    for data in items:
        if not isinstance(data, dict):
            raise WebhookError("each notification must be a JSON object", status_code=400)
        if data.get("type") == "key-status":
            event = v1_key_event(data)
            if event is not None:
                events.append(event)
        elif data.get("type") in V1_CONTRACT_TYPES and "pincode" in data:
            contract = {
                "contractType": data["type"],
                **{
                    k: data.get(k)
                    for k in (
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
                },
            }
            event_id = f"{data.get('contractObjectId')}:{data.get('deviceId')}:{data.get('keyId')}:{data.get('time')}"
            events.append(TriggerEvent("livionkey.contract_updated", event_id, contract))
        # code-entered and device-alarm pushes are not offered as V1 triggers: ignored.
    return events


async def v2_webhook(request: WebhookRequest, connection: Connection) -> list[TriggerEvent]:
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
    if data.get("deviceId") == TEST_DEVICE_ID:
        return []  # a subscription's signed test delivery: acknowledge, start nothing
    if kind == "key-status":
        trigger = V2_KEY_TRIGGERS.get(str(data.get("state")))
    else:
        trigger = V2_TRIGGERS.get(kind)
    if trigger is None:
        return []
    event = {
        **data,
        "eventId": msg_id,
        "eventType": kind,
        "occurredAt": envelope.get("occurredAt"),
        "organizationUnitId": envelope.get("organizationUnitId"),
    }
    return [TriggerEvent(trigger=trigger, id=msg_id, data=event)]
