"""Reservation Management actions: places, plans, availability, bookings and their stays."""

from __future__ import annotations

from latchflow import Action
from latchflow_keyvox.actions.base import F, list_output, listed, obj, operation, s, t
from latchflow_keyvox.actions.fields import ORDER_ID, PLACE_ID, STR

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
CHECKIN = t("checkIn", "Check-in moment", vendor="checkin", required=True)
CHECKOUT = t("checkOut", "Check-out moment", vendor="checkout", required=True)
GUEST = s("guestName", "Name of the guest (order contact)", vendor="orderContact")
PHONE = s("phone", "Guest phone number (E.164)", vendor="contactTel")
GUESTS = {"type": "integer", "minimum": 1, "maximum": 99}


def transition(key: str, function: str, title: str, description: str) -> Action:
    return operation(key, function, title, description, [ORDER_ID], BOOKING, BOOKING_SAMPLE)


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
        idempotent=True,
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
        idempotent=True,
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
        idempotent=True,
    ),
    operation(
        "create_booking",
        "createBooking",
        "Create booking",
        "Book a unit of a place for a stay. KEYVOX refuses a unit already booked in that window.",
        [
            PLACE_ID,
            s("unitId", "Unit to book", required=True),
            CHECKIN,
            CHECKOUT,
            s(
                "guestName",
                "Name of the guest (order contact)",
                vendor="orderContact",
                required=True,
            ),
            PHONE,
            s("planId", "Room plan (defaults to the unit's plan)"),
            F("guests", "Number of guests", GUESTS, vendor="customerNum"),
        ],
        BOOKING,
        BOOKING_SAMPLE,
    ),
    operation(
        "update_booking",
        "updateBooking",
        "Update booking",
        "Change a booking's stay, unit, guest name or phone.",
        [
            ORDER_ID,
            s("unitId", "Move the booking to this unit"),
            t("checkIn", "New check-in moment", vendor="checkin"),
            t("checkOut", "New check-out moment", vendor="checkout"),
            GUEST,
            PHONE,
        ],
        BOOKING,
        BOOKING_SAMPLE,
        idempotent=True,
    ),
    transition(
        "cancel_booking",
        "cancelBooking",
        "Cancel booking",
        "Cancel a booking that has not started (state Q or A).",
    ),
    transition(
        "check_in_booking",
        "checkIn",
        "Check in booking",
        "Mark the guest as checked in (state A → I).",
    ),
    transition(
        "check_out_booking",
        "checkOut",
        "Check out booking",
        "Mark the guest as checked out (state I → O).",
    ),
    operation(
        "get_booking",
        "getBookingDetails",
        "Get booking details",
        "Read a booking with its state and the PINs and QR URLs of its unit.",
        [ORDER_ID],
        obj(
            {**BOOKING["properties"], "unitName": STR, "accessInfo": {"type": "array"}}, ["orderId"]
        ),
        {**BOOKING_SAMPLE, "unitName": "Room 101", "accessInfo": []},
        idempotent=True,
    ),
]
