"""``unloc.create_key``: one key for a phone number, made once however often the step is tried.

Unloc creates keys in a background job: the step starts it, then checks the job and the key at
each wake-up without holding a worker. The key carries the step's marker in its metadata. A
retried step (its earlier answer lost) first looks for a key with its marker and adopts it; if
it had to create one after all, it looks again ``verifyDelay`` seconds later and revokes any
copy Unloc applied late.
"""

from __future__ import annotations

from typing import Any

from latchflow import Action, FatalError, Pending, RetrySafety, RunContext, parse_moment
from latchflow_unloc.assumptions import MARKER_METADATA_FIELD
from latchflow_unloc.client import UnlocClient, client_for
from latchflow_unloc.jobs import check_job, give_up_if_late, later, wait_state
from latchflow_unloc.keys import created_key_id, flat_key, key_input
from latchflow_unloc.markers import key_marker, keys_marked
from latchflow_unloc.schemas import (
    DEFAULT_REGION,
    DUPLICATES_REMOVED,
    KEY_FIELDS,
    KEY_OUTPUT,
    SAMPLE_KEY,
    WAIT_FIELDS,
    obj,
)
from latchflow_unloc.verify import VERIFY_FIELDS, revoke_copies, verify_at, verify_due

ACTION = "unloc.create_key"
READY = ("scheduled", "active", "inactive")


def marked_body(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any]:
    """The KeyInput, its metadata carrying the step's marker."""
    body = key_input(input)  # bad phone numbers and times fail here, before any request
    body["metadata"] = {**body.get("metadata", {}), MARKER_METADATA_FIELD: key_marker(ctx)}
    return body


async def start(ctx: RunContext, client: UnlocClient, input: dict[str, Any]) -> Pending:
    """Adopt the key an earlier attempt made, or start the job that makes it."""
    body = marked_body(ctx, input)
    state = wait_state(ctx, input)
    if ctx.attempt > 1:
        found = await keys_marked(client, body["lockId"], body["appUserId"], key_marker(ctx))
        if found:
            state.update(key_id=found[0]["id"], job_id=None)
            if len(found) > 1:  # copies already: remove them at the next call
                state["verify_at"] = ctx.clock.now().isoformat()
            return later(ctx, input, state)
    state.update(job_id=await client.create_keys([body]), verify_at=verify_at(ctx, input))
    return later(ctx, input, state)


async def key_of_job(
    ctx: RunContext, client: UnlocClient, input: dict[str, Any], job: dict[str, Any]
) -> str:
    created = (job.get("resultData") or {}).get("createdKeys") or []
    key_id = created_key_id(created[0]) if created else None
    if key_id is not None:
        return key_id
    body = marked_body(ctx, input)
    found = await keys_marked(client, body["lockId"], body["appUserId"], key_marker(ctx))
    if not found:
        raise FatalError(
            f"{ACTION}: Unloc job {job.get('id')} succeeded but names no created key, and no key"
            " carrying this step's marker was found; check unloc.list_keys"
        )
    return str(found[0]["id"])


def still_waiting(ctx: RunContext, input: dict[str, Any], key: dict[str, Any]) -> bool:
    """Whether the key is not yet what the step waits for; FatalError if it never will be."""
    state = key["state"]
    if state == "error":
        raise FatalError(
            f"{ACTION}: Unloc key {key['keyId']} is in state error: the lock vendor's system"
            " could not be reached. It needs an administrator in Unloc Control Center."
        )
    if state not in (*READY, "creating"):
        raise FatalError(f"{ACTION}: Unloc key {key['keyId']} became {state} before it was ready")
    if state == "creating":
        return True
    return input.get("waitFor") == "active" and state != "active"


async def create_key(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any] | Pending:
    client = client_for(ctx, ACTION)
    if ctx.state is None:
        return await start(ctx, client, input)
    state = dict(ctx.state)
    if not state.get("key_id"):
        job = await check_job(ctx, client, state)
        if job is None:
            return later(ctx, input, state)
        state["key_id"] = await key_of_job(ctx, client, input, job)
    if verify_due(ctx, state):
        body = marked_body(ctx, input)
        found = await keys_marked(client, body["lockId"], body["appUserId"], key_marker(ctx))
        removed = await revoke_copies(client, {state["key_id"]}, found)
        state.update(verify_at=None, duplicates_removed=removed)
    key = flat_key(await client.get_key(str(state["key_id"])))
    if still_waiting(ctx, input, key):
        if key["state"] == "creating":
            give_up_if_late(ctx, state, f"{ACTION}: Unloc key {key['keyId']} is still creating")
        if key["state"] != "scheduled":
            return later(ctx, input, state)
        at = parse_moment(key["start"])  # sleep until it starts, unless a check comes first
        if state.get("verify_at"):
            at = min(at, parse_moment(state["verify_at"]))
        return later(ctx, input, state, at)
    if state.get("verify_at"):
        return later(ctx, input, state, parse_moment(state["verify_at"]))
    return {
        **key,
        "jobId": state.get("job_id"),
        "duplicatesRemoved": state.get("duplicates_removed") or [],
    }


CREATE_KEY = Action(
    key=ACTION,
    title="Create a digital key",
    description=(
        "Gives a phone number a key to one Unloc lock, optionally limited to a period and to"
        " weekly time windows. Unloc creates keys in a background job: the step checks the job"
        " every pollInterval seconds without holding a worker and finishes when the key exists"
        " (or, with waitFor: active, when it can open the lock). The key's metadata carries"
        f" {MARKER_METADATA_FIELD} (the run and step), by which a retried step finds the key"
        " an attempt whose answer was lost made, instead of making a second one."
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
            **VERIFY_FIELDS,
        },
        ["lockId", "appUserId"],
    ),
    output_schema={
        **KEY_OUTPUT,
        "properties": {
            **KEY_OUTPUT["properties"],
            "jobId": {
                "type": ["string", "null"],
                "description": "The Create Keys job; null when a retried step found its key.",
            },
            "duplicatesRemoved": DUPLICATES_REMOVED,
        },
    },
    sample={
        **SAMPLE_KEY,
        "jobId": "3f2c1b7e-8c7d-4d53-9a5e-6c7d8e9f0a1b",
        "duplicatesRemoved": [],
    },
    run=create_key,
    connection="unloc",
    retry_safety=RetrySafety.RECONCILE,
)
