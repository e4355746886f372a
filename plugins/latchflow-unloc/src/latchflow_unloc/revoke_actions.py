"""Revoking Unloc keys: one by id, or every key of a phone number, a lock or a reference."""

from __future__ import annotations

from typing import Any

from latchflow import Action, FatalError, RetrySafety, RunContext
from latchflow_unloc.assumptions import GONE_KEY_STATES
from latchflow_unloc.client import UnlocClient, client_for
from latchflow_unloc.http import UnlocHTTPError
from latchflow_unloc.phone import input_phone
from latchflow_unloc.schemas import APP_USER_ID, DEFAULT_REGION, KEY_ID, LOCK_ID, SAMPLE_KEY, obj

REVOKE_KEY_ACTION = "unloc.revoke_key"
REVOKE_KEYS_ACTION = "unloc.revoke_keys"


async def revoke_key(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any]:
    client = client_for(ctx, REVOKE_KEY_ACTION)
    key_id = input["keyId"]
    try:
        await client.revoke_key(key_id)
    except UnlocHTTPError as exc:
        # On a retry a 404 means an earlier attempt revoked it and the key vanished (§5).
        if exc.status == 404 and (input.get("ignoreMissing") or ctx.attempt > 1):
            return {"keyId": key_id, "revoked": False, "state": None}
        if exc.status != 409:
            raise
        state = (await client.get_key(key_id)).get("state")
        if state not in GONE_KEY_STATES:  # a conflict other than "already gone"
            raise
        return {"keyId": key_id, "revoked": False, "state": state}
    return {"keyId": key_id, "revoked": True, "state": "revoked"}


def references(input: dict[str, Any]) -> dict[str, str]:
    """The metadata a key must carry to be revoked; FatalError if an entry rendered empty."""
    metadata = {str(k): v for k, v in (input.get("metadata") or {}).items()}
    empty = [name for name, value in metadata.items() if value in (None, "")]
    if empty:
        raise FatalError(
            f"{REVOKE_KEYS_ACTION}: metadata.{empty[0]} is empty (did its expression render"
            " nothing?); a key reference needs a value. No key was revoked."
        )
    return {name: str(value) for name, value in metadata.items()}


async def revoke_referenced(
    client: UnlocClient, filters: dict[str, Any], metadata: dict[str, str]
) -> dict[str, Any]:
    """Revoke, one by one, the keys matching ``filters`` whose metadata has every entry."""
    keys = await client.all_keys(**filters)
    matching = [
        k for k in keys if all((k.get("metadata") or {}).get(n) == v for n, v in metadata.items())
    ]
    gone = [str(k["id"]) for k in matching if k.get("state") in GONE_KEY_STATES]
    revoked = [
        str(k["id"])
        for k in matching
        if k.get("state") not in GONE_KEY_STATES and await client.revoke_if_present(str(k["id"]))
    ]
    return {"revoked": bool(revoked), "keyIds": revoked, "alreadyGone": gone}


async def revoke_keys(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any]:
    app_user_id = input_phone(input)
    lock_id = input.get("lockId") or None
    metadata = references(input)
    confirm_all = input.get("confirm_all") is True
    if not app_user_id and not lock_id and not metadata and not confirm_all:
        # Checked here too (not only by the input schema): an unfiltered call revokes every key.
        raise FatalError(
            f"{REVOKE_KEYS_ACTION}: neither appUserId, lockId nor metadata is set (or they"
            " rendered empty), which would revoke EVERY key in the project; set a filter, or"
            " confirm_all: true if that is really meant. No request was sent."
        )
    client = client_for(ctx, REVOKE_KEYS_ACTION)
    chosen = {"appUserId": app_user_id, "lockId": lock_id, "all": False}
    if metadata:
        filters = {
            "app_user_id": app_user_id,
            "lock_id": lock_id,
            "exclude_subproject_keys": input.get("excludeSubprojectKeys"),
        }
        return {**chosen, **await revoke_referenced(client, filters, metadata)}
    await client.revoke_keys(
        app_user_id=app_user_id,
        lock_id=lock_id,
        exclude_subproject_keys=input.get("excludeSubprojectKeys"),
        confirm_all=confirm_all,
    )
    return {
        **chosen,
        "revoked": True,
        "all": not (app_user_id or lock_id),
        "keyIds": None,
        "alreadyGone": None,
    }


REVOKE_KEY = Action(
    key=REVOKE_KEY_ACTION,
    title="Revoke a key",
    description=(
        "Revokes one key; it disappears from the holder's Unloc app. Revoking a key that is"
        " already revoked or expired succeeds (revoked: false), so a retry is harmless."
    ),
    input_schema=obj(
        {
            "keyId": KEY_ID,
            "ignoreMissing": {
                "type": "boolean",
                "default": False,
                "description": "Succeed (revoked: false) when the key does not exist.",
            },
        },
        ["keyId"],
    ),
    output_schema={
        "type": "object",
        "required": ["keyId", "revoked"],
        "properties": {
            "keyId": {"type": "string"},
            "revoked": {"type": "boolean"},
            "state": {"type": ["string", "null"]},
        },
    },
    sample={"keyId": SAMPLE_KEY["keyId"], "revoked": True, "state": "revoked"},
    run=revoke_key,
    connection="unloc",
    retry_safety=RetrySafety.IDEMPOTENT,
)

ID_LIST = {"type": ["array", "null"], "items": {"type": "string"}}

REVOKE_KEYS = Action(
    key=REVOKE_KEYS_ACTION,
    title="Revoke keys by user, lock or reference",
    description=(
        "Revokes every key of a phone number, of a lock, or of both together. With metadata,"
        " only the keys that carry every one of those metadata entries (such as the booking a"
        " key was made for) are revoked, one by one, and their ids returned. Without any filter"
        " Unloc would revoke every key in the project, so that needs confirm_all: true."
        " Access-group, doorbell and user-shared keys are not touched."
    ),
    input_schema=obj(
        {
            "appUserId": {
                **APP_USER_ID,
                "description": "Revoke the keys of this phone number (E.164).",
            },
            "lockId": {**LOCK_ID, "description": "Revoke the keys for this lock."},
            "metadata": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {"type": "string", "minLength": 1},
                "description": (
                    "Revoke only keys whose metadata has all these entries, e.g."
                    ' {"booking": "R-1001"} for the keys made for that booking.'
                ),
            },
            "defaultRegion": DEFAULT_REGION,
            "excludeSubprojectKeys": {
                "type": "boolean",
                "description": "Leave keys created in subprojects alone.",
            },
            "confirm_all": {
                "type": "boolean",
                "description": "Must be true to revoke every key in the project (no filter).",
            },
        },
        anyOf=[
            {"required": ["appUserId"]},
            {"required": ["lockId"]},
            {"required": ["metadata"]},
            {"required": ["confirm_all"], "properties": {"confirm_all": {"const": True}}},
        ],
    ),
    output_schema={
        "type": "object",
        "required": ["revoked", "all"],
        "properties": {
            "revoked": {
                "type": "boolean",
                "description": "The revoke was sent; with metadata, at least one key was revoked.",
            },
            "appUserId": {"type": ["string", "null"]},
            "lockId": {"type": ["string", "null"]},
            "all": {
                "type": "boolean",
                "description": "True when every key in the project was revoked.",
            },
            "keyIds": {**ID_LIST, "description": "With metadata: the keys revoked now."},
            "alreadyGone": {
                **ID_LIST,
                "description": "With metadata: matching keys that were already revoked or expired.",
            },
        },
    },
    sample={
        "revoked": True,
        "appUserId": None,
        "lockId": SAMPLE_KEY["lockId"],
        "all": False,
        "keyIds": [SAMPLE_KEY["keyId"]],
        "alreadyGone": [],
    },
    run=revoke_keys,
    connection="unloc",
    retry_safety=RetrySafety.IDEMPOTENT,
)
