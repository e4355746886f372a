"""KEYVOX: what its create actions make, counted in the simulator's state."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from latchflow import JSON

from . import LostAnswerCase, Simulated

API = "/api/eagle-pms/v1"


async def _state(sim: Simulated) -> JSON:
    state: JSON = (await sim.http.get("/_sim/state")).json()
    return state


async def _room(sim: Simulated) -> JSON:
    room: JSON = next(u for u in (await _state(sim))["units"] if u["unitName"].startswith("Room"))
    return room


def _window(hours: int = 24) -> JSON:
    now = int(time.time())
    return {"startTime": now + 60, "endTime": now + hours * 3600}


async def _lock_pin_input(sim: Simulated) -> JSON:
    return {"unitId": (await _room(sim))["unitId"], **_window()}


async def _lock_pins(sim: Simulated, data: JSON) -> int:
    return sum(
        p.get("unitId") == data["unitId"] and p["pinStatus"] == "1"
        for p in (await _state(sim))["pins"]
    )


async def _locker_pin_input(sim: Simulated) -> JSON:
    device = (await _state(sim))["lockers"][0]["deviceId"]
    return {"deviceId": device, "boxNum": "00-05", "targetName": "Parcel 17", **_window()}


async def _locker_pins(sim: Simulated, data: JSON) -> int:
    return sum(
        p.get("deviceId") == data["deviceId"] and p["pinStatus"] == "1"
        for p in (await _state(sim))["pins"]
    )


async def _booking_input(sim: Simulated) -> JSON:
    state = await _state(sim)
    now = int(time.time())
    return {
        "placeId": state["places"][0]["placeId"],
        "unitId": (await _room(sim))["unitId"],
        "guestName": "Hanako Yamada",
        "checkIn": now + 86400,
        "checkOut": now + 2 * 86400,
    }


async def _bookings(sim: Simulated, data: JSON) -> int:
    return sum(
        b["unitId"] == data["unitId"] and b["orderStateCode"] != "C"
        for b in (await _state(sim))["bookings"]
    )


async def _card_input(sim: Simulated) -> JSON:
    return {"lockId": (await _room(sim))["lockIds"], "cardCode": "04A1B2C3D4", **_window()}


async def _locker_card_input(sim: Simulated) -> JSON:
    device = (await _state(sim))["lockers"][0]["deviceId"]
    return {"deviceId": device, "boxNum": "00-02", "cardCode": "DEADBEEF01", **_window()}


async def _cards(sim: Simulated, data: JSON) -> int:
    return sum(
        c["cardCode"] == data["cardCode"] and c["state"] == "valid"
        for c in (await _state(sim))["cards"]
    )


def _booking_in(*steps: str) -> Callable[[Simulated], Awaitable[JSON]]:
    """Prepare a channel booking that starts now and went through ``steps``."""

    async def prepare(sim: Simulated) -> JSON:
        now = int(time.time())
        body = {"unitId": (await _room(sim))["unitId"], "orderContact": "Ken"}
        answer = await sim.http.post(
            "/_sim/bookings", json={**body, "checkin": now, "checkout": now + 86400}
        )
        order_id = answer.json()["orderId"]
        for step in steps:
            await sim.http.post(f"/_sim/bookings/{order_id}", json={"action": step})
        return {"orderId": order_id}

    return prepare


def _bookings_in(state: str) -> Callable[[Simulated, JSON], Awaitable[int]]:
    """Count the prepared booking when it is in ``state``."""

    async def count(sim: Simulated, data: JSON) -> int:
        return sum(
            b["orderId"] == data["orderId"] and b["orderStateCode"] == state
            for b in (await _state(sim))["bookings"]
        )

    return count


CASES = [
    LostAnswerCase("keyvox.create_lock_pin", f"{API}/createLockPin", _lock_pin_input, _lock_pins),
    LostAnswerCase("keyvox.issue_lock_key", f"{API}/issueLockKey", _lock_pin_input, _lock_pins),
    LostAnswerCase(
        "keyvox.create_locker_pin", f"{API}/createLockerPin", _locker_pin_input, _locker_pins
    ),
    LostAnswerCase("keyvox.create_booking", f"{API}/createBooking", _booking_input, _bookings),
    LostAnswerCase("keyvox.set_card", f"{API}/setCard", _card_input, _cards),
    LostAnswerCase("keyvox.set_locker_card", f"{API}/setLockerCard", _locker_card_input, _cards),
    LostAnswerCase(
        "keyvox.cancel_booking", f"{API}/cancelBooking", _booking_in(), _bookings_in("C")
    ),
    LostAnswerCase("keyvox.check_in_booking", f"{API}/checkIn", _booking_in(), _bookings_in("I")),
    LostAnswerCase(
        "keyvox.check_out_booking", f"{API}/checkOut", _booking_in("checkin"), _bookings_in("O")
    ),
]
