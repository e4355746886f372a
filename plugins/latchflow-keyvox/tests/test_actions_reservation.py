"""Reservation Management actions against the simulator; each change posts a webhook."""

from __future__ import annotations

import pytest

from latchflow import FatalError
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
