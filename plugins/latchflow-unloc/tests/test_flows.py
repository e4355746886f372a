"""The Unloc steps of the example flows, rendered from sample events and run on the simulator.

(The whole flows run through ``latchflow serve`` in the engine's tests; here each Unloc step's
rendered input is checked against the action's schema and run until it finishes.)
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from latchflow import Connection, FatalError, Pending
from latchflow.testing import make_context, render
from latchflow_unloc.create_key import CREATE_KEY
from latchflow_unloc.revoke_actions import REVOKE_KEYS
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


def booking(
    sim: Sim, phone: str, plan: str = "standard", order: str = "R-1001", days_ahead: int = 2
) -> dict[str, Any]:
    check_in = sim.world.now() + timedelta(days=days_ahead)
    return {
        "event": "created", "orderId": order, "unitId": "u1", "unitName": "101", "planId": plan,
        "guestName": "Hanako Yamada", "phone": phone, "status": "1",
        "checkIn": check_in.isoformat(), "checkOut": (check_in + timedelta(days=3)).isoformat(),
    }  # fmt: skip


def key_state(sim: Sim, key_id: str) -> str:
    return str(sim.world.keys[key_id].state(sim.world.now(), sim.world.zone))


async def guest_key(sim: Sim, conn: Connection, event: dict[str, Any]) -> dict[str, Any]:
    key_step = step("unloc-booking-guest-key", "key")
    assert key_step["action"] == "unloc.create_key"
    return await finish(sim, conn, CREATE_KEY, render(key_step["input"], scope(sim, event)))


async def test_guest_key_flow_returns_the_key_once_active_and_cancel_revokes_only_it(
    sim: Sim, conn: Connection
) -> None:
    event = booking(sim, "090-1234-5678")
    # The same guest's next booking of the apartment (from the next day), another guest's key.
    next_stay = booking(sim, "090-1234-5678", order="R-1002", days_ahead=3)
    other_guest = booking(sim, "090-8765-4321", order="R-1003")
    key = await guest_key(sim, conn, event)
    assert (
        key["state"] == "active"
        and key["appUserId"] == "+819012345678"
        and key["lockId"] == APARTMENT
    )
    assert key["metadata"]["booking"] == "R-1001"
    later_stay = await guest_key(sim, conn, next_stay)
    neighbour = await guest_key(sim, conn, other_guest)

    revoke_step = step("unloc-booking-cancelled-revoke", "revoke")
    cancelled = {**event, "event": "cancelled"}
    result = await finish(
        sim, conn, REVOKE_KEYS, render(revoke_step["input"], scope(sim, cancelled))
    )
    assert result["keyIds"] == [key["keyId"]] and result["all"] is False
    assert key_state(sim, key["keyId"]) == "revoked"
    assert key_state(sim, later_stay["keyId"]) == key_state(sim, neighbour["keyId"]) == "active"
    again = await finish(
        sim, conn, REVOKE_KEYS, render(revoke_step["input"], scope(sim, cancelled))
    )
    assert again["keyIds"] == [] and again["alreadyGone"] == [key["keyId"]]  # a retry is harmless


async def test_checked_out_flow_revokes_that_bookings_keys_only(sim: Sim, conn: Connection) -> None:
    stay = booking(sim, "+81312345678", order="K7Q2M9X4A")
    other = await guest_key(sim, conn, booking(sim, "+81312345678", order="K7Q2M9X4B"))
    stay_key = await guest_key(sim, conn, stay)
    revoke_step = step("unloc-booking-checked-out-revoke", "revoke")
    checked_out = {**stay, "event": "checked_out", "status": "O"}
    result = await finish(
        sim, conn, REVOKE_KEYS, render(revoke_step["input"], scope(sim, checked_out))
    )
    assert result["keyIds"] == [stay_key["keyId"]]
    assert key_state(sim, stay_key["keyId"]) == "revoked"
    assert key_state(sim, other["keyId"]) == "active"


async def test_a_cancel_whose_booking_reference_rendered_empty_revokes_nothing(
    sim: Sim, conn: Connection
) -> None:
    key = await guest_key(sim, conn, booking(sim, "090-1234-5678"))
    revoke_step = step("unloc-booking-cancelled-revoke", "revoke")
    rendered = render(revoke_step["input"], scope(sim, {**booking(sim, "x"), "orderId": ""}))
    assert not Draft202012Validator(REVOKE_KEYS.input_schema).is_valid(rendered)
    with pytest.raises(FatalError, match=r"metadata\.booking is empty"):
        await REVOKE_KEYS.run(make_context(conn), rendered)
    assert key_state(sim, key["keyId"]) == "active"


async def test_staff_key_flow_uses_the_weekday_window(sim: Sim, conn: Connection) -> None:
    await sim.set_clock("2026-03-06T20:00:00+00:00")  # a Friday evening in Oslo
    key_step = step("unloc-staff-weekday-key", "key")
    event = booking(sim, "+81312345678", plan="staff")
    key = await finish(sim, conn, CREATE_KEY, render(key_step["input"], scope(sim, event)))
    assert key["state"] == "active" and key["lockId"] == FRONT_DOOR
    local = sim.world.now().astimezone(sim.world.zone)
    assert local.weekday() < 5 and 9 <= local.hour < 18  # it became active inside a window


async def test_livionkey_flows_give_a_front_door_key_and_revoke_it_on_return(
    sim: Sim, conn: Connection
) -> None:
    async def front_door(contract_id: str, phone: str) -> dict[str, Any]:
        fetched = {
            "eventId": f"msg_{contract_id}",
            "eventType": "key-status",
            "state": "key-fetched",
            "keyId": "iloq-0001",
            "contractId": contract_id,
            "deviceId": "000111",
        }
        contract: dict[str, Any] = {
            "id": contract_id,
            "keys": [],
            "pincodes": [],
            "end": None,
            "contact": {"name": "Aino", "phoneNumber": phone},
        }
        key_step = step("unloc-livionkey-front-door", "front_door")
        input = render(key_step["input"], scope(sim, fetched, {"contract": contract}))
        return await finish(sim, conn, CREATE_KEY, input)

    key = await front_door("c-7f3a", "+358401234567")
    assert (
        key["lockId"] == FRONT_DOOR
        and key["appUserId"] == "+358401234567"
        and key["state"] == "active"
    )
    assert key["end"] is not None  # no contract end: one day
    same_guest_other_contract = await front_door("c-9b1e", "+358401234567")

    returned = {"eventId": "msg_r", "state": "key-returned", "contractId": "c-7f3a"}
    revoke_step = step("unloc-livionkey-front-door-revoke", "revoke")
    result = await finish(
        sim, conn, REVOKE_KEYS, render(revoke_step["input"], scope(sim, returned))
    )
    assert result["keyIds"] == [key["keyId"]]
    assert key_state(sim, same_guest_other_contract["keyId"]) == "active"
