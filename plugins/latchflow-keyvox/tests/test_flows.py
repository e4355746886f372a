"""The example flows, validated and walked step by step against the simulator over real HTTP.

The walker renders each step's input with the engine's expression language, honours ``if``,
and runs the registered actions, so the flows' expressions are exercised against the real
outputs of the KEYVOX actions. (Runs through ``latchflow serve`` belong to the server tests.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from latchflow import JSON, Connection, TriggerEvent, WebhookRequest
from latchflow.testing import (
    Flow,
    Registry,
    build_scope,
    is_truthy,
    make_context,
    render,
    validate_flow,
)
from latchflow_keyvox.testing import Receiver, Runner, Sim

FLOWS = Path(__file__).resolve().parents[3] / "flows"


def load(name: str, registry: Registry, receiver_url: str) -> Flow:
    document = json.loads((FLOWS / f"{name}.json").read_text())
    for step in document["steps"]:
        if step["action"] == "http.request":
            step["input"]["url"] = receiver_url
    return validate_flow(document, registry)


async def walk(flow: Flow, trigger: JSON, run: Runner, run_id: str = "run-1") -> dict[str, Any]:
    outputs: dict[str, Any] = {}
    for step in flow.steps:
        scope = build_scope(trigger=trigger, steps=outputs, flow={"id": flow.id})
        if step.condition is not None and not is_truthy(render(step.condition, scope)):
            continue
        data = render(step.input, scope, f"$.steps.{step.id}.input")
        ctx = make_context(run.connection, run_id=run_id, step_id=step.id)
        outputs[step.id] = await run(step.action, data, ctx)
    return outputs


async def webhook_event(registry: Registry, conn: Connection, raw: bytes, key: str) -> JSON:
    handler = registry.vendors["keyvox"].webhook
    assert handler is not None
    request = WebhookRequest(
        method="POST", url="http://engine/vendors/keyvox/sandbox-keyvox", headers={}, body=raw
    )
    events = await handler(request, conn)
    assert [getattr(e, "trigger", e) for e in events] == [key]
    assert isinstance(events[0], TriggerEvent)
    return events[0].data


@pytest.fixture(autouse=True)
def allow_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATCHFLOW_HTTP_ALLOW_NETWORKS", "127.0.0.0/8")


def test_every_keyvox_flow_validates(registry: Registry) -> None:
    names = sorted(p.stem for p in FLOWS.glob("keyvox-*.json"))
    assert names == [
        "keyvox-booking-cancelled",
        "keyvox-booking-pin",
        "keyvox-booking-updated",
        "keyvox-early-checkout",
        "keyvox-locker-parcel",
    ]
    for name in names:
        assert load(name, registry, "http://127.0.0.1:9999/receiver").steps


def book(sim: Sim, checkin: int, checkout: int, guest: str = "Hanako", room: int = 0) -> JSON:
    body = {"unitId": sim.room(room)["unitId"], "checkin": checkin, "checkout": checkout}
    booking: JSON = sim.control("/_sim/bookings", {**body, "orderContact": guest})
    return booking


def change(sim: Sim, booking: JSON, action: str, **fields: Any) -> None:
    sim.control(f"/_sim/bookings/{booking['orderId']}", {"action": action, **fields})


def active_pins(sim: Sim) -> dict[str, JSON]:
    return {p["pinId"]: p for p in sim.state()["pins"] if p["pinStatus"] == "1"}


async def last_event(
    sim: Sim, receiver: Receiver, registry: Registry, conn: Connection, key: str
) -> JSON:
    sim.settle()  # KEYVOX posts its webhooks after answering
    return await webhook_event(registry, conn, receiver.raw[-1], key)


async def test_booking_pin_sends_the_booking_s_own_pin_and_makes_none(
    sim: Sim, run: Runner, receiver: Receiver, registry: Registry, conn: Connection
) -> None:
    sim.control("/_sim/webhooks", {"url": receiver.url})
    now = sim.world.now()
    booking = book(sim, now + 86400, now + 2 * 86400)
    own = booking["unitPinList"][0]
    trigger = await last_event(sim, receiver, registry, conn, "keyvox.booking_created")
    assert trigger["hasPin"] is True and own["pin"] not in json.dumps(trigger)  # not stored
    outputs = await walk(load("keyvox-booking-pin", registry, receiver.url), trigger, run)
    assert outputs["booking"]["pinId"] == own["pinId"]
    posted = receiver.bodies[-1]
    assert (posted["pin"], posted["qrCodeUrl"]) == (own["pin"], own["qrShortUrl"])
    assert posted["orderId"] == booking["orderId"] and posted["guestName"] == "Hanako"
    assert list(active_pins(sim)) == [own["pinId"]]  # no second PIN
    action = registry.actions["keyvox.get_booking"]
    assert {"pinCode", "qrCodeUrl", "unitPinList.pin"} <= set(action.credentials)


async def test_updated_moves_and_cancelled_revokes_exactly_the_booking_s_pin(
    sim: Sim, run: Runner, receiver: Receiver, registry: Registry, conn: Connection
) -> None:
    sim.control("/_sim/webhooks", {"url": receiver.url})
    now = sim.world.now()
    unit = sim.room()["unitId"]
    staff = await run(
        "keyvox.create_lock_pin", {"unitId": unit, "startTime": now, "endTime": now + 9 * 86400}
    )
    later = book(sim, now + 5 * 86400, now + 6 * 86400, guest="Ken")
    booking = book(sim, now + 86400, now + 2 * 86400)
    pin_id = booking["unitPinList"][0]["pinId"]

    change(sim, booking, "update", checkout=now + 3 * 86400)
    updated = await last_event(sim, receiver, registry, conn, "keyvox.booking_updated")
    outputs = await walk(load("keyvox-booking-updated", registry, receiver.url), updated, run)
    assert outputs["move"]["pinId"] == pin_id
    assert active_pins(sim)[pin_id]["eTime"] == str(now + 3 * 86400)
    assert receiver.bodies[-1]["validUntil"] == updated["checkOut"]

    change(sim, booking, "cancel")
    cancelled = await last_event(sim, receiver, registry, conn, "keyvox.booking_cancelled")
    flow = load("keyvox-booking-cancelled", registry, receiver.url)
    await walk(flow, cancelled, run, "run-2")
    assert receiver.bodies[-1] == {"orderId": booking["orderId"], "revokedPinId": pin_id}
    assert set(active_pins(sim)) == {staff["pinId"], later["unitPinList"][0]["pinId"]}
    # a replay finds the PIN gone and revokes nothing more
    await walk(flow, cancelled, run, "run-2")
    assert receiver.bodies[-1] == {"orderId": booking["orderId"], "revokedPinId": None}
    assert len(active_pins(sim)) == 2


async def test_early_checkout_ends_the_guest_s_access_now(
    sim: Sim, run: Runner, receiver: Receiver, registry: Registry, conn: Connection
) -> None:
    sim.control("/_sim/webhooks", {"url": receiver.url})
    now = sim.world.now()
    booking = book(sim, now - 60, now + 2 * 86400)
    code = booking["unitPinList"][0]["pin"]
    lock_id = sim.room()["lockIds"]
    sim.control("/_sim/clock", {"advance": 121})  # delivered to the lock
    assert sim.control("/_sim/keypad", {"lockId": lock_id, "pinCode": code})["opened"] is True
    change(sim, booking, "checkin")
    change(sim, booking, "checkout")
    event = await last_event(sim, receiver, registry, conn, "keyvox.booking_checked_out")
    outputs = await walk(load("keyvox-early-checkout", registry, receiver.url), event, run)
    assert outputs["end"] == {"ok": True, "pinId": booking["unitPinList"][0]["pinId"]}
    assert sim.control("/_sim/keypad", {"lockId": lock_id, "pinCode": code})["opened"] is False
    assert receiver.bodies[-1]["accessEndedPinId"] == outputs["end"]["pinId"]


async def test_locker_parcel_flow(
    sim: Sim, run: Runner, receiver: Receiver, registry: Registry
) -> None:
    device = sim.state()["lockers"][0]["deviceId"]
    trigger = {
        "body": {"parcelId": "P-17", "deviceId": device, "boxSize": "3", "recipient": "Room 101"},
        "headers": {},
        "received_at": "2026-04-01T00:00:00Z",
    }
    flow = load("keyvox-locker-parcel", registry, receiver.url)
    outputs = await walk(flow, trigger, run)
    assert outputs["boxes"]["count"] == 2 and outputs["led"] == {
        "boxNum": "00-05",
        "color": "green",
    }
    assert receiver.bodies[-1] == {
        "parcelId": "P-17",
        "box": "Box 5",
        "boxNum": "00-05",
        "pin": outputs["pin"]["pinCode"],
        "led": "green",
        "available": 2,
    }
    status = sim.state()["lockers"]
    assert status[0]["deviceId"] == device
    assert sim.world.lockers[device].boxes["00-05"].color == "green"
    # the next parcel gets the other large box
    second = await walk(
        flow, {**trigger, "body": {**trigger["body"], "parcelId": "P-18"}}, run, "run-2"
    )
    assert second["pin"] and receiver.bodies[-1]["boxNum"] == "00-06"
