"""KEYVOX triggers: lock unlocked/locked, booking lifecycle, PIN delivered.

Lock and booking events arrive through KEYVOX webhooks (JSON format) and, as a fallback,
by polling (lock history, booking list); PIN delivery can only be polled. First polls only
set the cursor; cursors remember the ids at their newest second so nothing is emitted twice.
"""

from __future__ import annotations

import logging
from typing import Any

from latchflow import JSON, Connection, PollResult, Trigger, TriggerEvent
from latchflow_keyvox import assumptions as A
from latchflow_keyvox.client import KeyvoxClient
from latchflow_keyvox.events import booking_from_record, history_direction, lock_event
from latchflow_keyvox.markers import strip_marker

VENDOR = "keyvox"
STR = {"type": "string"}
log = logging.getLogger(__name__)


async def _units(api: KeyvoxClient) -> list[JSON]:
    return list(await api.call("getUnits", {}) or [])


def _since_cursor(events: list[tuple[int, TriggerEvent]], since: int, ids: list[str]) -> JSON:
    if not events:
        return {"since": since, "ids": ids}
    newest = max(t for t, _ in events)
    at_newest = [e.id for t, e in events if t == newest]
    return {"since": newest, "ids": at_newest + (ids if newest == since else [])}


# lock events ------------------------------------------------------------------------------
async def _lock_history(
    api: KeyvoxClient, lock_id: str, state: JSON | None
) -> tuple[list[JSON], JSON]:
    """New history entries of one lock since ``state``; the first call only reads the newest."""
    if state is None:
        body = {"lockId": lock_id, "position": "", "records": "50"}
        items = list((await api.call("getLockHistory", body) or {}).get(A.HISTORY_LIST_KEY) or [])
        top = int(items[0]["etime"]) if items else 0
        return [], {"since": top, "ids": [_entry_key(i) for i in items if int(i["etime"]) == top]}
    since, seen = int(state["since"]), set(state["ids"])
    fresh: list[JSON] = []
    async for item in api.pages("getLockHistory", {"lockId": lock_id}, A.HISTORY_LIST_KEY, 50):
        if int(item.get("etime") or 0) < since:
            break
        if _entry_key(item) not in seen:
            fresh.append(item)
    if not fresh:
        return [], {"since": since, "ids": sorted(seen)}
    top = max(int(i["etime"]) for i in fresh)
    keep = [_entry_key(i) for i in fresh if int(i["etime"]) == top]
    return fresh, {"since": top, "ids": keep + (sorted(seen) if top == since else [])}


def _entry_key(item: JSON) -> str:
    return ":".join(str(item.get(k, "")) for k in ("etime", "etype", "userName", "value"))


def lock_poller(trigger_key: str) -> Any:
    async def poll(connection: Connection, config: JSON, cursor: JSON | None) -> PollResult:
        api = KeyvoxClient(connection, f"{trigger_key} (polling lock history)")
        locks = cursor.get("locks", {}) if cursor else {}
        events: list[TriggerEvent] = []
        new_locks: JSON = {}
        for unit in await _units(api):
            if config.get("unitId") and unit["unitId"] != config["unitId"]:
                continue
            for lock_id in filter(None, str(unit.get("lockIds") or "").split(",")):
                if config.get("lockId") and lock_id != config["lockId"]:
                    continue
                items, new_locks[lock_id] = await _lock_history(api, lock_id, locks.get(lock_id))
                for item in reversed(items):  # oldest first
                    direction = history_direction(item)
                    if direction is None:
                        log.info(
                            "KEYVOX lock %s: history entry %s is neither unlock nor lock",
                            lock_id,
                            _entry_key(item),
                        )
                        continue
                    unit_name = str(unit.get("unitName", ""))
                    event = lock_event(direction, item, lock_id, unit["unitId"], unit_name)
                    if event.trigger == trigger_key:
                        events.append(event)
        return PollResult(events=events, cursor={"locks": new_locks})

    return poll


LOCK_INPUT = {
    "type": "object",
    "properties": {
        "lockId": {"type": "string", "description": "Only this lock (every lock when empty)"},
        "unitId": {"type": "string", "description": "Only the locks of this unit"},
    },
    "additionalProperties": False,
}
LOCK_OUTPUT = {
    "type": "object",
    "required": ["lockId", "action", "time", "method"],
    "properties": {
        "lockId": STR,
        "unitId": STR,
        "deviceName": {"type": "string", "description": "the unit's name"},
        "action": {"enum": ["unlock", "lock"]},
        "time": {"type": "string", "format": "date-time"},
        "etime": {"type": "string", "description": "unix seconds"},
        "etype": STR,
        "method": {"enum": ["pin", "card", "button", "knob", "app", "other"]},
        "userName": {"type": "string", "description": "PIN holder, or API for remote/QR"},
        "pinCode": {"type": "string", "description": "the PIN used (method pin only)"},
    },
}


def lock_sample(action: str) -> JSON:
    return {
        "lockId": "000D6F0013112273",
        "unitId": "5e901978ef16f912aa9aaaa7",
        "deviceName": "Room 101",
        "action": action,
        "time": "2026-04-01T06:01:00Z",
        "etime": "1775023260",
        "etype": "1" if action == "unlock" else "6",
        "method": "pin" if action == "unlock" else "knob",
        "userName": "Hanako Yamada" if action == "unlock" else "",
        "pinCode": "482913" if action == "unlock" else "",
    }


# bookings ---------------------------------------------------------------------------------
def booking_poller(kind: str) -> Any:
    async def poll(connection: Connection, config: JSON, cursor: JSON | None) -> PollResult:
        api = KeyvoxClient(connection, f"keyvox.booking_{kind} (polling bookings)")
        now = int(connection.clock.now().timestamp())
        since = int(cursor["since"]) if cursor else now - A.BOOKING_POLL_LOOKBACK_SECONDS
        seen = set(cursor["ids"]) if cursor else set()
        body: JSON = {"updatedFrom": str(since), "count": "100"}
        if config.get("placeId"):
            body["placeId"] = config["placeId"]
        records: list[JSON] = []
        page = 1
        while True:
            data = await api.call(A.BOOKING_LIST_FUNCTION, {**body, "page": str(page)}) or {}
            rows = list(data.get("list") or [])
            records += rows
            if len(records) >= int(data.get("total") or 0) or not rows:
                break
            page += 1
        names = (
            {u["unitId"]: str(u.get("unitName", "")) for u in await _units(api)} if records else {}
        )
        found = [(int(r["updateTime"]), booking_from_record(r, names)) for r in records]
        found = [(t, e) for t, e in found if e.id not in seen]
        new_cursor = _since_cursor(found, since, sorted(seen))
        if cursor is None:
            return PollResult(events=[], cursor=new_cursor)
        wanted = f"keyvox.booking_{kind}"
        return PollResult(events=[e for _, e in found if e.trigger == wanted], cursor=new_cursor)

    return poll


BOOKING_INPUT = {
    "type": "object",
    "properties": {
        "placeId": {"type": "string", "description": "Only bookings of this place"},
        "unitId": {"type": "string", "description": "Only bookings of this unit"},
    },
    "additionalProperties": False,
}
BOOKING_OUTPUT = {
    "type": "object",
    "required": ["orderId", "unitId", "checkIn", "checkOut", "event"],
    "properties": {
        "event": {"enum": ["created", "updated", "cancelled", "checked_in", "checked_out"]},
        "orderId": STR,
        "placeId": STR,
        "unitId": STR,
        "unitName": STR,
        "planId": STR,
        "guestName": STR,
        "phone": STR,
        "checkIn": {"type": "string", "format": "date-time"},
        "checkOut": {"type": "string", "format": "date-time"},
        "status": {"type": "string", "description": "A, I, O, C (KEYVOX orderStateCode)"},
        "hasPin": {
            "type": "boolean",
            "description": (
                "Whether KEYVOX issued the reservation its own PIN; read it (masked as a"
                " credential) with keyvox.get_booking"
            ),
        },
    },
}


def booking_sample(kind: str) -> JSON:
    states = {"cancelled": "C", "checked_in": "I", "checked_out": "O"}
    return {
        "event": kind,
        "orderId": "K7Q2M9X4A",
        "placeId": "5e901978ef16f912aa9a0001",
        "unitId": "5e901978ef16f912aa9aaaa7",
        "unitName": "Room 101",
        "planId": "5e901978ef16f912aa9a0101",
        "guestName": "Hanako Yamada",
        "phone": "+81312345678",
        "checkIn": "2026-04-01T06:00:00Z",
        "checkOut": "2026-04-02T04:00:00Z",
        "status": states.get(kind, "A"),
        "hasPin": True,
    }


# PIN delivery -----------------------------------------------------------------------------
async def poll_pin_delivered(
    connection: Connection, config: JSON, cursor: JSON | None
) -> PollResult:
    api = KeyvoxClient(connection, "keyvox.pin_delivered (polling delivery status)")
    done = set(cursor.get("done", [])) if cursor else set()
    events: list[TriggerEvent] = []
    current: set[str] = set()
    for unit in await _units(api):
        if config.get("unitId") and unit["unitId"] != config["unitId"]:
            continue
        async for pin in api.pages(
            "getUnitPinList", {"unitId": unit["unitId"]}, A.PIN_LIST_KEY, 100
        ):
            pin_id = str(pin["pinId"])
            current.add(pin_id)
            if pin_id in done:
                continue
            status = await api.call("getLockPinStatus", {"pinId": pin_id}) or {}
            if str(status.get("status")) not in A.DELIVERED_STATUSES:
                continue
            done.add(pin_id)
            if cursor is not None:
                events.append(
                    TriggerEvent(
                        trigger="keyvox.pin_delivered",
                        id=f"{pin_id}:delivered",
                        data={
                            "pinId": pin_id,
                            "unitId": unit["unitId"],
                            "unitName": str(unit.get("unitName", "")),
                            "status": str(status["status"]),
                            "targetName": strip_marker(str(pin.get("targetName", ""))),
                            "startTime": str(pin.get("sTime", "")),
                            "endTime": str(pin.get("eTime", "")),
                        },
                    )
                )
    return PollResult(events=events, cursor={"done": sorted(done & current)})


def triggers() -> list[Trigger]:
    out = [
        Trigger(
            key=f"keyvox.lock_{action}ed",
            title=f"Lock {action}ed",
            description=(
                f"A KEYVOX lock was {action}ed (PIN, card, button, knob or app). Arrives through"
                " the unlock-history webhook (JSON format); lock history is polled as a"
                " fallback, where a history entry that does not say whether it unlocked or"
                " locked starts neither trigger."
            ),
            input_schema=LOCK_INPUT,
            output_schema=LOCK_OUTPUT,
            sample=lock_sample(action),
            connection=VENDOR,
            webhook=True,
            poll=lock_poller(f"keyvox.lock_{action}ed"),
            poll_interval=60.0,
        )
        for action in ("unlock", "lock")
    ]
    titles = {
        "created": "Booking created",
        "updated": "Booking updated",
        "cancelled": "Booking cancelled",
        "checked_in": "Guest checked in",
        "checked_out": "Guest checked out",
    }
    for kind, title in titles.items():
        out.append(
            Trigger(
                key=f"keyvox.booking_{kind}",
                title=title,
                description=(
                    f"{title} in KEYVOX reservation management, with the PIN KEYVOX issued for"
                    " the reservation. Arrives through the reservation webhook (which event"
                    " name starts it is the connection's eventTypes setting); the booking list"
                    " is polled as a fallback (polling sees only the latest state of a booking"
                    " between two polls)."
                ),
                input_schema=BOOKING_INPUT,
                output_schema=BOOKING_OUTPUT,
                sample=booking_sample(kind),
                connection=VENDOR,
                webhook=True,
                poll=booking_poller(kind),
                poll_interval=120.0,
            )
        )
    out.append(
        Trigger(
            key="keyvox.pin_delivered",
            title="PIN delivered to lock",
            description=(
                "KEYVOX delivered a PIN to its lock (delivery status 30-32). Delivery runs in"
                " 2-minute batches from 72 hours before the PIN's start; this trigger polls it."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "unitId": {"type": "string", "description": "Only PINs of this unit"}
                },
                "additionalProperties": False,
            },
            output_schema={
                "type": "object",
                "required": ["pinId", "status"],
                "properties": {
                    "pinId": STR,
                    "unitId": STR,
                    "unitName": STR,
                    "status": STR,
                    "targetName": STR,
                    "startTime": {"type": "string", "description": "unix seconds"},
                    "endTime": {"type": "string", "description": "unix seconds"},
                },
            },
            sample={
                "pinId": "5e901978ef16f912aa9aaaa7",
                "unitId": "5e901978ef16f912aa9aaaa8",
                "unitName": "Room 101",
                "status": "30",
                "targetName": "Hanako Yamada",
                "startTime": "1775019600",
                "endTime": "1775106000",
            },
            connection=VENDOR,
            poll=poll_pin_delivered,
            poll_interval=120.0,
        )
    )
    return out
