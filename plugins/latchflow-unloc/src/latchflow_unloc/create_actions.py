"""``unloc.create_key`` and ``unloc.create_keys``: start a Create Keys job, then follow it."""

from __future__ import annotations

from typing import Any

from latchflow import Action, FatalError, Pending, RunContext, parse_moment
from latchflow_unloc.client import UnlocClient
from latchflow_unloc.jobs import check_job, client_for, later, wait_state
from latchflow_unloc.keys import created_key_id, flat_key, key_input
from latchflow_unloc.schemas import (
    DEFAULT_REGION,
    KEY_FIELDS,
    KEY_OUTPUT,
    SAMPLE_KEY,
    WAIT_FIELDS,
    obj,
)

# Written into each key's metadata so a replayed step finds the key it created before instead
# of creating a second one (the v2 API has no idempotency keys).
REF_FIELD = "latchflowRef"
NOT_USABLE = ("error", "revoked", "expired")


async def find_created(
    client: UnlocClient, body: dict[str, Any], ref: str
) -> dict[str, Any] | None:
    """A key this step created on an earlier attempt (same lock, user and reference)."""
    keys = await client.all_keys(lock_id=body["lockId"], app_user_id=body["appUserId"])
    for key in keys:
        if (key.get("metadata") or {}).get(REF_FIELD) == ref and key.get("state") != "revoked":
            return key
    return None


async def create_key(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any] | Pending:
    client = client_for(ctx)
    state = ctx.state
    if state is None:
        body = key_input(input)  # bad phone numbers and times fail here, before any request
        body["metadata"] = {**body.get("metadata", {}), REF_FIELD: ctx.idempotency_key}
        earlier = await find_created(client, body, ctx.idempotency_key)
        if earlier is not None:
            return later(ctx, input, {"key_id": earlier["id"], "job_id": None})
        job_id = await client.create_keys([body])
        return later(ctx, input, wait_state(ctx, input, job_id))
    state = dict(state)
    if not state.get("key_id"):
        job = await check_job(ctx, client, state)
        if job is None:
            return later(ctx, input, state)
        created = (job.get("resultData") or {}).get("createdKeys") or []
        key_id = created_key_id(created[0]) if created else None
        if key_id is None:
            body = key_input(input)
            found = await find_created(client, body, ctx.idempotency_key)
            if found is None:
                raise FatalError(
                    f"Unloc job {state['job_id']} succeeded but names no created key, and no key"
                    " with this step's reference was found; check unloc.list_keys"
                )
            key_id = str(found["id"])
        state["key_id"] = key_id
    key = flat_key(await client.get_key(str(state["key_id"])))
    if key["state"] == "error":
        raise FatalError(
            f"Unloc key {key['keyId']} is in state error: the lock vendor's system could not be"
            " reached. It needs an administrator in Unloc Control Center."
        )
    if input.get("waitFor") == "active" and key["state"] != "active":
        if key["state"] in NOT_USABLE:
            raise FatalError(f"Unloc key {key['keyId']} became {key['state']} before it was active")
        at = (
            parse_moment(key["start"]) if key["state"] == "scheduled" and key.get("start") else None
        )
        return later(ctx, input, state, at)
    return {**key, "jobId": state.get("job_id")}


async def create_keys(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any] | Pending:
    client = client_for(ctx)
    if ctx.state is None:
        bodies = []
        for i, item in enumerate(input["keys"]):
            merged = {"defaultRegion": input.get("defaultRegion"), **item}
            bodies.append(key_input(merged, f"keys[{i}]"))
        job_id = await client.create_keys(bodies)
        return later(ctx, input, wait_state(ctx, input, job_id))
    job = await check_job(ctx, client, dict(ctx.state))
    if job is None:
        return later(ctx, input, dict(ctx.state))
    data = job.get("resultData") or {}
    return {
        "jobId": job.get("id") or ctx.state["job_id"],
        "status": job.get("status"),
        "keys": [flat_key(k) for k in data.get("createdKeys") or [] if isinstance(k, dict)],
        "failedKeys": [k for k in data.get("failedKeys") or [] if isinstance(k, dict)],
    }


CREATE_KEY = Action(
    key="unloc.create_key",
    title="Create a digital key",
    description=(
        "Gives a phone number a key to one Unloc lock, optionally limited to a period and to"
        " weekly time windows. Unloc creates keys in a background job: the step checks the job"
        " every pollInterval seconds without holding a worker and finishes when the key exists"
        " (or, with waitFor: active, when it can open the lock)."
    ),
    input_schema=obj(
        {
            **KEY_FIELDS,
            "defaultRegion": DEFAULT_REGION,
            "waitFor": {
                "type": "string",
                "enum": ["created", "active"],
                "default": "created",
                "description": "Finish once the key is created (scheduled, active or inactive) or only once it is active.",
            },
            **WAIT_FIELDS,
        },
        ["lockId", "appUserId"],
    ),
    output_schema={
        **KEY_OUTPUT,
        "properties": {**KEY_OUTPUT["properties"], "jobId": {"type": ["string", "null"]}},
    },
    sample={**SAMPLE_KEY, "jobId": "3f2c1b7e-8c7d-4d53-9a5e-6c7d8e9f0a1b"},
    run=create_key,
    connection="unloc",
)

ITEM_SCHEMA = obj(KEY_FIELDS, ["lockId", "appUserId"])
ITEM_SCHEMA["description"] = "One key to create."

CREATE_KEYS = Action(
    key="unloc.create_keys",
    title="Create several digital keys",
    description=(
        "Creates a batch of keys in one Unloc job and waits for it without holding a worker."
        " If any key is invalid Unloc rejects the whole batch and nothing is created."
    ),
    input_schema=obj(
        {
            "keys": {
                "type": "array",
                "minItems": 1,
                "items": ITEM_SCHEMA,
                "description": "The keys to create.",
            },
            "defaultRegion": DEFAULT_REGION,
            **WAIT_FIELDS,
        },
        ["keys"],
    ),
    output_schema={
        "type": "object",
        "required": ["jobId", "status", "keys", "failedKeys"],
        "properties": {
            "jobId": {"type": "string"},
            "status": {"type": "string"},
            "keys": {"type": "array", "items": KEY_OUTPUT},
            "failedKeys": {"type": "array", "items": {"type": "object"}},
        },
    },
    sample={
        "jobId": "3f2c1b7e-8c7d-4d53-9a5e-6c7d8e9f0a1b",
        "status": "succeeded",
        "keys": [SAMPLE_KEY],
        "failedKeys": [],
    },
    run=create_keys,
    connection="unloc",
)
