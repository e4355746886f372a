"""Reservation Management actions against the simulator; each change posts a webhook."""

from __future__ import annotations

import pytest

from latchflow import JSON, FatalError, RetryableError
from latchflow_keyvox.testing import Runner, Sim


async def test_booking_lifecycle(sim: Sim, run: Runner) -> None:
    sim.control("/_sim/webhooks", {"url": "http://127.0.0.1:9/nowhere"})  # deliveries are logged
    places = await run("keyvox.list_places", {})
    place = places["places"][0]
    assert place["placeUtc"] == "9" and place["unitNum"] == "3"
    plans = await run("keyvox.list_room_plans", {"placeId": place["placeId"]})
    double = next(p for p in plans["plans"] if p["planName"] == "Standard double")
    now = sim.world.now()
    stay = {"checkIn": now + 86400, "checkOut": now + 2 * 86400}
    rooms = await run(
        "keyvox.find_available_rooms",
        {"placeId": place["placeId"], "planId": double["planId"], **stay},
    )
    assert rooms["count"] == 2
    booking = await run(
        "keyvox.create_booking",
        {
            "placeId": place["placeId"],
            "unitId": rooms["rooms"][0]["unitId"],
            "guestName": "Hanako Yamada",
            "guests": 2,
            **stay,
        },
    )
    assert booking["orderStateCode"] == "A" and len(booking["orderId"]) == 9
    assert booking["planId"] == double["planId"]
    left = await run("keyvox.find_available_rooms", {"placeId": place["placeId"], **stay})
    assert rooms["rooms"][0]["unitId"] not in {r["unitId"] for r in left["rooms"]}
    with pytest.raises(FatalError, match="already booked"):
        await run(
            "keyvox.create_booking",
            {"placeId": place["placeId"], "unitId": booking["unitId"], "guestName": "X", **stay},
        )
    moved = await run(
        "keyvox.update_booking",
        {"orderId": booking["orderId"], "checkOut": now + 3 * 86400, "phone": "+81312345678"},
    )
    assert moved["checkout"] == str(now + 3 * 86400) and moved["contactTel"] == "+81312345678"
    with pytest.raises(FatalError, match="state A"):
        await run("keyvox.check_out_booking", {"orderId": booking["orderId"]})
    checked_in = await run("keyvox.check_in_booking", {"orderId": booking["orderId"]})
    assert checked_in["orderStateCode"] == "I" and checked_in["realCheckin"] != "0"
    details = await run("keyvox.get_booking", {"orderId": booking["orderId"]})
    assert details["unitName"].startswith("Room")
    with pytest.raises(FatalError, match="cancel"):
        await run("keyvox.cancel_booking", {"orderId": booking["orderId"]})
    out = await run("keyvox.check_out_booking", {"orderId": booking["orderId"]})
    assert out["orderStateCode"] == "O"
    events = [d.body["event"] for d in sim.world.sim.deliveries]
    assert events == [
        "booking.created",
        "booking.updated",
        "booking.checked_in",
        "booking.checked_out",
    ]


async def test_cancel_booking_and_unknown_ids(sim: Sim, run: Runner) -> None:
    place = (await run("keyvox.list_places", {}))["places"][0]
    now = sim.world.now()
    booking = await run(
        "keyvox.create_booking",
        {
            "placeId": place["placeId"],
            "unitId": sim.room(1)["unitId"],
            "guestName": "Ken",
            "checkIn": now + 60,
            "checkOut": now + 86400,
        },
    )
    cancelled = await run("keyvox.cancel_booking", {"orderId": booking["orderId"]})
    assert cancelled["orderStateCode"] == "C"
    with pytest.raises(FatalError, match="E0043"):
        await run("keyvox.get_booking", {"orderId": "NOSUCH123"})


async def booked(sim: Sim, run: Runner, checkin_in: int = 60) -> JSON:
    place = (await run("keyvox.list_places", {}))["places"][0]
    now = sim.world.now()
    booking: JSON = await run(
        "keyvox.create_booking",
        {
            "placeId": place["placeId"],
            "unitId": sim.room(1)["unitId"],
            "guestName": "Ken",
            "checkIn": now + checkin_in,
            "checkOut": now + 86400,
        },
    )
    return booking


@pytest.mark.parametrize(
    ("key", "function", "before", "state"),
    [
        ("keyvox.cancel_booking", "cancelBooking", [], "C"),
        ("keyvox.check_in_booking", "checkIn", [], "I"),
        ("keyvox.check_out_booking", "checkOut", ["keyvox.check_in_booking"], "O"),
    ],
)
async def test_a_retry_after_a_lost_answer_finds_the_booking_in_the_state_asked_for(
    sim: Sim, run: Runner, key: str, function: str, before: list[str], state: str
) -> None:
    """Before, the retry failed: "booking is in state C; cancel needs one of Q, A"."""
    booking = await booked(sim, run)
    for step in before:
        await run(step, {"orderId": booking["orderId"]})
    sim.control("/_sim/faults", {"kind": "lost", "path": f"/api/eagle-pms/v1/{function}"})
    with pytest.raises(RetryableError):
        await run(key, {"orderId": booking["orderId"]})
    retried = await run(key, {"orderId": booking["orderId"]})
    assert retried["orderStateCode"] == state and retried["orderContact"] == "Ken"


async def test_a_booking_in_another_state_is_still_refused(sim: Sim, run: Runner) -> None:
    booking = await booked(sim, run)
    await run("keyvox.cancel_booking", {"orderId": booking["orderId"]})
    with pytest.raises(FatalError, match="state C; checked_in needs one of A"):
        await run("keyvox.check_in_booking", {"orderId": booking["orderId"]})


async def test_a_booking_comes_with_its_own_pin(sim: Sim, run: Runner) -> None:
    booking = await booked(sim, run)
    details = await run("keyvox.get_booking", {"orderId": booking["orderId"]})
    [pin] = [p for p in sim.state()["pins"] if p.get("unitId") == sim.room(1)["unitId"]]
    assert (details["pinId"], details["pinCode"]) == (pin["pinId"], pin["pinCode"])
    assert details["qrCodeUrl"] == pin["shortQrUrl"]
    assert (pin["sTime"], pin["eTime"]) == (booking["checkin"], booking["checkout"])
    assert booking["unitPinList"][0]["pin"] == pin["pinCode"]
    await run("keyvox.disable_lock_pin", {"pinId": pin["pinId"]})
    gone = await run("keyvox.get_booking", {"orderId": booking["orderId"]})
    assert (gone["pinId"], gone["pinCode"]) == ("", "")
