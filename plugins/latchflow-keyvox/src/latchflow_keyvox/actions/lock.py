"""Smart Lock actions: units, PIN reads and changes, unlock/lock, status, history, events."""

from __future__ import annotations

from latchflow import Action, RetrySafety
from latchflow_keyvox import assumptions as A
from latchflow_keyvox.actions.base import (
    OK_OUTPUT,
    done,
    list_output,
    listed,
    obj,
    operation,
    paginated,
    s,
    t,
)
from latchflow_keyvox.actions.deadline import opening
from latchflow_keyvox.actions.fields import (
    END_OPT,
    LOCK_ID,
    PIN_CODE,
    PIN_ID,
    PIN_OUTPUT,
    PIN_SAMPLE,
    START_OPT,
    STR,
    TARGET_NAME,
    UNIT_ID,
)

UNIT_ITEM = obj(
    {
        "unitId": STR,
        "unitName": STR,
        "placeName": STR,
        "placeType": STR,
        "unitState": STR,
        "lockIds": {"type": "string", "description": "comma-separated lock ids"},
    },
    ["unitId"],
)
HISTORY_ITEM = obj(
    {
        "etime": {"type": "string", "description": "unix seconds"},
        "etype": {"type": "string", "description": "1 PIN, 2 card, 5 button, 6 knob, 9 app/API"},
        "userName": STR,
        "value": {"type": "string", "description": "the PIN used, when etype is 1"},
    },
    ["etime", "etype"],
)
HISTORY_SAMPLE = {
    "etime": "1775023260",
    "etype": "1",
    "userName": "Hanako Yamada",
    "value": "482913",
}
WINDOW_FILTER = [
    t("startTime", "Only PINs valid after this moment", vendor="sTime"),
    t("endTime", "Only PINs valid before this moment", vendor="eTime"),
]

ACTIONS: list[Action] = [
    operation(
        "list_units",
        "getUnits",
        "List units",
        "List the doors and rooms (units) of the organization, with their lock ids.",
        [],
        list_output("units", UNIT_ITEM),
        {
            "units": [
                {
                    "unitId": "5e901978ef16f912aa9aaaa7",
                    "unitName": "Room 101",
                    "placeName": "Demo Hotel",
                    "placeType": "facility",
                    "unitState": "I",
                    "lockIds": "000D6F0013112273",
                }
            ],
            "count": 1,
        },
        listed("units"),
        retry_safety=RetrySafety.IDEMPOTENT,
    ),
    paginated(
        "list_unit_pins",
        "getUnitPinList",
        "List unit PINs",
        "List the active PINs of a unit, optionally only those overlapping a time window.",
        [UNIT_ID, *WINDOW_FILTER],
        A.PIN_LIST_KEY,
        "pins",
        PIN_OUTPUT,
        {"pins": [PIN_SAMPLE], "count": 1},
    ),
    paginated(
        "list_lock_pins",
        "getLockPinList",
        "List lock PINs",
        "List the active PINs of the unit a lock belongs to.",
        [LOCK_ID, *WINDOW_FILTER],
        A.PIN_LIST_KEY,
        "pins",
        PIN_OUTPUT,
        {"pins": [PIN_SAMPLE], "count": 1},
    ),
    operation(
        "change_lock_pin",
        "changeLockPin",
        "Change lock PIN",
        "Change a lock PIN's code, validity window or holder name. KEYVOX delivers the change"
        " to the lock in its next batch.",
        [PIN_ID, PIN_CODE, START_OPT, END_OPT, TARGET_NAME],
        PIN_OUTPUT,
        PIN_SAMPLE,
        lambda data, data_in: {"pinId": data_in["pinId"], "pinCode": "", **(data or {})},
        retry_safety=RetrySafety.IDEMPOTENT,
    ),
    operation(
        "disable_lock_pin",
        "disableLockPin",
        "Disable lock PIN",
        "Revoke a lock PIN so it no longer opens the door.",
        [PIN_ID],
        OK_OUTPUT,
        {"ok": True, "pinId": "5e901978ef16f912aa9aaaa7"},
        done("pinId"),
        retry_safety=RetrySafety.IDEMPOTENT,
    ),
    operation(
        "get_lock_pin_status",
        "getLockPinStatus",
        "Get lock PIN delivery status",
        "Whether KEYVOX has delivered a PIN to the lock: status 20 waiting, 30/31/32 delivered."
        " Delivery runs every 2 minutes and starts 72 hours before the PIN's start.",
        [PIN_ID],
        obj(
            {
                "pinId": STR,
                "pinCode": STR,
                "status": STR,
                "delivered": {"type": "boolean"},
            },
            ["status", "delivered"],
        ),
        {
            "pinId": "5e901978ef16f912aa9aaaa7",
            "pinCode": "482913",
            "status": "30",
            "delivered": True,
        },
        lambda data, data_in: {
            **(data or {}),
            "delivered": str((data or {}).get("status")) in A.DELIVERED_STATUSES,
        },
        retry_safety=RetrySafety.IDEMPOTENT,
    ),
    opening(
        "unlock_door",
        "unlock",
        "Unlock door",
        "Unlock a lock remotely, now: a lock that cannot be reached (E1012: battery or Wi-Fi)"
        " is tried again for up to deadlineSeconds; after that the step fails"
        " as not opened in time instead of opening later.",
        [LOCK_ID],
        OK_OUTPUT,
        {"ok": True, "lockId": "000D6F0013112273"},
        done("lockId"),
        fixed={"flag": "1"},
    ),
    operation(
        "lock_door",
        "unlock",
        "Lock door",
        "Lock a lock remotely (KEYVOX unlock with flag 0). A lock that cannot be reached is"
        " tried again later: locking late does no harm, so it has no deadline.",
        [LOCK_ID],
        OK_OUTPUT,
        {"ok": True, "lockId": "000D6F0013112273"},
        done("lockId"),
        retry_safety=RetrySafety.IDEMPOTENT,
        fixed={"flag": "0"},
    ),
    operation(
        "get_lock_status",
        "getLockStatus",
        "Get lock status",
        "Read a lock's state: locked or open, battery, Wi-Fi connection and last report time.",
        [LOCK_ID],
        obj(
            {
                "lockId": STR,
                "lockType": STR,
                "battery": STR,
                "wifi": {"type": "string", "description": "1 connected, 0 not"},
                "status": {"type": "string", "description": "1 locked, 0 open (simulator)"},
                "reportTime": STR,
            },
            ["status"],
        ),
        {
            "lockId": "000D6F0013112273",
            "lockType": "BCL-BX1",
            "battery": "90",
            "wifi": "1",
            "status": "1",
            "reportTime": "1775023260",
        },
        retry_safety=RetrySafety.IDEMPOTENT,
    ),
    paginated(
        "get_lock_history",
        "getLockHistory",
        "Get lock history",
        "Read a lock's event log, newest first: PIN entries, cards, buttons, knobs and remote"
        " (API) operations.",
        [LOCK_ID],
        A.HISTORY_LIST_KEY,
        "entries",
        HISTORY_ITEM,
        {"entries": [HISTORY_SAMPLE], "count": 1},
    ),
    paginated(
        "search_lock_events",
        "locks/events",
        "Search lock events",
        "Advanced event search across locks: by lock or unit, time window and event type.",
        [
            s("lockId", "Only events of this lock"),
            s("unitId", "Only events of this unit's locks"),
            t("startTime", "Events at or after this moment", vendor="sTime"),
            t("endTime", "Events before this moment", vendor="eTime"),
            s("etype", "Only this event type", enum=["1", "2", "5", "6", "9"]),
        ],
        A.EVENT_LIST_KEY,
        "events",
        HISTORY_ITEM,
        {"events": [HISTORY_SAMPLE], "count": 1},
    ),
]
