"""Access events Unloc POSTs to latchflow: checked, then turned into trigger events.

An event's vendor type is its ``action`` (``unlocked``). Which trigger a type starts is the
connection's ``eventTypes`` setting over the defaults in ``assumptions``; an event of a type
that starts none is returned as an ``UnmappedEvent``, stored as dropped with its type.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from latchflow import (
    Connection,
    FatalError,
    TriggerEvent,
    UnmappedEvent,
    WebhookError,
    WebhookRequest,
    map_event,
)
from latchflow_unloc.assumptions import (
    INTEGRATORS_EVENT_TYPES,
    V2_EVENT_TYPES,
    VERIFY_ACCESS_EVENTS_BY_LOOKUP,
)
from latchflow_unloc.client import UnlocClient
from latchflow_unloc.http import UnlocHTTPError
from latchflow_unloc.integrators import IntegratorsClient

REQUIRED = ("id", "action", "keyId", "lockId")
T = TypeVar("T")


def parse(request: WebhookRequest) -> dict[str, Any]:
    if request.method.upper() != "POST":
        raise WebhookError(f"expected POST, got {request.method}", status_code=405)
    try:
        body = request.json()
    except ValueError:
        raise WebhookError("body is not JSON") from None
    if not isinstance(body, dict):
        raise WebhookError("body must be a JSON object")
    missing = [f for f in REQUIRED if not isinstance(body.get(f), str) or not body[f]]
    if missing:
        raise WebhookError(
            f"not an Unloc access event: missing {', '.join('$.' + m for m in missing)}"
        )
    return body


def event_data(body: dict[str, Any], user_field: str) -> dict[str, Any]:
    return {
        "eventId": body["id"],
        "action": body["action"],
        "created": body.get("created"),
        "keyId": body["keyId"],
        "lockId": body["lockId"],
        "lockName": body.get("lockName"),
        user_field: body.get(user_field),
        "userName": body.get("userName"),
    }


async def looked_up(lookup: Callable[[], Awaitable[T]], unknown: str) -> T:
    """The answer of the Unloc call that verifies an event: a 4xx answer refuses the event (403
    with ``unknown``); any other permanent failure, such as refused credentials, answers 503."""
    try:
        return await lookup()
    except UnlocHTTPError as exc:
        raise WebhookError(unknown, status_code=403) from exc
    except FatalError as exc:
        raise WebhookError(
            f"could not verify the event with Unloc: {exc}", status_code=503
        ) from exc


async def access_event(
    request: WebhookRequest, connection: Connection
) -> list[TriggerEvent | UnmappedEvent]:
    """A v2 access event. Unloc documents no signature, so the key is looked up instead: a
    forged event naming a key that is not on that lock is refused."""
    body = parse(request)
    if VERIFY_ACCESS_EVENTS_BY_LOOKUP:
        client = UnlocClient(connection, "unloc.lock_unlocked (checking an access event)")
        key = await looked_up(
            lambda: client.get_key(body["keyId"]),
            f"$.keyId: key {body['keyId']} is unknown to Unloc",
        )
        if key.get("lockId") != body["lockId"]:
            raise WebhookError(
                f"$.lockId: key {body['keyId']} is not a key for lock {body['lockId']}",
                status_code=403,
            )
    data = event_data(body, "appUserId")
    return [map_event(connection, body["action"], V2_EVENT_TYPES, body["id"], data)]


async def key_event(
    request: WebhookRequest, connection: Connection
) -> list[TriggerEvent | UnmappedEvent]:
    """An integrators v1 key event; verified by listing the lock's keys when the connection names
    exactly one lock holder."""
    body = parse(request)
    client = IntegratorsClient(connection, "unloc_integrators.key_used (checking a key event)")
    if VERIFY_ACCESS_EVENTS_BY_LOOKUP and len(client.lock_holder_ids) == 1:
        keys = await looked_up(
            lambda: client.list_keys(None, body["lockId"]),
            f"$.lockId: lock {body['lockId']} is unknown to Unloc",
        )
        if not any(k.get("id") == body["keyId"] for k in keys):
            raise WebhookError(
                f"$.keyId: key {body['keyId']} is not a key for lock {body['lockId']}",
                status_code=403,
            )
    data = event_data(body, "userId")
    return [map_event(connection, body["action"], INTEGRATORS_EVENT_TYPES, body["id"], data)]
