"""Reading Unloc keys, locks and Create Keys jobs."""

from __future__ import annotations

from typing import Any

from latchflow import Action, RetrySafety, RunContext
from latchflow_unloc.assumptions import JOB_STATUSES
from latchflow_unloc.client import client_for
from latchflow_unloc.keys import created_key_id, flat_key
from latchflow_unloc.phone import input_phone
from latchflow_unloc.schemas import (
    APP_USER_ID,
    DEFAULT_REGION,
    KEY_ID,
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


async def get_key(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any]:
    return flat_key(await client_for(ctx, "unloc.get_key").get_key(input["keyId"]))


async def list_keys(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any]:
    client = client_for(ctx, "unloc.list_keys")
    filters: dict[str, Any] = {
        "app_user_id": input_phone(input),
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
    client = client_for(ctx, "unloc.list_locks")
    if input.get("allPages"):
        locks, after = await client.all_locks(), None
    else:
        page = await client.list_locks(
            limit=input.get("limit"), start_after_id=input.get("startAfterId")
        )
        locks, after = page["locks"], page["startAfterId"]
    return {"locks": locks, "count": len(locks), "startAfterId": after}


async def get_job(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any]:
    job = await client_for(ctx, "unloc.get_job").get_job(input["jobId"])
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


GET_KEY = Action(
    key="unloc.get_key",
    title="Get a key",
    description="Reads one key: its holder, lock, period, recurrence and current state.",
    input_schema=obj({"keyId": KEY_ID}, ["keyId"]),
    output_schema=KEY_OUTPUT,
    sample=SAMPLE_KEY,
    run=get_key,
    connection="unloc",
    retry_safety=RetrySafety.IDEMPOTENT,
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
    retry_safety=RetrySafety.IDEMPOTENT,
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
    retry_safety=RetrySafety.IDEMPOTENT,
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
                "enum": list(JOB_STATUSES),
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
    retry_safety=RetrySafety.IDEMPOTENT,
)
