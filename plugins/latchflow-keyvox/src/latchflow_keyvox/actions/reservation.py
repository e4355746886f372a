"""Reservation Management actions: places, plans, availability, and a booking's life after it
was made (changes, cancellation, check-in and -out, details with its own PIN)."""

from __future__ import annotations

from typing import Any

from latchflow import JSON, Action, RetrySafety, RunContext
from latchflow_keyvox import assumptions as A
from latchflow_keyvox.actions.base import (
    VENDOR,
    client,
    input_schema,
    list_output,
    listed,
    obj,
    operation,
    s,
    t,
)
from latchflow_keyvox.actions.fields import ORDER_ID, PLACE_ID, STR
from latchflow_keyvox.answers import Refused
from latchflow_keyvox.events import reservation_pin
from latchflow_keyvox.markers import strip_marker

BOOKING = obj(
    {
        "orderId": STR,
        "placeId": STR,
        "unitId": STR,
        "planId": STR,
        "orderContact": STR,
        "contactTel": STR,
        "checkin": {"type": "string", "description": "unix seconds"},
        "checkout": {"type": "string", "description": "unix seconds"},
        "realCheckin": {"type": "string", "description": "unix seconds, 0 = not yet"},
        "realCheckout": {"type": "string", "description": "unix seconds, 0 = not yet"},
        "orderStateCode": {
            "type": "string",
            "description": "Q requested, A not checked in, I checked in, O checked out, C cancelled",
        },
    },
    ["orderId", "orderStateCode"],
)
BOOKING_SAMPLE = {
    "orderId": "K7Q2M9X4A",
    "placeId": "5e901978ef16f912aa9a0001",
    "unitId": "5e901978ef16f912aa9aaaa7",
    "planId": "5e901978ef16f912aa9a0101",
    "orderContact": "Hanako Yamada",
    "contactTel": "+81312345678",
    "checkin": "1775023200",
    "checkout": "1775102400",
    "realCheckin": "0",
    "realCheckout": "0",
    "orderStateCode": "A",
}
PLACE = obj(
    {"placeId": STR, "placeName": STR, "placeAddress": STR, "placeUtc": STR, "unitNum": STR},
    ["placeId"],
)
PLAN = obj({"planId": STR, "planName": STR, "unitIds": {"type": "array"}, "price": STR}, ["planId"])
ROOM = obj({"unitId": STR, "unitName": STR, "planId": STR}, ["unitId"])
PHONE = s("phone", "Guest phone number (E.164)", vendor="contactTel")
BOOKING_PIN = {
    "pinId": {
        "type": "string",
        "description": "Id of the reservation's own PIN (for Change/Disable lock PIN), or empty",
    },
    "pinCode": {"type": "string", "description": "The PIN KEYVOX issued for the reservation"},
    "qrCodeUrl": {"type": "string", "description": "The reservation PIN's short QR key URL"},
}
BOOKING_PIN_SAMPLE = {
    "pinId": "5e901978ef16f912aa9aaab3",
    "pinCode": "482913",
    "qrCodeUrl": "https://kvx.sh/a8Fk2LmQ",
}
BOOKING_CREDENTIALS = (
    "pinCode",
    "qrCodeUrl",
    f"{A.RESERVATION_PIN_LIST_KEY}.pin",
    f"{A.RESERVATION_PIN_LIST_KEY}.qrShortUrl",
)


def booking_output(data: Any, data_in: JSON | None = None) -> JSON:
    """A booking as KEYVOX answered it, without the marker create_booking put in its name."""
    booking = dict(data or {})
    if "orderContact" in booking:
        booking["orderContact"] = strip_marker(str(booking["orderContact"]))
    return booking


def transition(key: str, function: str, title: str, description: str, state: str) -> Action:
    """An action that moves a booking to ``state``; a booking already there is success (so a
    retry after a lost answer succeeds)."""

    async def run(ctx: RunContext, data: JSON) -> JSON:
        api = client(ctx, key)
        body = {"orderId": data["orderId"]}
        try:
            return booking_output(await api.call(function, body))
        except Refused as exc:
            if exc.answer.code != A.E_PARAM:
                raise
            current = await api.call("getBookingDetails", body) or {}
            if str(current.get("orderStateCode")) != state:
                raise
            ctx.logger.info("KEYVOX booking %s was already in state %s", data["orderId"], state)
            return booking_output(current)

    return Action(
        key=f"{VENDOR}.{key}",
        title=title,
        description=description + f" A booking already in state {state} is left as it is.",
        input_schema=input_schema([ORDER_ID]),
        output_schema=BOOKING,
        sample={**BOOKING_SAMPLE, "orderStateCode": state},
        run=run,
        connection=VENDOR,
        retry_safety=RetrySafety.IDEMPOTENT,
    )


def booking_details(data: Any, data_in: JSON) -> JSON:
    booking = booking_output(data)
    pin = reservation_pin(None, booking.get(A.RESERVATION_PIN_LIST_KEY))
    return {**booking, "pinId": "", **pin}


ACTIONS: list[Action] = [
    operation(
        "list_places",
        "getPlaces",
        "List places",
        "List the facilities (places) of the organization with their time zone offset.",
        [],
        list_output("places", PLACE),
        {
            "places": [
                {
                    "placeId": "5e901978ef16f912aa9a0001",
                    "placeName": "Demo Hotel",
                    "placeAddress": "1-2-3 Shibuya, Tokyo",
                    "placeUtc": "9",
                    "unitNum": "3",
                }
            ],
            "count": 1,
        },
        listed("places"),
        retry_safety=RetrySafety.IDEMPOTENT,
    ),
    operation(
        "list_room_plans",
        "getRoomPlans",
        "List room plans",
        "List the room plans of a place and the units each plan sells.",
        [PLACE_ID],
        list_output("plans", PLAN),
        {
            "plans": [
                {
                    "planId": "5e901978ef16f912aa9a0101",
                    "planName": "Standard double",
                    "unitIds": ["5e901978ef16f912aa9aaaa7"],
                    "price": "12000",
                }
            ],
            "count": 1,
        },
        listed("plans"),
        retry_safety=RetrySafety.IDEMPOTENT,
    ),
    operation(
        "find_available_rooms",
        "getAvailableRooms",
        "Find available rooms",
        "Find the units of a place that are free for a whole stay, optionally for one plan.",
        [
            PLACE_ID,
            t("checkIn", "Start of the stay", vendor="fromTime", required=True),
            t("checkOut", "End of the stay", vendor="toTime", required=True),
            s("planId", "Only rooms of this plan"),
        ],
        list_output("rooms", ROOM),
        {
            "rooms": [
                {"unitId": "5e901978ef16f912aa9aaaa7", "unitName": "Room 101", "planId": "5e90"}
            ],
            "count": 1,
        },
        listed("rooms"),
        retry_safety=RetrySafety.IDEMPOTENT,
    ),
    operation(
        "update_booking",
        "updateBooking",
        "Update booking",
        "Change a booking's stay, unit, guest name or phone. The reservation's PIN keeps its"
        " window: move it with Change lock PIN (see the booking-updated example flow).",
        [
            ORDER_ID,
            s("unitId", "Move the booking to this unit"),
            t("checkIn", "New check-in moment", vendor="checkin"),
            t("checkOut", "New check-out moment", vendor="checkout"),
            s("guestName", "Name of the guest (order contact)", vendor="orderContact"),
            PHONE,
        ],
        BOOKING,
        BOOKING_SAMPLE,
        booking_output,
        retry_safety=RetrySafety.IDEMPOTENT,
    ),
    transition(
        "cancel_booking",
        "cancelBooking",
        "Cancel booking",
        "Cancel a booking that has not started (state Q or A).",
        "C",
    ),
    transition(
        "check_in_booking",
        "checkIn",
        "Check in booking",
        "Mark the guest as checked in (state A → I).",
        "I",
    ),
    transition(
        "check_out_booking",
        "checkOut",
        "Check out booking",
        "Mark the guest as checked out (state I → O).",
        "O",
    ),
    operation(
        "get_booking",
        "getBookingDetails",
        "Get booking details",
        "Read a booking with its state and the PIN KEYVOX issued for it (pinId, pinCode,"
        " qrCodeUrl; empty when it has none or it was deleted).",
        [ORDER_ID],
        obj(
            {
                **BOOKING["properties"],
                **BOOKING_PIN,
                "unitName": STR,
                A.RESERVATION_PIN_LIST_KEY: {
                    "type": "array",
                    "description": "The reservation's PINs: pin, qrShortUrl, pinStatus, pinId",
                },
            },
            ["orderId", "pinId", "pinCode", "qrCodeUrl"],
        ),
        {
            **BOOKING_SAMPLE,
            **BOOKING_PIN_SAMPLE,
            "unitName": "Room 101",
            A.RESERVATION_PIN_LIST_KEY: [
                {
                    "pinId": BOOKING_PIN_SAMPLE["pinId"],
                    "pin": BOOKING_PIN_SAMPLE["pinCode"],
                    "qrShortUrl": BOOKING_PIN_SAMPLE["qrCodeUrl"],
                    "pinStatus": "1",
                }
            ],
        },
        booking_details,
        retry_safety=RetrySafety.IDEMPOTENT,
        credentials=BOOKING_CREDENTIALS,
    ),
]
