"""Issuing and revoking lock PINs: a retried, replayed or late-applied step never leaves two.

``create_lock_pin`` and ``issue_lock_key`` reconcile (``reconcile.py``): the PIN's
``targetName`` carries the step's marker, and the PINs of the unit are searched for it.
``disable_unit_pins`` revokes PINs of a unit by window and holder name.
"""

from __future__ import annotations

from latchflow import JSON, Action, FatalError, Pending, RetrySafety, RunContext, unix_seconds
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
from latchflow_keyvox.actions.reconcile import (
    DEFAULT_VERIFY_AFTER_SECONDS,
    MADE_OUTPUT,
    VERIFY_AFTER,
    Kind,
    create_once,
)
from latchflow_keyvox.client import KeyvoxClient
from latchflow_keyvox.markers import marker, strip_marker

PIN_TYPE = F(
    "pinType",
    "1 online lock, 2 offline lock, 3 device without keypad (QR only)",
    {"type": "string", "enum": ["1", "2", "3"], "default": "1"},
)
CREATE_FIELDS = [UNIT_ID, START, END, PIN_CODE, PIN_TYPE, TARGET_NAME]


async def unit_pins(api: KeyvoxClient, body: JSON) -> list[JSON]:
    """The active PINs of ``body``'s unit that overlap its window and carry its name."""
    query = {"unitId": body["unitId"], "sTime": body["sTime"], "eTime": body["eTime"]}
    return [
        pin
        async for pin in api.pages("getUnitPinList", query, A.PIN_LIST_KEY, A.MAX_RECORDS)
        if pin.get("targetName") == body["targetName"]
    ]


async def disable_pin(api: KeyvoxClient, pin: JSON) -> None:
    await api.call("disableLockPin", {"pinId": pin["pinId"]})


def lock_pin_kind(function: str) -> Kind:
    async def create(api: KeyvoxClient, body: JSON) -> JSON:
        return dict(await api.call(function, body) or {})

    return Kind("PIN", "pinId", create, unit_pins, disable_pin)


def issuing(key: str, function: str, title: str, description: str, fields: list[F]) -> Action:
    """An action that issues a PIN with ``function``, once (see ``reconcile.py``)."""
    kind = lock_pin_kind(function)

    async def run(ctx: RunContext, data: JSON) -> JSON | Pending:
        name = str(data.get("targetName") or "")
        body = {**body_from(fields, data), "targetName": name + marker(ctx.idempotency_key)}
        verify_after = int(data.get("verifyAfterSeconds", DEFAULT_VERIFY_AFTER_SECONDS))
        made = await create_once(ctx, client(ctx, key), kind, body, verify_after)
        if isinstance(made, Pending):
            return made
        return made.output(
            {
                "sTime": body["sTime"],
                "eTime": body["eTime"],
                "targetName": name,
                "unitId": body["unitId"],
            }
        )

    return Action(
        key=f"{VENDOR}.{key}",
        title=title,
        description=description,
        input_schema=input_schema([*fields, VERIFY_AFTER]),
        output_schema=obj(
            {**PIN_OUTPUT["properties"], "unitId": STR, **MADE_OUTPUT},
            ["pinId", "pinCode", "reused", "duplicatesRemoved"],
        ),
        sample={
            **PIN_SAMPLE,
            "unitId": "5e901978ef16f912aa9aaaa7",
            "reused": False,
            "duplicatesRemoved": [],
        },
        run=run,
        connection=VENDOR,
        credentials=CREDENTIALS,
        retry_safety=RetrySafety.RECONCILE,
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
    " email or SMS. Retries and replays return the key issued before, so it is sent once.",
    NOTIFY_FIELDS,
)

DISABLE_FIELDS = [
    UNIT_ID,
    t("startTime", "Only PINs valid after this moment (e.g. the booking's check-in)"),
    t("endTime", "Only PINs valid before this moment (e.g. the booking's check-out)"),
    s("targetName", "Only PINs issued to this holder name (leave it out for every holder)"),
]


async def disable_unit_pins(ctx: RunContext, data: JSON) -> JSON:
    wanted = data.get("targetName")
    if wanted is not None and not str(wanted).strip():
        raise FatalError(
            "$.input.targetName is empty: it would match every holder's PINs. Give the holder's"
            " name, or leave the field out to disable every PIN of the unit in the window"
        )
    api = client(ctx, "disable_unit_pins")
    body: JSON = {"unitId": data["unitId"]}
    if data.get("startTime") not in (None, ""):
        body["sTime"] = str(unix_seconds(data["startTime"]))
    if data.get("endTime") not in (None, ""):
        body["eTime"] = str(unix_seconds(data["endTime"]))
    pins = [
        pin
        async for pin in api.pages("getUnitPinList", body, A.PIN_LIST_KEY, A.MAX_RECORDS)
        if wanted is None or strip_marker(str(pin.get("targetName", ""))) == wanted
    ]
    for pin in pins:
        await disable_pin(api, pin)
    return {"disabled": [p["pinId"] for p in pins], "count": len(pins)}


disable_unit_pins_action = Action(
    key=f"{VENDOR}.disable_unit_pins",
    title="Disable unit PINs",
    description=(
        "Revoke every active PIN of a unit that overlaps a time window, optionally only those of"
        " one holder. Running it again disables nothing more. To revoke one booking's PIN, use"
        " Get booking details and Disable lock PIN with its pinId instead."
    ),
    input_schema=input_schema(DISABLE_FIELDS),
    output_schema=obj(
        {"disabled": {"type": "array", "items": STR}, "count": {"type": "integer"}},
        ["disabled", "count"],
    ),
    sample={"disabled": ["5e901978ef16f912aa9aaaa7"], "count": 1},
    run=disable_unit_pins,
    connection=VENDOR,
    retry_safety=RetrySafety.IDEMPOTENT,
)

ACTIONS = [create_lock_pin_action, issue_lock_key_action, disable_unit_pins_action]
