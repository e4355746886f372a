"""The simulator refuses what KEYVOX refuses, with KEYVOX's error shape (an envelope with
E0005 in an HTTP 200 answer), and changes nothing when it does."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest

from latchflow import JSON, Connection
from latchflow_keyvox.answers import Refused
from latchflow_keyvox.client import KeyvoxClient
from latchflow_keyvox.testing import Sim


async def refusal(conn: Connection, function: str, body: JSON) -> str:
    """KEYVOX's message for a refused call (the test fails if it is not refused)."""
    with pytest.raises(Refused) as info:
        await KeyvoxClient(conn).call(function, body)
    assert (info.value.answer.status, info.value.answer.code) == (200, "E0005")
    return str(info.value.answer.msg)


def window(sim: Sim) -> dict[str, Any]:
    now = sim.world.now()
    return {"sTime": str(now + 60), "eTime": str(now + 3600)}


async def test_milliseconds_sent_as_seconds_are_refused(sim: Sim, conn: Connection) -> None:
    now_ms = sim.world.now() * 1000
    body = {"unitId": sim.room()["unitId"], "sTime": str(now_ms), "eTime": str(now_ms + 3600_000)}
    assert "milliseconds" in await refusal(conn, "createLockPin", body)
    device = sim.state()["lockers"][0]["deviceId"]
    boxes = {"deviceId": device, "sTime": now_ms, "eTime": now_ms + 60_000}
    assert "sTime must be unix seconds" in await refusal(conn, "getAvailableBoxes", boxes)
    assert sim.state()["pins"] == []


async def test_a_bad_pin_type_creates_no_pin(sim: Sim, conn: Connection) -> None:
    """Before, the PIN was stored and then the call answered an error."""
    body = {"unitId": sim.room()["unitId"], "pinType": "7", **window(sim)}
    assert "pinType must be one of 1, 2, 3" in await refusal(conn, "createLockPin", body)
    assert sim.state()["pins"] == []


async def test_a_bad_locker_mode_is_refused(sim: Sim, conn: Connection) -> None:
    device = sim.state()["lockers"][0]["deviceId"]
    body = {"deviceId": device, "boxNum": "00-01", "mode": "single", **window(sim)}
    assert "mode must be one of 0, 1" in await refusal(conn, "createLockerPin", body)
    assert "checkin must be" in await refusal(
        conn, "createLockerPin", {**body, "mode": "1", "checkin": "yes"}
    )
    assert sim.state()["pins"] == []


async def test_booking_values_outside_keyvox_s_enumerations_are_refused(
    sim: Sim, conn: Connection
) -> None:
    now = sim.world.now()
    body = {
        "placeId": sim.state()["places"][0]["placeId"],
        "unitId": sim.room()["unitId"],
        "orderContact": "Mia",
        "checkin": str(now + 60),
        "checkout": str(now + 86400),
    }
    assert "payTypeCode must be one of" in await refusal(
        conn, "createBooking", {**body, "payTypeCode": "bitcoin"}
    )
    assert "customerNum" in await refusal(conn, "createBooking", {**body, "customerNum": "0"})
    past = {**body, "checkin": str(now - 7200), "checkout": str(now - 3600)}
    assert "checkout is in the past" in await refusal(conn, "createBooking", past)
    assert sim.state()["bookings"] == [] and sim.state()["pins"] == []


async def test_a_non_numeric_booking_page_is_refused_not_a_server_error(
    sim: Sim, conn: Connection
) -> None:
    assert "page must be a whole number" in await refusal(conn, "getBookingList", {"page": "x"})
    assert "count" in await refusal(conn, "getBookingList", {"count": "0"})


def test_an_unknown_door_method_is_refused(sim: Sim) -> None:
    lock_id = sim.room()["lockIds"]
    response = httpx.post(
        sim.url + "/_sim/door", json={"lockId": lock_id, "method": "magic"}, timeout=10
    )
    assert response.status_code == 400 and "method must be one of" in response.text
    assert sim.world.locks[lock_id].history == []


async def test_a_pin_keyvox_makes_up_never_collides_with_one_in_use(
    sim: Sim, conn: Connection
) -> None:
    """KEYVOX refuses a pinCode the caller chose that is in use; one it makes up is never so."""
    unit = sim.room()["unitId"]
    body = {"unitId": unit, **window(sim), "targetName": "first"}
    sim.world.rng = random.Random(1)
    first = await KeyvoxClient(conn).call("createLockPin", body)
    assert "already used" in await refusal(
        conn, "createLockPin", {**body, "pinCode": first["pinCode"]}
    )
    sim.world.rng = random.Random(1)  # would make up the same PIN again
    second = await KeyvoxClient(conn).call("createLockPin", {**body, "targetName": "second"})
    assert second["pinCode"] != first["pinCode"]
