"""Simulated Reservation Management functions; every change posts a reservation webhook."""

from __future__ import annotations

from typing import Any

from latchflow_keyvox import assumptions as A
from latchflow_keyvox.simulator.functions_lock import Handler
from latchflow_keyvox.simulator.parsing import maybe, maybe_unix, text, unix
from latchflow_keyvox.simulator.world import SimError, World


async def get_places(world: World, body: dict[str, Any]) -> Any:
    out = []
    for place in world.places.values():
        units = [u for u in world.units.values() if u["placeId"] == place["placeId"]]
        out.append(
            {
                **place,
                "placeUtc": str(place["placeUtc"]),
                "unitNum": str(len(units)),
                "deviceNum": str(sum(len(u["lockIds"]) for u in units)),
            }
        )
    return out


async def get_room_plans(world: World, body: dict[str, Any]) -> Any:
    place = world.place(text(body, "placeId"))
    return [p for p in world.plans.values() if p["placeId"] == place["placeId"]]


async def get_available_rooms(world: World, body: dict[str, Any]) -> Any:
    place = world.place(text(body, "placeId"))
    s, e = unix(body, "fromTime"), unix(body, "toTime")
    if e <= s:
        raise SimError(A.E_PARAM, "toTime must be after fromTime")
    plan_id = maybe(body, "planId")
    out = []
    for plan in world.plans.values():
        if plan["placeId"] != place["placeId"] or plan_id not in (None, plan["planId"]):
            continue
        for unit_id in plan["unitIds"]:
            if world.unit_free(unit_id, s, e):
                unit = world.units[unit_id]
                out.append(
                    {"unitId": unit_id, "unitName": unit["unitName"], "planId": plan["planId"]}
                )
    return out


async def _announce(world: World, event: str, booking: dict[str, Any]) -> dict[str, Any]:
    booking["updateTime"] = str(world.now())
    await world.sim.deliver(world.booking_event(event, booking))
    return booking


def _plan_for(world: World, unit_id: str, plan_id: str | None) -> str:
    for plan in world.plans.values():
        if unit_id in plan["unitIds"] and plan_id in (None, plan["planId"]):
            return str(plan["planId"])
    if plan_id:
        raise SimError(A.E_NOT_FOUND, f"plan {plan_id} does not include unit {unit_id}")
    return ""


async def create_booking(world: World, body: dict[str, Any]) -> Any:
    place = world.place(text(body, "placeId"))
    unit = world.unit(text(body, "unitId"))
    if unit["placeId"] != place["placeId"]:
        raise SimError(A.E_NOT_FOUND, f"unit {unit['unitId']} is not in place {place['placeId']}")
    checkin, checkout = unix(body, "checkin"), unix(body, "checkout")
    if checkout <= checkin:
        raise SimError(A.E_PARAM, "checkout must be after checkin")
    if not world.unit_free(unit["unitId"], checkin, checkout):
        raise SimError(A.E_PARAM, f"unit {unit['unitName']} is already booked in this window")
    now = str(world.now())
    order_id = world.order_id()
    booking = {
        "orderId": order_id,
        "placeId": place["placeId"],
        "unitId": unit["unitId"],
        "planId": _plan_for(world, unit["unitId"], maybe(body, "planId")),
        "orderContact": text(body, "orderContact"),
        "contactTel": text(body, "contactTel", ""),
        "customerNum": text(body, "customerNum", "1"),
        "checkin": str(checkin),
        "checkout": str(checkout),
        "realCheckin": "0",
        "realCheckout": "0",
        "orderStateCode": "A",
        "payStateCode": "0",
        "payTypeCode": text(body, "payTypeCode", "offlinePayment"),
        "channelCode": text(body, "channelCode", "BACS"),
        "createTime": now,
        "updateTime": now,
    }
    world.bookings[order_id] = booking
    return await _announce(world, "booking.created", booking)


async def update_booking(world: World, body: dict[str, Any]) -> Any:
    booking = world.booking(text(body, "orderId"))
    if booking["orderStateCode"] not in ("Q", "A", "I"):
        raise SimError(A.E_PARAM, f"booking {booking['orderId']} can no longer be changed")
    unit_id = maybe(body, "unitId") or booking["unitId"]
    world.unit(unit_id)
    checkin = maybe_unix(body, "checkin") or int(booking["checkin"])
    checkout = maybe_unix(body, "checkout") or int(booking["checkout"])
    if checkout <= checkin:
        raise SimError(A.E_PARAM, "checkout must be after checkin")
    if not world.unit_free(unit_id, checkin, checkout, skip=booking["orderId"]):
        raise SimError(A.E_PARAM, "the unit is already booked in this window")
    booking.update(unitId=unit_id, checkin=str(checkin), checkout=str(checkout))
    for name in ("orderContact", "contactTel", "customerNum"):
        booking[name] = text(body, name, booking[name])
    return await _announce(world, "booking.updated", booking)


async def _transition(
    world: World, body: dict[str, Any], allowed: str, state: str, event: str
) -> dict[str, Any]:
    booking = world.booking(text(body, "orderId"))
    if booking["orderStateCode"] not in allowed:
        raise SimError(
            A.E_PARAM,
            f"booking {booking['orderId']} is in state {booking['orderStateCode']};"
            f" {event.split('.')[1]} needs one of {', '.join(allowed)}",
        )
    booking["orderStateCode"] = state
    if state == "I":
        booking["realCheckin"] = str(world.now())
    if state == "O":
        booking["realCheckout"] = str(world.now())
    return await _announce(world, event, booking)


async def cancel_booking(world: World, body: dict[str, Any]) -> Any:
    return await _transition(world, body, "QA", "C", "booking.cancelled")


async def check_in(world: World, body: dict[str, Any]) -> Any:
    return await _transition(world, body, "A", "I", "booking.checked_in")


async def check_out(world: World, body: dict[str, Any]) -> Any:
    return await _transition(world, body, "I", "O", "booking.checked_out")


async def get_booking_details(world: World, body: dict[str, Any]) -> Any:
    booking = world.booking(text(body, "orderId"))
    event = world.booking_event("", booking)
    return {
        **booking,
        "unitName": event["data"]["unitName"],
        "accessInfo": event["data"]["accessInfo"],
    }


async def get_booking_list(world: World, body: dict[str, Any]) -> Any:
    place_id = maybe(body, "placeId")
    since = maybe_unix(body, "updatedFrom") or 0
    page_no, count = int(text(body, "page", "1")), int(text(body, "count", "50"))
    rows = sorted(
        (
            b
            for b in world.bookings.values()
            if place_id in (None, b["placeId"]) and int(b["updateTime"]) >= since
        ),
        key=lambda b: (int(b["updateTime"]), b["orderId"]),
    )
    start = (page_no - 1) * count
    return {"total": str(len(rows)), "page": str(page_no), "list": rows[start : start + count]}


FUNCTIONS: dict[str, Handler] = {
    "getPlaces": get_places,
    "getRoomPlans": get_room_plans,
    "getAvailableRooms": get_available_rooms,
    "createBooking": create_booking,
    "updateBooking": update_booking,
    "cancelBooking": cancel_booking,
    "checkIn": check_in,
    "checkOut": check_out,
    "getBookingDetails": get_booking_details,
    A.BOOKING_LIST_FUNCTION: get_booking_list,
}
