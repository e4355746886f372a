"""Turning KEYVOX webhook bodies and polled records into trigger event data.

Webhook and polling produce the same event id for the same occurrence, so the engine
dedupes an event that arrives both ways.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from latchflow import JSON, TriggerEvent
from latchflow_keyvox import assumptions as A

METHODS = {"1": "pin", "2": "card", "5": "button", "6": "knob", "9": "app"}
BOOKING_STATES = {"C": "cancelled", "I": "checked_in", "O": "checked_out"}


def idempotency_tag(key: str) -> str:
    """The suffix create_lock_pin adds to targetName for the step's idempotency key."""
    digest = hashlib.sha256(key.encode()).hexdigest()[: A.IDEMPOTENCY_TAG_LENGTH]
    return f"{A.IDEMPOTENCY_TAG_PREFIX}{digest}"


def strip_tag(name: str) -> str:
    cut = name.rfind(A.IDEMPOTENCY_TAG_PREFIX)
    return name[:cut] if cut >= 0 else name


def iso(unix: Any) -> str:
    return datetime.fromtimestamp(int(unix), UTC).isoformat().replace("+00:00", "Z")


def lock_event(item: JSON, lock_id: str, unit_id: str, device_name: str) -> TriggerEvent:
    """A history entry (webhook ``data`` or getLockHistory item) as a lock trigger event."""
    action = str(item.get(A.HISTORY_ACTION_FIELD) or "unlock")
    etype = str(item.get("etype", ""))
    data = {
        "lockId": lock_id,
        "unitId": unit_id,
        "deviceName": device_name,
        "action": action,
        "time": iso(item.get("etime", 0)),
        "etime": str(item.get("etime", "")),
        "etype": etype,
        "method": METHODS.get(etype, "other"),
        "userName": strip_tag(str(item.get("userName") or "")),
        "pinCode": str(item.get("value") or "") if etype == "1" else "",
    }
    event_id = ":".join(
        [lock_id, data["etime"], etype, action, data["userName"], str(item.get("value") or "")]
    )
    return TriggerEvent(trigger=A.UNLOCK_WEBHOOK_EVENTS[action], id=event_id, data=data)


def booking_kind(booking: JSON) -> str:
    state = str(booking.get("orderStateCode", ""))
    if state in BOOKING_STATES:
        return BOOKING_STATES[state]
    if str(booking.get("createTime")) == str(booking.get("updateTime")):
        return "created"
    return "updated"


def booking_event(kind: str, fields: JSON, updated: Any) -> TriggerEvent:
    """``fields`` holds orderId, placeId, unitId, unitName, planId, guestName, phone, checkin,
    checkout (unix) and status."""
    data = {
        "event": kind,
        "orderId": str(fields["orderId"]),
        "placeId": str(fields.get("placeId") or ""),
        "unitId": str(fields.get("unitId") or ""),
        "unitName": str(fields.get("unitName") or ""),
        "planId": str(fields.get("planId") or ""),
        "guestName": str(fields.get("guestName") or ""),
        "phone": str(fields.get("phone") or ""),
        "checkIn": iso(fields["checkin"]),
        "checkOut": iso(fields["checkout"]),
        "status": str(fields.get("status") or ""),
        "accessInfo": list(fields.get("accessInfo") or []),
    }
    return TriggerEvent(
        trigger=f"keyvox.booking_{kind}", id=f"{data['orderId']}:{kind}:{updated}", data=data
    )


def booking_from_webhook(body: JSON) -> TriggerEvent | None:
    trigger = A.BOOKING_WEBHOOK_EVENTS.get(str(body.get("event")))
    data = body.get("data")
    if trigger is None or not isinstance(data, dict) or not data.get("reservationCode"):
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
    return booking_event(trigger.removeprefix("keyvox.booking_"), fields, body.get("eventTime"))


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
    }
    return booking_event(booking_kind(record), fields, record.get("updateTime"))
