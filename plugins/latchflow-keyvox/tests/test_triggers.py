"""Triggers: webhooks from the simulator, polling fallbacks, and the same ids both ways."""

from __future__ import annotations

import json
from typing import Any

import pytest

from latchflow import (
    JSON,
    Connection,
    PollResult,
    TriggerEvent,
    UnmappedEvent,
    WebhookError,
    WebhookRequest,
)
from latchflow.testing import Registry, make_connection
from latchflow_keyvox import assumptions as A
from latchflow_keyvox.testing import Receiver, Runner, Sim


def hook(registry: Registry) -> Any:
    handler = registry.vendors["keyvox"].webhook
    assert handler is not None
    return handler


def as_request(raw: bytes) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url="http://engine/vendors/keyvox/c1",
        headers={"content-type": "application/json"},
        body=raw,
    )


async def poll(
    registry: Registry, key: str, conn: Connection, config: JSON, cursor: JSON | None
) -> PollResult:
    trigger = registry.triggers[key]
    assert trigger.poll is not None
    return await trigger.poll(conn, config, cursor)


async def delivered_pin(sim: Sim, run: Runner, name: str = "Hanako") -> JSON:
    now = sim.world.now()
    pin = await run(
        "keyvox.create_lock_pin",
        {
            "unitId": sim.room()["unitId"],
            "startTime": now - 60,
            "endTime": now + 86400,
            "targetName": name,
        },
    )
    sim.control("/_sim/clock", {"advance": 121})
    return pin


async def test_keypad_entry_posts_a_webhook_that_becomes_lock_unlocked(
    sim, run, receiver, registry, conn
) -> None:
    sim.control("/_sim/webhooks", {"url": receiver.url})
    pin = await delivered_pin(sim, run)
    lock_id = sim.room()["lockIds"]
    assert sim.control("/_sim/keypad", {"lockId": lock_id, "pinCode": "000"})["opened"] is False
    opened = sim.control("/_sim/keypad", {"lockId": lock_id, "pinCode": pin["pinCode"]})
    assert opened["opened"] is True
    sim.settle()  # KEYVOX posts the webhook after it answered
    assert receiver.bodies[-1]["event"] == "unlock"
    vendor = registry.vendors["keyvox"]
    assert vendor.webhook is not None
    events = await vendor.webhook(as_request(receiver.raw[-1]), conn)
    assert len(events) == 1
    event = events[0]
    assert event.trigger == "keyvox.lock_unlocked"
    assert event.data["method"] == "pin" and event.data["pinCode"] == pin["pinCode"]
    assert event.data["userName"] == "Hanako" and event.data["lockId"] == lock_id
    trigger = registry.triggers["keyvox.lock_unlocked"]
    assert trigger.matches({"lockId": lock_id}, event.data)
    assert not trigger.matches({"lockId": "OTHERLOCK0000000"}, event.data)


async def test_lock_history_polling_finds_new_entries_once_with_webhook_ids(
    sim, run, receiver, registry, conn
) -> None:
    sim.control("/_sim/webhooks", {"url": receiver.url})
    lock_id = sim.room()["lockIds"]
    await run("keyvox.unlock_door", {"lockId": lock_id})  # before the first poll: not reported
    first = await poll(registry, "keyvox.lock_unlocked", conn, {}, None)
    assert first.events == []
    sim.control("/_sim/clock", {"advance": 5})
    sim.control("/_sim/door", {"lockId": lock_id, "action": "unlock", "method": "knob"})
    sim.control("/_sim/door", {"lockId": lock_id, "action": "lock", "method": "button"})
    sim.control("/_sim/door", {"lockId": lock_id, "action": "lock", "method": "auto"})
    await run("keyvox.unlock_door", {"lockId": sim.room(1)["lockIds"]})
    second = await poll(registry, "keyvox.lock_unlocked", conn, {}, first.cursor)
    assert [(e.data["lockId"], e.data["method"]) for e in second.events] == [
        (lock_id, "knob"),
        (sim.room(1)["lockIds"], "app"),
    ]
    sim.settle()
    webhook_ids = set()
    for raw in receiver.raw:
        webhook_ids |= {e.id for e in await hook(registry)(as_request(raw), conn)}
    assert {e.id for e in second.events} <= webhook_ids
    third = await poll(registry, "keyvox.lock_unlocked", conn, {}, second.cursor)
    assert third.events == []
    locked = await poll(registry, "keyvox.lock_locked", conn, {"lockId": lock_id}, first.cursor)
    assert [(e.data["method"], e.data["etype"]) for e in locked.events] == [
        ("button", "5"),
        ("other", A.SIM_AUTO_LOCK_ETYPE),
    ]
    assert {e.id for e in locked.events} <= webhook_ids


async def test_history_entries_have_keyvox_s_shape_only(sim: Sim, run: Runner) -> None:
    lock_id = sim.room()["lockIds"]
    sim.control("/_sim/door", {"lockId": lock_id, "action": "lock", "method": "knob"})
    await run("keyvox.unlock_door", {"lockId": lock_id})
    history = await run("keyvox.get_lock_history", {"lockId": lock_id})
    assert [set(entry) for entry in history["entries"]] == [
        {"etime", "etype", "userName", "value"}
    ] * 2


async def test_entries_that_do_not_say_their_direction_start_nothing(
    sim: Sim, registry: Registry, conn: Connection
) -> None:
    lock = sim.world.locks[sim.room()["lockIds"]]
    first = await poll(registry, "keyvox.lock_unlocked", conn, {}, None)
    etime = str(sim.world.now() + 1)
    lock.history.insert(0, {"etime": etime, "etype": "6", "userName": "", "value": ""})
    for key in ("keyvox.lock_unlocked", "keyvox.lock_locked"):
        assert (await poll(registry, key, conn, {}, first.cursor)).events == []


async def test_booking_webhooks_and_polling(
    sim: Sim, receiver: Receiver, registry: Registry, conn: Connection
) -> None:
    sim.control("/_sim/webhooks", {"url": receiver.url})
    created_cursor = (await poll(registry, "keyvox.booking_created", conn, {}, None)).cursor
    cancelled_cursor = (await poll(registry, "keyvox.booking_cancelled", conn, {}, None)).cursor
    now = sim.world.now()
    booking = sim.control(
        "/_sim/bookings",
        {
            "unitId": sim.room()["unitId"],
            "checkin": now + 86400,
            "checkout": now + 2 * 86400,
            "orderContact": "Mia",
        },
    )
    sim.settle()
    hooked = await hook(registry)(as_request(receiver.raw[-1]), conn)
    assert [e.trigger for e in hooked] == ["keyvox.booking_created"]
    data = hooked[0].data
    assert data["orderId"] == booking["orderId"] and data["guestName"] == "Mia"
    assert data["checkIn"].endswith("Z") and data["unitName"] == "Room 101"
    own_pin = booking["unitPinList"][0]
    assert data["hasPin"] is True  # the PIN itself is read, masked, with keyvox.get_booking
    assert own_pin["pin"] not in json.dumps(data) and own_pin["qrShortUrl"] not in json.dumps(data)
    polled = await poll(registry, "keyvox.booking_created", conn, {}, created_cursor)
    assert [e.id for e in polled.events] == [hooked[0].id]
    assert polled.events[0].data["checkIn"] == data["checkIn"]
    assert polled.events[0].data == data
    again = await poll(registry, "keyvox.booking_created", conn, {}, polled.cursor)
    assert again.events == []

    sim.control("/_sim/clock", {"advance": 3})
    sim.control(f"/_sim/bookings/{booking['orderId']}", {"action": "cancel"})
    sim.settle()
    hooked = await hook(registry)(as_request(receiver.raw[-1]), conn)
    assert hooked[0].trigger == "keyvox.booking_cancelled" and hooked[0].data["status"] == "C"
    polled = await poll(registry, "keyvox.booking_cancelled", conn, {}, cancelled_cursor)
    assert [e.id for e in polled.events] == [hooked[0].id]


@pytest.mark.parametrize("event", ["checked_in", "checked_out", "updated"])
async def test_other_booking_events_arrive_by_webhook(
    sim: Sim, receiver: Receiver, registry: Registry, conn: Connection, event: str
) -> None:
    sim.control("/_sim/webhooks", {"url": receiver.url})
    now = sim.world.now()
    booking = sim.control(
        "/_sim/bookings",
        {
            "unitId": sim.room(1)["unitId"],
            "checkin": now,
            "checkout": now + 3600,
            "orderContact": "Li",
        },
    )
    steps = {
        "checked_in": ["checkin"],
        "checked_out": ["checkin", "checkout"],
        "updated": ["update"],
    }[event]
    for action in steps:
        sim.control(
            f"/_sim/bookings/{booking['orderId']}", {"action": action, "checkout": now + 7200}
        )
    sim.settle()
    events = await hook(registry)(as_request(receiver.raw[-1]), conn)
    assert [e.trigger for e in events] == [f"keyvox.booking_{event}"]


async def test_pin_delivered_is_polled(
    sim: Sim, run: Runner, registry: Registry, conn: Connection
) -> None:
    now = sim.world.now()
    unit = sim.room()["unitId"]
    pin = await run(
        "keyvox.create_lock_pin", {"unitId": unit, "startTime": now + 3600, "endTime": now + 7200}
    )
    first = await poll(registry, "keyvox.pin_delivered", conn, {"unitId": unit}, None)
    assert first.events == []
    assert (await poll(registry, "keyvox.pin_delivered", conn, {}, first.cursor)).events == []
    sim.control("/_sim/clock", {"advance": 120})
    second = await poll(registry, "keyvox.pin_delivered", conn, {"unitId": unit}, first.cursor)
    assert [(e.data["pinId"], e.data["status"]) for e in second.events] == [(pin["pinId"], "30")]
    assert (await poll(registry, "keyvox.pin_delivered", conn, {}, second.cursor)).events == []


async def test_webhook_refuses_text_format_and_non_json(
    registry: Registry, conn: Connection
) -> None:
    handler = registry.vendors["keyvox"].webhook
    assert handler is not None
    with pytest.raises(WebhookError, match="JSON format") as info:
        await handler(as_request(json.dumps({"text": "Hanako\n...\n解錠"}).encode()), conn)
    assert info.value.status_code == 422
    with pytest.raises(WebhookError):
        await handler(as_request(b"not json"), conn)


async def test_an_unknown_event_type_is_returned_unmapped_with_its_raw_type(
    registry: Registry, conn: Connection
) -> None:
    access = [{"deviceId": "000D6F0013112273", "pinCode": "482913"}]
    body = {"event": "reservation.canceled", "data": {"reservationCode": "K7Q2M9X4A"}}
    body["data"]["accessInfo"] = access
    raw = json.dumps(body)
    events = await hook(registry)(as_request(raw.encode()), conn)
    assert len(events) == 1 and isinstance(events[0], UnmappedEvent)
    assert events[0].vendor_type == "reservation.canceled"
    assert events[0].data["data"] == {"reservationCode": "K7Q2M9X4A"}  # no PIN kept
    again = await hook(registry)(as_request(raw.encode()), conn)
    assert again[0].id == events[0].id  # a redelivery is the same event


async def test_a_connection_maps_its_own_event_names(registry: Registry, sim: Sim) -> None:
    config = {**sim.config, "eventTypes": {"reservation.canceled": "keyvox.booking_cancelled"}}
    body = {
        "event": "reservation.canceled",
        "eventTime": "1775023300",
        "data": {
            "reservationCode": "K7Q2M9X4A",
            "unitId": sim.room()["unitId"],
            "orderContact": "Mia",
            "checkinTime": "1775023200",
            "checkoutTime": "1775102400",
            "orderStateCode": "C",
        },
    }
    conn = make_connection("keyvox", config)
    try:
        events = await hook(registry)(as_request(json.dumps(body).encode()), conn)
        assert [(e.trigger, e.data["orderId"]) for e in events if isinstance(e, TriggerEvent)] == [
            ("keyvox.booking_cancelled", "K7Q2M9X4A")
        ]
        # and a default name can be switched off: it is then kept as dropped
        off = make_connection("keyvox", {**sim.config, "eventTypes": {"booking.created": ""}})
        dropped = await hook(registry)(
            as_request(json.dumps({**body, "event": "booking.created"}).encode()), off
        )
        await off.http.aclose()
        assert isinstance(dropped[0], UnmappedEvent)
    finally:
        await conn.http.aclose()
    schema = registry.vendors["keyvox"].connection_schema["properties"]["eventTypes"]
    assert schema["default"]["booking.checked_out"] == "keyvox.booking_checked_out"
    assert "keyvox.booking_cancelled" in schema["additionalProperties"]["enum"]


async def test_a_known_event_without_its_id_is_refused_saying_what_is_missing(
    registry: Registry, conn: Connection
) -> None:
    with pytest.raises(WebhookError, match=r"data\.reservationCode") as info:
        await hook(registry)(as_request(b'{"event":"booking.cancelled","data":{}}'), conn)
    assert info.value.status_code == 422
