"""The Unloc steps of the example flows, rendered from sample events and run on the simulator.

(The whole flows run through ``latchflow serve`` in the engine's tests; here each Unloc step's
rendered input is checked against the action's schema and run until it finishes.)
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from latchflow import Connection, Pending
from latchflow.testing import make_context, render
from latchflow_unloc.create_actions import CREATE_KEY
from latchflow_unloc.key_actions import REVOKE_KEYS
from latchflow_unloc.testing import APARTMENT, FRONT_DOOR, Sim

FLOWS = Path(__file__).resolve().parents[3] / "flows"


def step(flow_id: str, step_id: str) -> dict[str, Any]:
    document = json.loads((FLOWS / f"{flow_id}.json").read_text())
    return next(s for s in document["steps"] if s["id"] == step_id)


def scope(sim: Sim, trigger: dict[str, Any], steps: dict[str, Any] | None = None) -> dict[str, Any]:
    now = sim.world.now().isoformat()
    return {
        "trigger": trigger,
        "steps": steps or {},
        "flow": {"id": "f", "name": "f", "version": 1},
        "now": now,
    }


async def finish(sim: Sim, conn: Connection, action: Any, input: dict[str, Any]) -> dict[str, Any]:
    Draft202012Validator(action.input_schema).validate(input)
    state = None
    for _ in range(200):
        result = await action.run(make_context(conn, state=state), input)
        if not isinstance(result, Pending):
            return dict(result)
        state = result.state
        await sim.advance(max(0.0, (result.check_at - sim.world.now()).total_seconds()))
    raise AssertionError("the step never finished")


def booking(sim: Sim, phone: str, plan: str = "standard") -> dict[str, Any]:
    check_in = sim.world.now() + timedelta(days=2)
    return {
        "event": "created", "orderId": "R-1001", "unitId": "u1", "unitName": "101", "planId": plan,
        "guestName": "Hanako Yamada", "phone": phone, "status": "1",
        "checkIn": check_in.isoformat(), "checkOut": (check_in + timedelta(days=3)).isoformat(),
    }  # fmt: skip


async def test_guest_key_flow_returns_the_key_once_active_and_cancel_revokes_it(
    sim: Sim, conn: Connection
) -> None:
    event = booking(sim, "090-1234-5678")
    key_step = step("unloc-booking-guest-key", "key")
    assert key_step["action"] == "unloc.create_key"
    key = await finish(sim, conn, CREATE_KEY, render(key_step["input"], scope(sim, event)))
    assert (
        key["state"] == "active"
        and key["appUserId"] == "+819012345678"
        and key["lockId"] == APARTMENT
    )
    assert key["metadata"]["booking"] == "R-1001"

    revoke_step = step("unloc-booking-cancelled-revoke", "revoke")
    result = await finish(
        sim,
        conn,
        REVOKE_KEYS,
        render(revoke_step["input"], scope(sim, {**event, "event": "cancelled"})),
    )
    assert result["revoked"] is True and result["all"] is False
    assert sim.world.keys[key["keyId"]].state(sim.world.now(), sim.world.zone) == "revoked"


async def test_staff_key_flow_uses_the_weekday_window(sim: Sim, conn: Connection) -> None:
    await sim.set_clock("2026-03-06T20:00:00+00:00")  # a Friday evening in Oslo
    key_step = step("unloc-staff-weekday-key", "key")
    event = booking(sim, "+81312345678", plan="staff")
    key = await finish(sim, conn, CREATE_KEY, render(key_step["input"], scope(sim, event)))
    assert key["state"] == "active" and key["lockId"] == FRONT_DOOR
    local = sim.world.now().astimezone(sim.world.zone)
    assert local.weekday() < 5 and 9 <= local.hour < 18  # it became active inside a window


async def test_livionkey_fetch_flow_gives_a_front_door_key(sim: Sim, conn: Connection) -> None:
    fetched = {
        "eventId": "msg_1",
        "eventType": "key-status",
        "state": "key-fetched",
        "keyId": "iloq-0001",
        "contractId": "c-7f3a",
        "deviceId": "000111",
    }
    contract = {
        "id": "c-7f3a",
        "keys": [],
        "pincodes": [],
        "end": None,
        "contact": {"name": "Aino", "phoneNumber": "+358401234567"},
    }
    key_step = step("unloc-livionkey-front-door", "front_door")
    input = render(key_step["input"], scope(sim, fetched, {"contract": contract}))
    key = await finish(sim, conn, CREATE_KEY, input)
    assert (
        key["lockId"] == FRONT_DOOR
        and key["appUserId"] == "+358401234567"
        and key["state"] == "active"
    )
    assert key["end"] is not None  # no contract end: one day
