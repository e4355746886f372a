"""Issuing and revoking lock PINs so that a retried or replayed step never issues two.

KEYVOX has no idempotency key. ``create_lock_pin`` therefore appends a short tag derived
from the step's idempotency key to ``targetName`` and, before creating, looks for a PIN of
the same unit with the same window and tagged name: a step that already succeeded (even if
its answer was lost) finds its PIN instead of issuing a second one.
"""

from __future__ import annotations

from typing import Any

from latchflow import JSON, Action, RunContext, unix_seconds
from latchflow_keyvox import assumptions as A
from latchflow_keyvox.actions.base import (
    CREDENTIALS,
    VENDOR,
    F,
    body_from,
    client,
    input_schema,
    obj,
    s,
    t,
)
from latchflow_keyvox.actions.fields import (
    END,
    PIN_CODE,
    PIN_OUTPUT,
    PIN_SAMPLE,
    START,
    STR,
    TARGET_NAME,
    UNIT_ID,
)
from latchflow_keyvox.client import KeyvoxClient
from latchflow_keyvox.events import idempotency_tag, strip_tag

PIN_TYPE = F(
    "pinType",
    "1 online lock, 2 offline lock, 3 device without keypad (QR only)",
    {"type": "string", "enum": ["1", "2", "3"], "default": "1"},
)
CREATE_FIELDS = [UNIT_ID, START, END, PIN_CODE, PIN_TYPE, TARGET_NAME]
REUSED = {"type": "boolean", "description": "true when an earlier attempt of this step had made it"}


async def find_pin(api: KeyvoxClient, unit_id: str, s_time: str, e_time: str, name: str) -> Any:
    body = {"unitId": unit_id, "sTime": s_time, "eTime": e_time}
    async for pin in api.pages("getUnitPinList", body, A.PIN_LIST_KEY, A.MAX_RECORDS):
        if (
            pin.get("targetName") == name
            and str(pin.get("sTime")) == s_time
            and str(pin.get("eTime")) == e_time
        ):
            return pin
    return None


async def find_or_create(ctx: RunContext, data: JSON, function: str, fields: list[F]) -> JSON:
    api = client(ctx)
    body = body_from(fields, data)
    name = str(data.get("targetName") or "")
    body["targetName"] = name + idempotency_tag(ctx.idempotency_key)
    existing = await find_pin(api, body["unitId"], body["sTime"], body["eTime"], body["targetName"])
    if existing is not None:
        ctx.logger.info("KEYVOX PIN %s was already issued by this step", existing.get("pinId"))
        result, reused = dict(existing), True
    else:
        result, reused = dict(await api.call(function, body) or {}), False
    result.update(
        sTime=body["sTime"],
        eTime=body["eTime"],
        targetName=name,
        reused=reused,
        unitId=body["unitId"],
    )
    return result


def issuing(key: str, function: str, title: str, description: str, fields: list[F]) -> Action:
    """An action that issues a PIN with ``function`` through ``find_or_create``."""

    async def run(ctx: RunContext, data: JSON) -> JSON:
        return await find_or_create(ctx, data, function, fields)

    return Action(
        key=f"{VENDOR}.{key}",
        title=title,
        description=description,
        input_schema=input_schema(fields),
        output_schema=obj(
            {**PIN_OUTPUT["properties"], "unitId": STR, "reused": REUSED},
            ["pinId", "pinCode", "reused"],
        ),
        sample={**PIN_SAMPLE, "unitId": "5e901978ef16f912aa9aaaa7", "reused": False},
        run=run,
        connection=VENDOR,
        credentials=CREDENTIALS,
        idempotent=True,
    )


create_lock_pin_action = issuing(
    "create_lock_pin",
    "createLockPin",
    "Create lock PIN",
    "Issue a PIN (and QR key) for a unit, valid from startTime to endTime; KEYVOX generates"
    " 6 digits when pinCode is omitted. Success means accepted: KEYVOX delivers it to the"
    " lock in 2-minute batches starting 72 hours before startTime. A retried or replayed"
    " step returns the PIN it issued before instead of issuing another.",
    CREATE_FIELDS,
)

NOTIFY_FIELDS = [
    UNIT_ID,
    START,
    END,
    TARGET_NAME,
    s("notificationMethod", "How KEYVOX sends the key to the holder", enum=["email", "sms"]),
    F(
        "notificationDetails",
        'Where to send it: {"email": ...} or {"phone": ...}',
        {
            "type": "object",
            "properties": {"email": {"type": "string"}, "phone": {"type": "string"}},
            "additionalProperties": False,
        },
    ),
]

issue_lock_key_action = issuing(
    "issue_lock_key",
    "issueLockKey",
    "Issue lock key",
    "Issue a key (PIN and short QR URL) for a unit and let KEYVOX send it to the holder by"
    " email or SMS. Replays return the key issued before, so it is sent once.",
    NOTIFY_FIELDS,
)

DISABLE_FIELDS = [
    UNIT_ID,
    t("startTime", "Only PINs valid after this moment (e.g. the booking's check-in)"),
    t("endTime", "Only PINs valid before this moment (e.g. the booking's check-out)"),
    s("targetName", "Only PINs issued to this holder name"),
]


async def disable_unit_pins(ctx: RunContext, data: JSON) -> JSON:
    api = client(ctx)
    body: JSON = {"unitId": data["unitId"]}
    if data.get("startTime") not in (None, ""):
        body["sTime"] = str(unix_seconds(data["startTime"]))
    if data.get("endTime") not in (None, ""):
        body["eTime"] = str(unix_seconds(data["endTime"]))
    wanted = data.get("targetName")
    pins = [
        pin
        async for pin in api.pages("getUnitPinList", body, A.PIN_LIST_KEY, A.MAX_RECORDS)
        if not wanted or strip_tag(str(pin.get("targetName", ""))) == wanted
    ]
    for pin in pins:
        await api.call("disableLockPin", {"pinId": pin["pinId"]})
    return {"disabled": [p["pinId"] for p in pins], "count": len(pins)}


disable_unit_pins_action = Action(
    key=f"{VENDOR}.disable_unit_pins",
    title="Disable unit PINs",
    description=(
        "Revoke every active PIN of a unit that overlaps a time window, optionally only those of"
        " one holder: e.g. all PINs of a cancelled booking. Running it again disables nothing more."
    ),
    input_schema=input_schema(DISABLE_FIELDS),
    output_schema=obj(
        {"disabled": {"type": "array", "items": STR}, "count": {"type": "integer"}},
        ["disabled", "count"],
    ),
    sample={"disabled": ["5e901978ef16f912aa9aaaa7"], "count": 1},
    run=disable_unit_pins,
    connection=VENDOR,
    idempotent=True,
)

ACTIONS = [create_lock_pin_action, issue_lock_key_action, disable_unit_pins_action]
