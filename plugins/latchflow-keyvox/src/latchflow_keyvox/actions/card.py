"""IC Card actions: register, update and revoke cards on locks and locker boxes."""

from __future__ import annotations

from latchflow import Action
from latchflow_keyvox import assumptions as A
from latchflow_keyvox.actions.base import OK_OUTPUT, done, obj, operation, paginated
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

ACTIONS: list[Action] = [
    operation(
        "set_card",
        "setCard",
        "Set IC card on lock",
        "Register an IC card on a lock for a validity window.",
        [LOCK_ID, CARD_CODE, CARD_NAME, START, END],
        CARD_OUTPUT,
        CARD_SAMPLE,
    ),
    operation(
        "update_card",
        "updateCard",
        "Update IC card",
        "Change a lock card's label or validity window.",
        [CARD_ID, CARD_NAME, START_OPT, END_OPT],
        CARD_OUTPUT,
        CARD_SAMPLE,
        idempotent=True,
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
        idempotent=True,
    ),
    operation(
        "get_card_status",
        "getCardStatus",
        "Get IC card status",
        "Read a card registration: validity, state and delivery status (20 waiting, 30 delivered).",
        [CARD_ID],
        CARD_OUTPUT,
        CARD_SAMPLE,
        idempotent=True,
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
        "Register an IC card on a locker box for a validity window.",
        [DEVICE_ID, BOX_NUM, CARD_CODE, CARD_NAME, START, END],
        CARD_OUTPUT,
        {**CARD_SAMPLE, "deviceId": "A4:CF:12:9B:3E:01", "boxNum": "00-03"},
    ),
    operation(
        "update_locker_card",
        "updateLockerCard",
        "Update locker IC card",
        "Change a locker card's label or validity window.",
        [CARD_ID, CARD_NAME, START_OPT, END_OPT],
        CARD_OUTPUT,
        {**CARD_SAMPLE, "deviceId": "A4:CF:12:9B:3E:01", "boxNum": "00-03"},
        idempotent=True,
    ),
]
