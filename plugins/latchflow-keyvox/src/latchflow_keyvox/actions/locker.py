"""Smart Locker actions: lockers, boxes, locker PINs, unlocking a box, LED colour."""

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
    s,
    t,
)
from latchflow_keyvox.actions.deadline import opening
from latchflow_keyvox.actions.fields import (
    BOX_NUM,
    BOX_SIZE,
    DEVICE_ID,
    END,
    END_OPT,
    PIN_CODE,
    PIN_ID,
    START,
    START_OPT,
    STR,
    TARGET_NAME,
)
from latchflow_keyvox.actions.locker_pins import LOCKER_PIN_OUTPUT, LOCKER_PIN_SAMPLE

BOX_ITEM = obj({"boxNum": STR, "boxName": STR, "boxSize": STR}, ["boxNum"])
BOX_SAMPLE = {"boxNum": "00-03", "boxName": "Box 3", "boxSize": "2"}
STATUS_OUTPUT = obj(
    {
        "deviceId": STR,
        "deviceName": STR,
        "status": {"type": "string", "description": "1 in service, 0 out of service"},
        "boxes": {
            "type": "array",
            "items": obj(
                {
                    **BOX_ITEM["properties"],
                    "color": STR,
                    "doorStatus": {"type": "string", "description": "1 open, 0 closed"},
                    "enabled": STR,
                    "inUse": STR,
                    A.LOCKER_BOX_PIN_LIST_KEY: {
                        "type": "array",
                        "description": "The box's PINs in the window (now, by default)",
                        "items": obj(
                            {
                                "pinId": STR,
                                "pinCode": STR,
                                "sTime": STR,
                                "eTime": STR,
                                "targetName": STR,
                            },
                            ["pinId"],
                        ),
                    },
                },
                ["boxNum"],
            ),
        },
    },
    ["deviceId", "boxes"],
)
STATUS_SAMPLE = {
    "deviceId": "A4:CF:12:9B:3E:01",
    "deviceName": "Lobby lockers",
    "status": "1",
    "boxes": [
        {
            **BOX_SAMPLE,
            "color": "green",
            "doorStatus": "0",
            "enabled": "1",
            "inUse": "1",
            A.LOCKER_BOX_PIN_LIST_KEY: [
                {
                    "pinId": "65f1c2a9b7e3d40012ab34cd",
                    "pinCode": "7350",
                    "sTime": "1775019600",
                    "eTime": "1775106000",
                    "targetName": "Parcel 17",
                }
            ],
        }
    ],
}
STATUS_CREDENTIALS = tuple(
    f"boxes.{A.LOCKER_BOX_PIN_LIST_KEY}.{name}" for name in ("pinCode", "qrCode")
)

ACTIONS: list[Action] = [
    operation(
        "list_lockers",
        "getLockers",
        "List lockers",
        "List the smart locker devices of the organization.",
        [],
        list_output("lockers", obj({"deviceId": STR, "deviceName": STR}, ["deviceId"])),
        {"lockers": [{"deviceId": "A4:CF:12:9B:3E:01", "deviceName": "Lobby lockers"}], "count": 1},
        listed("lockers"),
        retry_safety=RetrySafety.IDEMPOTENT,
    ),
    operation(
        "get_locker_status",
        "getLockerStatus",
        "Get locker status",
        "Read a locker's service status and each box's size, LED colour, door, use and PINs"
        " (those valid now, or in the window given).",
        [
            DEVICE_ID,
            t("startTime", "List the PINs valid after this moment (default: now)", vendor="sTime"),
            t("endTime", "List the PINs valid before this moment", vendor="eTime"),
        ],
        STATUS_OUTPUT,
        STATUS_SAMPLE,
        retry_safety=RetrySafety.IDEMPOTENT,
        credentials=STATUS_CREDENTIALS,
    ),
    operation(
        "set_locker_status",
        "setLockerStatus",
        "Set locker status",
        "Take a whole locker, or one box, out of service (status 0) or back into service (1).",
        [
            DEVICE_ID,
            s("boxNum", "Only this box (omit for the whole locker)"),
            s("status", "1 in service, 0 out of service", required=True, enum=["0", "1"]),
        ],
        STATUS_OUTPUT,
        STATUS_SAMPLE,
        retry_safety=RetrySafety.IDEMPOTENT,
        credentials=STATUS_CREDENTIALS,
    ),
    operation(
        "find_available_boxes",
        "getAvailableBoxes",
        "Find available boxes",
        "Find the boxes of a locker that are free for a whole time window, optionally of one size.",
        [DEVICE_ID, START, END, BOX_SIZE],
        list_output("boxes", BOX_ITEM)
        | {
            "properties": {
                **list_output("boxes", BOX_ITEM)["properties"],
                "first": {
                    "description": "The first available box, or null",
                    "anyOf": [BOX_ITEM, {"type": "null"}],
                },
            }
        },
        {"boxes": [BOX_SAMPLE], "count": 1, "first": BOX_SAMPLE},
        lambda data, data_in: {
            "boxes": list(data or []),
            "count": len(data or []),
            "first": (data or [None])[0],
        },
        retry_safety=RetrySafety.IDEMPOTENT,
    ),
    operation(
        "change_locker_pin",
        "changeLockerPin",
        "Change locker PIN",
        "Change a locker PIN's code, window or holder name.",
        [PIN_ID, PIN_CODE, START_OPT, END_OPT, TARGET_NAME],
        LOCKER_PIN_OUTPUT,
        LOCKER_PIN_SAMPLE,
        retry_safety=RetrySafety.IDEMPOTENT,
    ),
    operation(
        "disable_locker_pin",
        "disableLockerPin",
        "Disable locker PIN",
        "Revoke a locker PIN; the box becomes available again.",
        [PIN_ID],
        OK_OUTPUT,
        {"ok": True, "pinId": "65f1c2a9b7e3d40012ab34cd"},
        done("pinId"),
        retry_safety=RetrySafety.IDEMPOTENT,
    ),
    opening(
        "unlock_locker_box",
        "unlockLocker",
        "Unlock locker box",
        "Open one box of a locker remotely, now: within deadlineSeconds of the step's first"
        " attempt, or the step fails as not opened in time.",
        [DEVICE_ID, BOX_NUM],
        OK_OUTPUT,
        {"ok": True, "deviceId": "A4:CF:12:9B:3E:01", "boxNum": "00-03"},
        done("deviceId", "boxNum"),
    ),
    operation(
        "set_box_color",
        "setBoxColor",
        "Set box LED colour",
        "Set the LED indicator colour of a locker box (e.g. green = yours, red = occupied).",
        [DEVICE_ID, BOX_NUM, s("color", "LED colour", required=True, enum=list(A.BOX_COLORS))],
        obj({"boxNum": STR, "color": STR}, ["boxNum", "color"]),
        {"boxNum": "00-03", "color": "green"},
        retry_safety=RetrySafety.IDEMPOTENT,
    ),
]
