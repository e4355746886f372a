"""``unloc.create_keys``: a batch of keys in one Unloc job, made once however often it is tried.

Each key carries the step's marker and its place in the batch in its metadata. Unloc accepts or
refuses a batch as a whole, so a retried step that finds any key of its batch adopts the batch
(waiting until every key has appeared); one that had to create the batch after all looks again
``verifyDelay`` seconds later and revokes the copies Unloc applied late.
"""

from __future__ import annotations

from typing import Any

from latchflow import Action, FatalError, Pending, RetrySafety, RunContext, parse_moment
from latchflow_unloc.assumptions import MARKER_METADATA_FIELD
from latchflow_unloc.client import UnlocClient, client_for
from latchflow_unloc.jobs import check_job, give_up_if_late, later, wait_state
from latchflow_unloc.keys import created_key_id, flat_key, key_input
from latchflow_unloc.markers import batch_keys_marked, batch_marker
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

ACTION = "unloc.create_keys"


def marked_bodies(ctx: RunContext, input: dict[str, Any]) -> list[dict[str, Any]]:
    """The KeyInputs, each one's metadata carrying the step's marker and its index."""
    bodies = []
    for i, item in enumerate(input["keys"]):
        body = key_input({"defaultRegion": input.get("defaultRegion"), **item}, f"keys[{i}]")
        body["metadata"] = {**body.get("metadata", {}), MARKER_METADATA_FIELD: batch_marker(ctx, i)}
        bodies.append(body)
    return bodies


def lock_ids(input: dict[str, Any]) -> set[str]:
    return {str(item["lockId"]) for item in input["keys"]}


async def start(ctx: RunContext, client: UnlocClient, input: dict[str, Any]) -> Pending:
    """Adopt the batch an earlier attempt made, or start the job that makes it."""
    bodies = marked_bodies(ctx, input)
    state = wait_state(ctx, input)
    if ctx.attempt > 1 and await batch_keys_marked(ctx, client, lock_ids(input)):
        state.update(job_id=None, adopted=True)
        return later(ctx, input, state)
    state.update(job_id=await client.create_keys(bodies), verify_at=verify_at(ctx, input))
    return later(ctx, input, state)


async def adopted(
    ctx: RunContext, client: UnlocClient, input: dict[str, Any], state: dict[str, Any]
) -> bool:
    """Whether every key of the adopted batch is there and made; keeps the oldest of each."""
    groups = await batch_keys_marked(ctx, client, lock_ids(input))
    keys = [groups[i][0] for i in range(len(input["keys"])) if i in groups]
    if len(keys) < len(input["keys"]) or any(k.get("state") == "creating" for k in keys):
        give_up_if_late(ctx, state, f"{ACTION}: the keys of the adopted batch are not all made")
        return False
    failed = [str(k["id"]) for k in keys if k.get("state") == "error"]
    if failed:
        raise FatalError(
            f"{ACTION}: Unloc keys {', '.join(failed)} are in state error: the lock vendor's"
            " system could not be reached. They need an administrator in Unloc Control Center."
        )
    state.update(
        keys=[flat_key(k) for k in keys],
        kept=[k["id"] for k in keys],
        status="succeeded",
        failed_keys=[],
    )
    if any(len(g) > 1 for g in groups.values()):  # copies already: remove them now
        state["verify_at"] = ctx.clock.now().isoformat()
    return True


async def create_keys(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any] | Pending:
    client = client_for(ctx, ACTION)
    if ctx.state is None:
        return await start(ctx, client, input)
    state = dict(ctx.state)
    if "kept" not in state:
        if state.get("adopted"):
            if not await adopted(ctx, client, input, state):
                return later(ctx, input, state)
        else:
            job = await check_job(ctx, client, state)
            if job is None:
                return later(ctx, input, state)
            data = job.get("resultData") or {}
            created = [k for k in data.get("createdKeys") or [] if isinstance(k, dict)]
            state.update(
                keys=[flat_key(k) for k in created],
                kept=[i for i in map(created_key_id, created) if i],
                status=job.get("status"),
                failed_keys=[k for k in data.get("failedKeys") or [] if isinstance(k, dict)],
            )
    if verify_due(ctx, state):
        removed = []
        for group in (await batch_keys_marked(ctx, client, lock_ids(input))).values():
            keep = {k["id"] for k in group if k["id"] in state["kept"]} or {group[0]["id"]}
            removed += await revoke_copies(client, keep, group)
        state.update(verify_at=None, duplicates_removed=removed)
    if state.get("verify_at"):
        return later(ctx, input, state, parse_moment(state["verify_at"]))
    return {
        "jobId": state.get("job_id"),
        "status": state["status"],
        "keys": state["keys"],
        "failedKeys": state["failed_keys"],
        "duplicatesRemoved": state.get("duplicates_removed") or [],
    }


ITEM_SCHEMA = obj(KEY_FIELDS, ["lockId", "appUserId"])
ITEM_SCHEMA["description"] = "One key to create."

CREATE_KEYS = Action(
    key=ACTION,
    title="Create several digital keys",
    description=(
        "Creates a batch of keys in one Unloc job and waits for it without holding a worker."
        " If any key is invalid Unloc rejects the whole batch and nothing is created. Each key's"
        f" metadata carries {MARKER_METADATA_FIELD} (the run, step and its place in the batch),"
        " by which a retried step finds the batch an attempt whose answer was lost made."
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
            **VERIFY_FIELDS,
        },
        ["keys"],
    ),
    output_schema={
        "type": "object",
        "required": ["jobId", "status", "keys", "failedKeys"],
        "properties": {
            "jobId": {
                "type": ["string", "null"],
                "description": "The Create Keys job; null when a retried step found its batch.",
            },
            "status": {"type": "string"},
            "keys": {"type": "array", "items": KEY_OUTPUT},
            "failedKeys": {"type": "array", "items": {"type": "object"}},
            "duplicatesRemoved": DUPLICATES_REMOVED,
        },
    },
    sample={
        "jobId": "3f2c1b7e-8c7d-4d53-9a5e-6c7d8e9f0a1b",
        "status": "succeeded",
        "keys": [SAMPLE_KEY],
        "failedKeys": [],
        "duplicatesRemoved": [],
    },
    run=create_keys,
    connection="unloc",
    retry_safety=RetrySafety.RECONCILE,
)
