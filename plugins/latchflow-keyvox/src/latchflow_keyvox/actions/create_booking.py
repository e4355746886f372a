"""Creating a booking once: a retried, replayed or late-applied step never books twice.

The booking's ``orderContact`` carries the step's marker; the place's bookings are searched
for it (``searchWord`` of the booking list). KEYVOX refuses a unit already booked for the
stay, so an attempt applied late usually fails at KEYVOX; when it did not, the extra booking
is cancelled.
"""

from __future__ import annotations

from latchflow import JSON, Action, Pending, RetrySafety, RunContext
from latchflow_keyvox import assumptions as A
from latchflow_keyvox.actions.base import VENDOR, F, body_from, client, input_schema, obj, s, t
from latchflow_keyvox.actions.fields import PLACE_ID
from latchflow_keyvox.actions.reconcile import (
    DEFAULT_VERIFY_AFTER_SECONDS,
    MADE_OUTPUT,
    VERIFY_AFTER,
    Kind,
    create_once,
)
from latchflow_keyvox.actions.reservation import (
    BOOKING,
    BOOKING_CREDENTIALS,
    BOOKING_SAMPLE,
    PHONE,
    booking_output,
)
from latchflow_keyvox.client import KeyvoxClient
from latchflow_keyvox.markers import marker

CLOSED_STATES = ("C", "B")
FIELDS = [
    PLACE_ID,
    s("unitId", "Unit to book", required=True),
    t("checkIn", "Check-in moment", vendor="checkin", required=True),
    t("checkOut", "Check-out moment", vendor="checkout", required=True),
    s("guestName", "Name of the guest (order contact)", vendor="orderContact", required=True),
    PHONE,
    s("planId", "Room plan (defaults to the unit's plan)"),
    F(
        "guests",
        "Number of guests",
        {"type": "integer", "minimum": 1, "maximum": 99},
        vendor="customerNum",
    ),
]


async def marked_bookings(api: KeyvoxClient, body: JSON) -> list[JSON]:
    """The open bookings of ``body``'s place whose contact is ``body``'s marked name."""
    query = {"placeId": body["placeId"], "searchWord": body["orderContact"], "count": "100"}
    rows: list[JSON] = []
    page = 1
    while True:
        data = await api.call(A.BOOKING_LIST_FUNCTION, {**query, "page": str(page)}) or {}
        batch = list(data.get("list") or [])
        rows += batch
        if not batch or len(rows) >= int(data.get("total") or 0):
            break
        page += 1
    return [
        row
        for row in rows
        if row.get("orderContact") == body["orderContact"]
        and row.get("orderStateCode") not in CLOSED_STATES
    ]


async def create(api: KeyvoxClient, body: JSON) -> JSON:
    return dict(await api.call("createBooking", body) or {})


async def cancel(api: KeyvoxClient, booking: JSON) -> None:
    await api.call("cancelBooking", {"orderId": booking["orderId"]})


BOOKING_KIND = Kind("booking", "orderId", create, marked_bookings, cancel)


async def create_booking(ctx: RunContext, data: JSON) -> JSON | Pending:
    body = body_from(FIELDS, data)
    body["orderContact"] = str(data["guestName"]) + marker(ctx.idempotency_key)
    verify_after = int(data.get("verifyAfterSeconds", DEFAULT_VERIFY_AFTER_SECONDS))
    made = await create_once(ctx, client(ctx, "create_booking"), BOOKING_KIND, body, verify_after)
    if isinstance(made, Pending):
        return made
    return booking_output(made.output({}))


create_booking_action = Action(
    key=f"{VENDOR}.create_booking",
    title="Create booking",
    description=(
        "Book a unit of a place for a stay; KEYVOX issues the reservation's PIN (see Get"
        " booking details). KEYVOX refuses a unit already booked in that window; a retried or"
        " replayed step returns the booking it made before."
    ),
    input_schema=input_schema([*FIELDS, VERIFY_AFTER]),
    output_schema=obj(
        {**BOOKING["properties"], **MADE_OUTPUT}, ["orderId", "orderStateCode", "reused"]
    ),
    sample={**BOOKING_SAMPLE, "reused": False, "duplicatesRemoved": []},
    run=create_booking,
    connection=VENDOR,
    credentials=BOOKING_CREDENTIALS,
    retry_safety=RetrySafety.RECONCILE,
)

ACTIONS = [create_booking_action]
