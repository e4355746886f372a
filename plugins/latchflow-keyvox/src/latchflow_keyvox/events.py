"""Turning KEYVOX webhook bodies and polled records into trigger event data.

Webhook and polling produce the same event id for the same occurrence, so the engine
dedupes an event that arrives both ways.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from latchflow import JSON, TriggerEvent
from latchflow_keyvox import assumptions as A
from latchflow_keyvox.markers import strip_marker

METHODS = {"1": "pin", "2": "card", "5": "button", "6": "knob", "9": "app"}
LOCK_TRIGGERS = {"unlock": "keyvox.lock_unlocked", "lock": "keyvox.lock_locked"}
BOOKING_STATES = {"C": "cancelled", "I": "checked_in", "O": "checked_out"}
BOOKING_TRIGGER_PREFIX = "keyvox.booking_"


def iso(unix: Any) -> str:
    return datetime.fromtimestamp(int(unix), UTC).isoformat().replace("+00:00", "Z")


# lock history -----------------------------------------------------------------------------
def history_direction(item: JSON) -> str | None:
    """``unlock`` or ``lock`` for a history entry by its documented fields, None when they do
    not tell (see ``assumptions.HISTORY_DIRECTIONS``)."""
    if str(item.get("etype", "")) in A.HISTORY_UNLOCK_ETYPES:
        return "unlock"
    return A.HISTORY_DIRECTIONS.get(str(item.get("value", "")))


def lock_event(
    direction: str, item: JSON, lock_id: str, unit_id: str, device_name: str
) -> TriggerEvent:
    """A history entry (webhook ``data`` or getLockHistory item) as a lock trigger event."""
    etype = str(item.get("etype", ""))
    value = str(item.get("value") or "")
    data = {
        "lockId": lock_id,
        "unitId": unit_id,
        "deviceName": device_name,
        "action": direction,
        "time": iso(item.get("etime", 0)),
        "etime": str(item.get("etime", "")),
        "etype": etype,
        "method": METHODS.get(etype, "other"),
        "userName": strip_marker(str(item.get("userName") or "")),
        "pinCode": value if etype == "1" else "",
    }
    event_id = ":".join([lock_id, data["etime"], etype, direction, data["userName"], value])
    return TriggerEvent(trigger=LOCK_TRIGGERS[direction], id=event_id, data=data)


def lock_direction_of(trigger: str) -> str | None:
    """The direction a lock trigger stands for (None for another trigger)."""
    return next((d for d, key in LOCK_TRIGGERS.items() if key == trigger), None)


# bookings ---------------------------------------------------------------------------------
def booking_kind(booking: JSON) -> str:
    state = str(booking.get("orderStateCode", ""))
    if state in BOOKING_STATES:
        return BOOKING_STATES[state]
    if str(booking.get("createTime")) == str(booking.get("updateTime")):
        return "created"
    return "updated"


def reservation_pin(access_info: Any, unit_pins: Any) -> JSON:
    """The reservation's own PIN (``pinCode``, ``qrCodeUrl``, ``pinId`` when known) from a
    webhook's ``accessInfo`` or a reservation's ``unitPinList``; empty strings when none."""
    for item in access_info or []:
        if isinstance(item, dict) and item.get("pinCode"):
            return {"pinCode": str(item["pinCode"]), "qrCodeUrl": str(item.get("qrCodeUrl", ""))}
    for item in unit_pins or []:
        if (
            isinstance(item, dict)
            and item.get("pin")
            and str(item.get("pinStatus")) != A.RESERVATION_PIN_DELETED
        ):
            return {
                "pinCode": str(item["pin"]),
                "qrCodeUrl": str(item.get("qrShortUrl", "")),
                "pinId": str(item.get("pinId", "")),
            }
    return {"pinCode": "", "qrCodeUrl": ""}


def booking_event(trigger: str, fields: JSON, updated: Any) -> TriggerEvent:
    """``fields`` holds orderId, placeId, unitId, unitName, planId, guestName, phone, checkin,
    checkout (unix), status and the reservation's accessInfo or unitPinList. The event says
    whether the reservation has its own PIN, not the PIN: events are not sealed like the
    outputs of actions, so a flow reads the PIN with ``keyvox.get_booking``."""
    kind = trigger.removeprefix(BOOKING_TRIGGER_PREFIX)
    pin = reservation_pin(fields.get("accessInfo"), fields.get("unitPinList"))
    data = {
        "event": kind,
        "orderId": str(fields["orderId"]),
        "placeId": str(fields.get("placeId") or ""),
        "unitId": str(fields.get("unitId") or ""),
        "unitName": str(fields.get("unitName") or ""),
        "planId": str(fields.get("planId") or ""),
        "guestName": strip_marker(str(fields.get("guestName") or "")),
        "phone": str(fields.get("phone") or ""),
        "checkIn": iso(fields["checkin"]),
        "checkOut": iso(fields["checkout"]),
        "status": str(fields.get("status") or ""),
        "hasPin": bool(pin["pinCode"]),
    }
    return TriggerEvent(trigger=trigger, id=f"{data['orderId']}:{kind}:{updated}", data=data)


def booking_from_webhook(trigger: str, body: JSON) -> TriggerEvent | None:
    """The event for a reservation webhook body; None when it names no reservation."""
    data = body.get("data")
    if not isinstance(data, dict) or not data.get("reservationCode"):
        return None
    fields = {
        "orderId": data["reservationCode"],
        "placeId": data.get("placeId"),
        "unitId": data.get("unitId"),
        "unitName": data.get("unitName"),
        "planId": data.get("planId"),
        "guestName": data.get("orderContact"),
        "phone": data.get("contactTel"),
        "checkin": data.get("checkinTime", 0),
        "checkout": data.get("checkoutTime", 0),
        "status": data.get("orderStateCode"),
        "accessInfo": data.get("accessInfo"),
    }
    return booking_event(trigger, fields, body.get("eventTime"))


def booking_from_record(record: JSON, unit_names: dict[str, str]) -> TriggerEvent:
    fields = {
        "orderId": record["orderId"],
        "placeId": record.get("placeId"),
        "unitId": record.get("unitId"),
        "unitName": unit_names.get(str(record.get("unitId")), ""),
        "planId": record.get("planId"),
        "guestName": record.get("orderContact"),
        "phone": record.get("contactTel"),
        "checkin": record.get("checkin", 0),
        "checkout": record.get("checkout", 0),
        "status": record.get("orderStateCode"),
        "unitPinList": record.get(A.RESERVATION_PIN_LIST_KEY),
    }
    trigger = BOOKING_TRIGGER_PREFIX + booking_kind(record)
    return booking_event(trigger, fields, record.get("updateTime"))
