"""Issuing a locker PIN once: a retried, replayed or late-applied step never takes two boxes.

The PIN's ``targetName`` carries the step's marker; the box's PINs, as getLockerStatus lists
them for the window (see ``assumptions.LOCKER_BOX_PIN_LIST_KEY``), are searched for it.
"""

from __future__ import annotations

from latchflow import JSON, Action, Pending, RetrySafety, RunContext
from latchflow_keyvox import assumptions as A
from latchflow_keyvox.actions.base import (
    CREDENTIALS,
    VENDOR,
    F,
    body_from,
    client,
    input_schema,
    obj,
)
from latchflow_keyvox.actions.fields import (
    BOX_NUM,
    DEVICE_ID,
    END,
    PIN_CODE,
    START,
    STR,
    TARGET_NAME,
)
from latchflow_keyvox.actions.reconcile import (
    DEFAULT_VERIFY_AFTER_SECONDS,
    MADE_OUTPUT,
    VERIFY_AFTER,
    Kind,
    create_once,
)
from latchflow_keyvox.client import KeyvoxClient
from latchflow_keyvox.markers import marker

LOCKER_PIN_OUTPUT = obj({"pinId": STR, "pinCode": STR, "qrCode": STR}, ["pinId", "pinCode"])
LOCKER_PIN_SAMPLE = {"pinId": "65f1c2a9b7e3d40012ab34cd", "pinCode": "7350", "qrCode": "Qx81..."}
FIELDS = [
    DEVICE_ID,
    BOX_NUM,
    START,
    END,
    PIN_CODE,
    TARGET_NAME,
    F(
        "singleUse",
        "true: the box is freed after one opening; false: repeat use in the window",
        {"type": "boolean", "default": False},
        vendor="mode",
    ),
]


async def box_pins(api: KeyvoxClient, body: JSON) -> list[JSON]:
    """The PINs of ``body``'s box that overlap its window and carry its name."""
    query = {"deviceId": body["deviceId"], "sTime": body["sTime"], "eTime": body["eTime"]}
    status = await api.call("getLockerStatus", query) or {}
    boxes: list[JSON] = status.get("boxes") or []
    box = next((b for b in boxes if b.get("boxNum") == body["boxNum"]), {})
    pins: list[JSON] = box.get(A.LOCKER_BOX_PIN_LIST_KEY) or []
    return [pin for pin in pins if pin.get("targetName") == body["targetName"]]


async def create(api: KeyvoxClient, body: JSON) -> JSON:
    return dict(await api.call("createLockerPin", body) or {})


async def disable(api: KeyvoxClient, pin: JSON) -> None:
    await api.call("disableLockerPin", {"pinId": pin["pinId"]})


LOCKER_PIN = Kind("locker PIN", "pinId", create, box_pins, disable)


async def create_locker_pin(ctx: RunContext, data: JSON) -> JSON | Pending:
    name = str(data.get("targetName") or "")
    body = {**body_from(FIELDS, data), "targetName": name + marker(ctx.idempotency_key)}
    verify_after = int(data.get("verifyAfterSeconds", DEFAULT_VERIFY_AFTER_SECONDS))
    made = await create_once(ctx, client(ctx, "create_locker_pin"), LOCKER_PIN, body, verify_after)
    if isinstance(made, Pending):
        return made
    return made.output({"deviceId": body["deviceId"], "boxNum": body["boxNum"], "targetName": name})


create_locker_pin_action = Action(
    key=f"{VENDOR}.create_locker_pin",
    title="Create locker PIN",
    description=(
        "Issue a PIN for one locker box and time window. KEYVOX refuses a box already taken in"
        " that window; a retried or replayed step returns the PIN it issued before."
    ),
    input_schema=input_schema([*FIELDS, VERIFY_AFTER]),
    output_schema=obj(
        {**LOCKER_PIN_OUTPUT["properties"], "deviceId": STR, "boxNum": STR, **MADE_OUTPUT},
        ["pinId", "pinCode", "reused", "duplicatesRemoved"],
    ),
    sample={
        **LOCKER_PIN_SAMPLE,
        "deviceId": "A4:CF:12:9B:3E:01",
        "boxNum": "00-03",
        "reused": False,
        "duplicatesRemoved": [],
    },
    run=create_locker_pin,
    connection=VENDOR,
    credentials=CREDENTIALS,
    retry_safety=RetrySafety.RECONCILE,
)

ACTIONS = [create_locker_pin_action]
