"""IC Card actions: register, update and revoke cards on locks and locker boxes."""

from __future__ import annotations

from latchflow import JSON, Action, RetrySafety, RunContext
from latchflow_keyvox import assumptions as A
from latchflow_keyvox.actions.base import (
    OK_OUTPUT,
    VENDOR,
    body_from,
    client,
    done,
    input_schema,
    obj,
    operation,
    paginated,
)
from latchflow_keyvox.actions.fields import (
    BOX_NUM,
    CARD_CODE,
    CARD_ID,
    CARD_NAME,
    DEVICE_ID,
    END,
    END_OPT,
    LOCK_ID,
    START,
    START_OPT,
    STR,
)
from latchflow_keyvox.answers import Refused
from latchflow_keyvox.client import KeyvoxClient

CARD_OUTPUT = obj(
    {
        "cardId": STR,
        "cardCode": STR,
        "cardName": STR,
        "sTime": STR,
        "eTime": STR,
        "state": {"type": "string", "description": "valid or disabled"},
        "status": {"type": "string", "description": "delivery: 20 waiting, 30 delivered"},
        "lockId": STR,
        "deviceId": STR,
        "boxNum": STR,
    },
    ["cardId", "cardCode"],
)
CARD_SAMPLE = {
    "cardId": "65f1c2a9b7e3d40012ab99ef",
    "cardCode": "04A1B2C3D4E5F6",
    "cardName": "Cleaning staff",
    "sTime": "1775019600",
    "eTime": "1777611600",
    "state": "valid",
    "status": "30",
    "lockId": "000D6F0013112273",
}

SET_CARD_FIELDS = [LOCK_ID, CARD_CODE, CARD_NAME, START, END]


async def set_card(ctx: RunContext, data: JSON) -> JSON:
    """Register the card; KEYVOX refuses a card already on the lock, which is success when
    that registration is the one asked for (an earlier attempt whose answer was lost)."""
    api = client(ctx, "set_card")
    body = body_from(SET_CARD_FIELDS, data)
    try:
        return dict(await api.call("setCard", body) or {})
    except Refused as exc:
        if exc.answer.code != A.E_PARAM:
            raise
        same = await registration(api, body)
        if same is None:
            raise
        ctx.logger.info("KEYVOX card %s was already registered as asked", same.get("cardId"))
        return same


async def registration(api: KeyvoxClient, body: JSON) -> JSON | None:
    """The lock's valid card registration that is exactly ``body``, if any."""
    async for card in api.pages("getLockCardList", {"lockId": body["lockId"]}, A.CARD_LIST_KEY):
        if (
            str(card.get("cardCode", "")).upper() == str(body["cardCode"]).upper()
            and card.get("state") != "disabled"
            and str(card.get("cardName", "")) == str(body.get("cardName", ""))
            and str(card.get("sTime")) == body["sTime"]
            and str(card.get("eTime")) == body["eTime"]
        ):
            return dict(card)
    return None


ACTIONS: list[Action] = [
    Action(
        key=f"{VENDOR}.set_card",
        title="Set IC card on lock",
        description=(
            "Register an IC card on a lock for a validity window. A card already registered on"
            " the lock exactly as asked is success."
        ),
        input_schema=input_schema(SET_CARD_FIELDS),
        output_schema=CARD_OUTPUT,
        sample=CARD_SAMPLE,
        run=set_card,
        connection=VENDOR,
        retry_safety=RetrySafety.IDEMPOTENT,
    ),
    operation(
        "update_card",
        "updateCard",
        "Update IC card",
        "Change a lock card's label or validity window.",
        [CARD_ID, CARD_NAME, START_OPT, END_OPT],
        CARD_OUTPUT,
        CARD_SAMPLE,
        retry_safety=RetrySafety.IDEMPOTENT,
    ),
    operation(
        "disable_card",
        "disableCard",
        "Disable IC card",
        "Revoke an IC card registration (lock or locker).",
        [CARD_ID],
        OK_OUTPUT,
        {"ok": True, "cardId": "65f1c2a9b7e3d40012ab99ef"},
        done("cardId"),
        retry_safety=RetrySafety.IDEMPOTENT,
    ),
    operation(
        "get_card_status",
        "getCardStatus",
        "Get IC card status",
        "Read a card registration: validity, state and delivery status (20 waiting, 30 delivered).",
        [CARD_ID],
        CARD_OUTPUT,
        CARD_SAMPLE,
        retry_safety=RetrySafety.IDEMPOTENT,
    ),
    paginated(
        "list_lock_cards",
        "getLockCardList",
        "List lock IC cards",
        "List the IC cards registered on a lock.",
        [LOCK_ID],
        A.CARD_LIST_KEY,
        "cards",
        CARD_OUTPUT,
        {"cards": [CARD_SAMPLE], "count": 1},
    ),
    operation(
        "set_locker_card",
        "setLockerCard",
        "Set IC card on locker box",
        "Register an IC card on a locker box for a validity window. KEYVOX has no list of a"
        " box's cards, so when its answer is lost the run stops for a person to check the box"
        " in the KEYVOX console instead of trying again.",
        [DEVICE_ID, BOX_NUM, CARD_CODE, CARD_NAME, START, END],
        CARD_OUTPUT,
        {**CARD_SAMPLE, "deviceId": "A4:CF:12:9B:3E:01", "boxNum": "00-03"},
        retry_safety=RetrySafety.MANUAL,
    ),
    operation(
        "update_locker_card",
        "updateLockerCard",
        "Update locker IC card",
        "Change a locker card's label or validity window.",
        [CARD_ID, CARD_NAME, START_OPT, END_OPT],
        CARD_OUTPUT,
        {**CARD_SAMPLE, "deviceId": "A4:CF:12:9B:3E:01", "boxNum": "00-03"},
        retry_safety=RetrySafety.IDEMPOTENT,
    ),
]
