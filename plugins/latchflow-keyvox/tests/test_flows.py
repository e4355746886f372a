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

from latchflow import JSON, Connection, WebhookRequest
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
    assert [e.trigger for e in events] == [key]
    return events[0].data


@pytest.fixture(autouse=True)
def allow_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATCHFLOW_HTTP_ALLOW_NETWORKS", "127.0.0.0/8")


def test_every_keyvox_flow_validates(registry: Registry) -> None:
    names = sorted(p.stem for p in FLOWS.glob("keyvox-*.json"))
    assert names == ["keyvox-booking-cancelled", "keyvox-booking-pin", "keyvox-locker-parcel"]
    for name in names:
        assert load(name, registry, "http://127.0.0.1:9999/receiver").steps


async def test_booking_pin_then_cancel_revokes_it(
    sim: Sim, run: Runner, receiver: Receiver, registry: Registry, conn: Connection
) -> None:
    sim.control("/_sim/webhooks", {"url": receiver.url})
    now = sim.world.now()
    booking = sim.control(
        "/_sim/bookings",
        {
            "unitId": sim.room()["unitId"],
            "checkin": now + 86400,
            "checkout": now + 2 * 86400,
            "orderContact": "Hanako",
        },
    )
    trigger = await webhook_event(registry, conn, receiver.raw[-1], "keyvox.booking_created")
    outputs = await walk(load("keyvox-booking-pin", registry, receiver.url), trigger, run)

    pin = outputs["pin"]
    assert int(pin["sTime"]) == now + 86400 - 3600 and int(pin["eTime"]) == now + 2 * 86400 + 1800
    posted = receiver.bodies[-1]
    assert posted["pin"] == pin["pinCode"] and posted["shortQrUrl"] == pin["shortQrUrl"]
    assert posted["orderId"] == booking["orderId"] and posted["guestName"] == "Hanako"
    # a replay of the same run issues no second PIN
    await walk(load("keyvox-booking-pin", registry, receiver.url), trigger, run)
    assert len([p for p in sim.state()["pins"] if p["pinStatus"] == "1"]) == 1

    sim.control(f"/_sim/bookings/{booking['orderId']}", {"action": "cancel"})
    cancelled = await webhook_event(registry, conn, receiver.raw[-1], "keyvox.booking_cancelled")
    outputs = await walk(
        load("keyvox-booking-cancelled", registry, receiver.url), cancelled, run, "run-2"
    )
    assert outputs["revoke"] == {"disabled": [pin["pinId"]], "count": 1}
    assert [p["pinStatus"] for p in sim.state()["pins"]] == ["4"]
    assert receiver.bodies[-1] == {
        "orderId": booking["orderId"],
        "revoked": 1,
        "pinIds": [pin["pinId"]],
    }


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
