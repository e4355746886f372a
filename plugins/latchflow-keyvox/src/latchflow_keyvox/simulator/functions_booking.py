"""Simulated Reservation Management functions; every change posts a reservation webhook.

A new reservation gets its own PIN on its unit for its stay, as KEYVOX issues one; later
changes leave that PIN as it was (``assumptions.RESERVATION_PIN_LIST_KEY``).
"""

from __future__ import annotations

from typing import Any

from latchflow_keyvox import assumptions as A
from latchflow_keyvox.simulator.functions_lock import Handler
from latchflow_keyvox.simulator.parsing import choice, maybe, maybe_unix, number, text, unix
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


PAY_TYPES = ("stripeCreditCard", "offlinePayment", "cash")


async def _announce(world: World, event: str, booking: dict[str, Any]) -> dict[str, Any]:
    booking["updateTime"] = str(world.now())
    await world.sim.deliver(world.booking_event(event, booking))
    return world.booking_record(booking)


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
    if checkout <= world.now():
        raise SimError(A.E_PARAM, "checkout is in the past")
    if not world.unit_free(unit["unitId"], checkin, checkout):
        raise SimError(A.E_PARAM, f"unit {unit['unitName']} is already booked in this window")
    contact = text(body, "orderContact")
    guests = str(number(body, "customerNum", 1, least=1))
    pay_type = choice(body, "payTypeCode", PAY_TYPES, "offlinePayment")
    plan_id = _plan_for(world, unit["unitId"], maybe(body, "planId"))
    now = str(world.now())
    order_id = world.order_id()
    booking = {
        "orderId": order_id,
        "placeId": place["placeId"],
        "unitId": unit["unitId"],
        "planId": plan_id,
        "orderContact": contact,
        "contactTel": text(body, "contactTel", ""),
        "customerNum": guests,
        "checkin": str(checkin),
        "checkout": str(checkout),
        "realCheckin": "0",
        "realCheckout": "0",
        "orderStateCode": "A",
        "payStateCode": "0",
        "payTypeCode": pay_type,
        "channelCode": text(body, "channelCode", "BACS"),
        "createTime": now,
        "updateTime": now,
    }
    pin = world.new_pin({"unitId": unit["unitId"]}, checkin, checkout, None, contact)
    pin.orderId = order_id
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
    guests = number(body, "customerNum", int(booking["customerNum"]), least=1)
    booking.update(unitId=unit_id, checkin=str(checkin), checkout=str(checkout))
    booking["customerNum"] = str(guests)
    for name in ("orderContact", "contactTel"):
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
    unit = world.units.get(booking["unitId"], {})
    return {**world.booking_record(booking), "unitName": unit.get("unitName", "")}


def _found(booking: dict[str, Any], word: str | None) -> bool:
    """listReservations' searchWord: part of the contact name or phone."""
    return word is None or any(
        word in str(booking.get(k, "")) for k in ("orderContact", "contactTel")
    )


async def get_booking_list(world: World, body: dict[str, Any]) -> Any:
    place_id = maybe(body, "placeId")
    since = maybe_unix(body, "updatedFrom") or 0
    word = maybe(body, "searchWord")
    page_no, count = number(body, "page", 1, least=1), number(body, "count", 50, least=1)
    rows = sorted(
        (
            b
            for b in world.bookings.values()
            if place_id in (None, b["placeId"])
            and int(b["updateTime"]) >= since
            and _found(b, word)
        ),
        key=lambda b: (int(b["updateTime"]), b["orderId"]),
    )
    start = (page_no - 1) * count
    chunk = [world.booking_record(b) for b in rows[start : start + count]]
    return {"total": str(len(rows)), "page": str(page_no), "list": chunk}


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
