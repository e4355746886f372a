"""Reading and revoking Unloc keys, listing locks and reading jobs."""

from __future__ import annotations

from typing import Any

from latchflow import Action, FatalError, RunContext
from latchflow_unloc.http import UnlocHTTPError
from latchflow_unloc.jobs import client_for
from latchflow_unloc.keys import created_key_id, flat_key
from latchflow_unloc.phone import to_e164
from latchflow_unloc.schemas import (
    APP_USER_ID,
    DEFAULT_REGION,
    KEY_OUTPUT,
    KEY_STATE,
    LOCK_ID,
    LOCK_ITEM,
    NULLABLE_STRING,
    PAGE_FIELDS,
    SAMPLE_KEY,
    list_output,
    obj,
)

KEY_ID = {"type": "string", "minLength": 1, "description": "Id of the key."}


def phone(input: dict[str, Any]) -> str | None:
    if not input.get("appUserId"):
        return None
    return to_e164(input["appUserId"], input.get("defaultRegion"))


async def revoke_key(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any]:
    client = client_for(ctx)
    key_id = input["keyId"]
    try:
        await client.revoke_key(key_id)
    except UnlocHTTPError as exc:
        if exc.status == 409:  # "May not revoke expired keys": already gone
            return {"keyId": key_id, "revoked": False, "state": "expired"}
        if exc.status == 404 and input.get("ignoreMissing"):
            return {"keyId": key_id, "revoked": False, "state": None}
        raise
    return {"keyId": key_id, "revoked": True, "state": "revoked"}


async def revoke_keys(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any]:
    app_user_id, lock_id = phone(input), input.get("lockId") or None
    confirm_all = input.get("confirm_all") is True
    if not app_user_id and not lock_id and not confirm_all:
        # Checked here too (not only by the input schema): an unfiltered call revokes every key.
        raise FatalError(
            "unloc.revoke_keys: neither appUserId nor lockId is set (or they rendered empty),"
            " which would revoke EVERY key in the project; set a filter, or confirm_all: true"
            " if that is really meant. No request was sent."
        )
    client = client_for(ctx)
    await client.revoke_keys(
        app_user_id=app_user_id,
        lock_id=lock_id,
        exclude_subproject_keys=input.get("excludeSubprojectKeys"),
        confirm_all=confirm_all,
    )
    return {
        "revoked": True,
        "appUserId": app_user_id,
        "lockId": lock_id,
        "all": not (app_user_id or lock_id),
    }


async def get_key(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any]:
    return flat_key(await client_for(ctx).get_key(input["keyId"]))


async def list_keys(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any]:
    client = client_for(ctx)
    filters: dict[str, Any] = {
        "app_user_id": phone(input),
        "lock_id": input.get("lockId"),
        "exclude_states": input.get("excludeStates") or (),
        "exclude_subproject_keys": input.get("excludeSubprojectKeys"),
    }
    if input.get("allPages"):
        keys, after = await client.all_keys(**filters), None
    else:
        page = await client.list_keys(
            **filters, limit=input.get("limit"), start_after_id=input.get("startAfterId")
        )
        keys, after = page["keys"], page["startAfterId"]
    return {"keys": [flat_key(k) for k in keys], "count": len(keys), "startAfterId": after}


async def list_locks(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any]:
    client = client_for(ctx)
    if input.get("allPages"):
        locks, after = await client.all_locks(), None
    else:
        page = await client.list_locks(
            limit=input.get("limit"), start_after_id=input.get("startAfterId")
        )
        locks, after = page["locks"], page["startAfterId"]
    return {"locks": locks, "count": len(locks), "startAfterId": after}


async def get_job(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any]:
    job = await client_for(ctx).get_job(input["jobId"])
    data = job.get("resultData") or {}
    return {
        "jobId": job.get("id") or input["jobId"],
        "status": job.get("status"),
        "failureReason": job.get("failureReason")
        if isinstance(job.get("failureReason"), str)
        else None,
        "createdKeyIds": [i for i in map(created_key_id, data.get("createdKeys") or []) if i],
        "creatingKeyIds": [i for i in map(created_key_id, data.get("creatingKeys") or []) if i],
        "failedKeys": [k for k in data.get("failedKeys") or [] if isinstance(k, dict)],
    }


REVOKE_KEY = Action(
    key="unloc.revoke_key",
    title="Revoke a key",
    description="Revokes one key; it disappears from the holder's Unloc app. Revoking an expired key succeeds with revoked: false.",
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
    idempotent=True,
)

REVOKE_KEYS = Action(
    key="unloc.revoke_keys",
    title="Revoke keys by user or lock",
    description=(
        "Revokes every key of a phone number, of a lock, or of both together. Without a filter"
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
            {"required": ["confirm_all"], "properties": {"confirm_all": {"const": True}}},
        ],
    ),
    output_schema={
        "type": "object",
        "required": ["revoked", "all"],
        "properties": {
            "revoked": {"type": "boolean"},
            "appUserId": {"type": ["string", "null"]},
            "lockId": {"type": ["string", "null"]},
            "all": {
                "type": "boolean",
                "description": "True when every key in the project was revoked.",
            },
        },
    },
    sample={
        "revoked": True,
        "appUserId": "+4799887766",
        "lockId": SAMPLE_KEY["lockId"],
        "all": False,
    },
    run=revoke_keys,
    connection="unloc",
    idempotent=True,
)

GET_KEY = Action(
    key="unloc.get_key",
    title="Get a key",
    description="Reads one key: its holder, lock, period, recurrence and current state.",
    input_schema=obj({"keyId": KEY_ID}, ["keyId"]),
    output_schema=KEY_OUTPUT,
    sample=SAMPLE_KEY,
    run=get_key,
    connection="unloc",
    idempotent=True,
)

LIST_KEYS = Action(
    key="unloc.list_keys",
    title="List keys",
    description="Lists the project's keys, optionally for one phone number and/or lock, leaving out some states.",
    input_schema=obj(
        {
            "appUserId": {**APP_USER_ID, "description": "Only keys of this phone number."},
            "lockId": {**LOCK_ID, "description": "Only keys for this lock."},
            "defaultRegion": DEFAULT_REGION,
            "excludeStates": {
                "type": "array",
                "items": KEY_STATE,
                "description": "Leave out keys in these states (e.g. revoked).",
            },
            "excludeSubprojectKeys": {
                "type": "boolean",
                "description": "Leave out keys created in subprojects.",
            },
            **PAGE_FIELDS,
        }
    ),
    output_schema=list_output(
        "keys",
        KEY_OUTPUT,
        startAfterId={
            "type": ["string", "null"],
            "description": "Give this to read the next page; null when done.",
        },
    ),
    sample={"keys": [SAMPLE_KEY], "count": 1, "startAfterId": None},
    run=list_keys,
    connection="unloc",
    idempotent=True,
)

SAMPLE_LOCK = {
    "id": SAMPLE_KEY["lockId"],
    "name": "Front door",
    "vendor": "danalock",
    "address": {"street": "Storgata 1", "floor": "0", "visitorInstructions": ""},
    "batteryStatus": {"batteryLevel": 87},
}

LIST_LOCKS = Action(
    key="unloc.list_locks",
    title="List locks",
    description="Lists the project's locks with their address and battery level.",
    input_schema=obj(PAGE_FIELDS),
    output_schema=list_output("locks", LOCK_ITEM, startAfterId=NULLABLE_STRING),
    sample={"locks": [SAMPLE_LOCK], "count": 1, "startAfterId": None},
    run=list_locks,
    connection="unloc",
    idempotent=True,
)

GET_JOB = Action(
    key="unloc.get_job",
    title="Get a key job",
    description="Reads a Create Keys job: its status and which keys it is creating, created or failed to create.",
    input_schema=obj(
        {
            "jobId": {
                "type": "string",
                "minLength": 1,
                "description": "Id of the job (jobId of a create step).",
            }
        },
        ["jobId"],
    ),
    output_schema={
        "type": "object",
        "required": ["jobId", "status"],
        "properties": {
            "jobId": {"type": "string"},
            "status": {
                "type": "string",
                "enum": [
                    "pending",
                    "inProgress",
                    "succeeded",
                    "failedValidation",
                    "failedJob",
                    "timeout",
                ],
            },
            "failureReason": {"type": ["string", "null"]},
            "createdKeyIds": {"type": "array", "items": {"type": "string"}},
            "creatingKeyIds": {"type": "array", "items": {"type": "string"}},
            "failedKeys": {"type": "array", "items": {"type": "object"}},
        },
    },
    sample={
        "jobId": "3f2c1b7e-8c7d-4d53-9a5e-6c7d8e9f0a1b",
        "status": "succeeded",
        "failureReason": None,
        "createdKeyIds": [SAMPLE_KEY["keyId"]],
        "creatingKeyIds": [],
        "failedKeys": [],
    },
    run=get_job,
    connection="unloc",
    idempotent=True,
)
