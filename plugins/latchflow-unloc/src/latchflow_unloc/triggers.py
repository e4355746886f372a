"""Unloc triggers: key state changes and expiry (polling), lock access events (webhooks)."""

from __future__ import annotations

from typing import Any

from latchflow import Connection, FatalError, PollResult, Trigger, TriggerEvent
from latchflow_unloc.assumptions import KEY_STATES, TERMINAL_KEY_STATES, VANISHED_KEY_STATE
from latchflow_unloc.client import UnlocClient
from latchflow_unloc.keys import flat_key
from latchflow_unloc.phone import to_e164
from latchflow_unloc.schemas import (
    APP_USER_ID,
    DEFAULT_REGION,
    KEY_OUTPUT,
    KEY_STATE,
    LOCK_ID,
    SAMPLE_KEY,
    obj,
)

STATE_POLL_INTERVAL = 60.0


def filters(config: dict[str, Any]) -> dict[str, Any]:
    phone = config.get("appUserId")
    return {
        "lock_id": config.get("lockId") or None,
        "app_user_id": to_e164(phone, config.get("defaultRegion"), field="trigger.input.appUserId")
        if phone
        else None,
    }


def transitions(
    keys: list[dict[str, Any]], known: dict[str, list[Any]], observed_at: str
) -> tuple[list[dict[str, Any]], dict[str, list[Any]]]:
    """Changes between the states in ``known`` ({key id: [state, transition count]}) and ``keys``.

    Each change gets ``transition`` = the key's transition count, so the event id
    ``<key id>:<count>:<state>`` is the same however often the same cursor is polled again.
    """
    changes: list[dict[str, Any]] = []
    now_known: dict[str, list[Any]] = {}
    for raw in keys:
        key = flat_key(raw)
        key_id = str(key["keyId"])
        previous, count = known.get(key_id, [None, 0])
        if key["state"] != previous:
            count += 1
            changes.append(
                {**key, "previousState": previous, "transition": count, "vanished": False}
            )
        now_known[key_id] = [key["state"], count]
    for key_id, (previous, count) in known.items():
        if key_id in now_known:
            continue
        if previous in TERMINAL_KEY_STATES:
            now_known[key_id] = [previous, count]
            continue
        # Keys revoked in Unloc Control Center can vanish from the listing (assumptions).
        changes.append(
            {
                "keyId": key_id,
                "lockId": None,
                "appUserId": None,
                "state": VANISHED_KEY_STATE,
                "previousState": previous,
                "transition": count + 1,
                "vanished": True,
            }
        )
        now_known[key_id] = [VANISHED_KEY_STATE, count + 1]
    for change in changes:
        change["observedAt"] = observed_at
    return changes, now_known


async def poll_keys(
    connection: Connection,
    config: dict[str, Any],
    cursor: dict[str, Any] | None,
    trigger: str,
    only: set[str],
) -> PollResult:
    keys = await UnlocClient(connection, trigger).all_keys(**filters(config))
    observed_at = connection.clock.now().isoformat()
    changes, known = transitions(keys, (cursor or {}).get("keys", {}), observed_at)
    if cursor is None:  # the first poll only establishes where we are
        return PollResult(events=[], cursor={"keys": known})
    events = [
        TriggerEvent(trigger=trigger, id=f"{c['keyId']}:{c['transition']}:{c['state']}", data=c)
        for c in changes
        if not only or c["state"] in only
    ]
    return PollResult(events=events, cursor={"keys": known})


async def poll_state_changes(
    connection: Connection, config: dict[str, Any], cursor: dict[str, Any] | None
) -> PollResult:
    return await poll_keys(
        connection, config, cursor, "unloc.key_state_changed", set(config.get("states") or ())
    )


async def poll_expired(
    connection: Connection, config: dict[str, Any], cursor: dict[str, Any] | None
) -> PollResult:
    return await poll_keys(connection, config, cursor, "unloc.key_expired", {"expired"})


def matches_key(config: dict[str, Any], data: dict[str, Any]) -> bool:
    """The event is for the configured lock/phone/states (a vanished key matches any)."""
    try:
        wanted = filters(config)
    except FatalError:
        return False
    if wanted["lock_id"] and data.get("lockId") not in (None, wanted["lock_id"]):
        return False
    if wanted["app_user_id"] and data.get("appUserId") not in (None, wanted["app_user_id"]):
        return False
    states = config.get("states")
    return not states or data.get("state") in states


STATE_CHANGE_OUTPUT: dict[str, Any] = {
    **KEY_OUTPUT,
    "required": ["keyId", "state", "transition"],
    "properties": {
        **KEY_OUTPUT["properties"],
        "lockId": {"type": ["string", "null"]},
        "previousState": {
            "type": ["string", "null"],
            "enum": [*KEY_STATES, None],
            "description": "null for a key seen for the first time",
        },
        "transition": {
            "type": "integer",
            "description": "How many state changes of this key were seen so far.",
        },
        "vanished": {
            "type": "boolean",
            "description": "The key disappeared from Unloc's listing (reported as revoked).",
        },
        "observedAt": {"type": "string", "description": "When the change was noticed (ISO 8601)."},
    },
}

FILTER_FIELDS: dict[str, Any] = {
    "lockId": {**LOCK_ID, "description": "Only keys for this lock."},
    "appUserId": {**APP_USER_ID, "description": "Only keys of this phone number."},
    "defaultRegion": DEFAULT_REGION,
}

SAMPLE_CHANGE = {
    **SAMPLE_KEY,
    "previousState": "scheduled",
    "transition": 3,
    "vanished": False,
    "observedAt": "2026-03-01T14:00:30+00:00",
}

KEY_STATE_CHANGED = Trigger(
    key="unloc.key_state_changed",
    title="Key state changed",
    description=(
        "A key moved to another state: creating, scheduled, active, inactive (outside its"
        " recurrence window), error, revoked or expired. Unloc has no webhook for this, so keys"
        " are polled; each change starts one run."
    ),
    input_schema=obj(
        {
            **FILTER_FIELDS,
            "states": {
                "type": "array",
                "items": KEY_STATE,
                "description": "Only changes into these states (all when empty).",
            },
        }
    ),
    output_schema=STATE_CHANGE_OUTPUT,
    sample=SAMPLE_CHANGE,
    connection="unloc",
    poll=poll_state_changes,
    poll_interval=STATE_POLL_INTERVAL,
    matches=matches_key,
)

KEY_EXPIRED = Trigger(
    key="unloc.key_expired",
    title="Key expired",
    description="A key reached its end time and expired (polled; one run per key).",
    input_schema=obj(FILTER_FIELDS),
    output_schema=STATE_CHANGE_OUTPUT,
    sample={**SAMPLE_CHANGE, "state": "expired", "previousState": "active", "transition": 4},
    connection="unloc",
    poll=poll_expired,
    poll_interval=STATE_POLL_INTERVAL,
    matches=matches_key,
)

ACCESS_OUTPUT: dict[str, Any] = {
    "type": "object",
    "required": ["eventId", "action", "keyId", "lockId"],
    "properties": {
        "eventId": {"type": "string"},
        "action": {"type": "string", "description": "What the user did, e.g. unlocked."},
        "created": {"type": ["string", "null"]},
        "keyId": {"type": "string"},
        "lockId": {"type": "string"},
        "lockName": {"type": ["string", "null"]},
        "appUserId": {"type": ["string", "null"], "description": "E.164 number of the key holder."},
        "userName": {"type": ["string", "null"]},
    },
}

SAMPLE_ACCESS = {
    "eventId": "7d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6",
    "action": "unlocked",
    "created": "2026-03-01T14:05:12.000Z",
    "keyId": SAMPLE_KEY["keyId"],
    "lockId": SAMPLE_KEY["lockId"],
    "lockName": "Front door",
    "appUserId": "+4799887766",
    "userName": "Kari Nordmann",
}

LOCK_UNLOCKED = Trigger(
    key="unloc.lock_unlocked",
    title="Lock opened with a key",
    description=(
        "Someone opened a lock with an Unloc key (the v2 access event). Arrives through the"
        " project's accessEvent webhook, which the connection registers per lock."
    ),
    input_schema=obj(
        {
            "lockId": {**LOCK_ID, "description": "Only events of this lock."},
            "appUserId": {
                **APP_USER_ID,
                "description": "Only events of this phone number (E.164).",
            },
        }
    ),
    output_schema=ACCESS_OUTPUT,
    sample=SAMPLE_ACCESS,
    connection="unloc",
    webhook=True,
)

KEY_USED = Trigger(
    key="unloc_integrators.key_used",
    title="Key used on a lock (integrators)",
    description="A lock holder's lock was operated with a key (the integrators v1 key-event webhook).",
    input_schema=obj(
        {
            "lockId": {**LOCK_ID, "description": "Only events of this lock."},
            "action": {"type": "string", "description": "Only this action, e.g. unlocked."},
        }
    ),
    output_schema={
        **ACCESS_OUTPUT,
        "properties": {
            **{k: v for k, v in ACCESS_OUTPUT["properties"].items() if k != "appUserId"},
            "userId": {
                "type": ["string", "null"],
                "description": "E.164 number of the key holder.",
            },
        },
    },
    sample={
        **{k: v for k, v in SAMPLE_ACCESS.items() if k != "appUserId"},
        "userId": "+4799887766",
    },
    connection="unloc_integrators",
    webhook=True,
)
