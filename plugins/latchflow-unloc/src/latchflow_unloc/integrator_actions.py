"""Reading through the Integrators v1 API: lock holders, their locks and keys."""

from __future__ import annotations

from typing import Any

from latchflow import Action, RetrySafety, RunContext
from latchflow_unloc.integrators import integrators_client_for
from latchflow_unloc.keys import flat_key
from latchflow_unloc.schemas import (
    HOLDER_ID,
    HOLDER_OUTPUT,
    KEY_OUTPUT,
    LOCK_ID,
    LOCK_ITEM,
    SAMPLE_HOLDER,
    SAMPLE_KEY,
    list_output,
    obj,
)

SAMPLE_LOCK = {
    "id": SAMPLE_KEY["lockId"],
    "name": "Front door",
    "vendor": "danalock",
    "keysCreatedCount": 3,
    "canCreateKeysCount": 1000,
}


async def list_lock_holders(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any]:
    holders = await integrators_client_for(
        ctx, "unloc_integrators.list_lock_holders"
    ).list_lock_holders()
    return {"lockHolders": holders, "count": len(holders)}


async def list_locks(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any]:
    locks = await integrators_client_for(ctx, "unloc_integrators.list_locks").list_locks(
        input.get("lockHolderId")
    )
    return {"locks": locks, "count": len(locks)}


async def get_lock(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any]:
    return await integrators_client_for(ctx, "unloc_integrators.get_lock").get_lock(
        input.get("lockHolderId"), input["lockId"]
    )


async def list_keys(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any]:
    keys = await integrators_client_for(ctx, "unloc_integrators.list_keys").list_keys(
        input.get("lockHolderId"), input.get("lockId")
    )
    return {"keys": [flat_key(k) for k in keys], "count": len(keys)}


LIST_LOCK_HOLDERS = Action(
    key="unloc_integrators.list_lock_holders",
    title="List lock holders",
    description="Lists the lock holders the integrator credentials reach.",
    input_schema=obj({}),
    output_schema=list_output("lockHolders", HOLDER_OUTPUT),
    sample={"lockHolders": [SAMPLE_HOLDER], "count": 1},
    run=list_lock_holders,
    connection="unloc_integrators",
    retry_safety=RetrySafety.IDEMPOTENT,
)

LIST_LOCKS = Action(
    key="unloc_integrators.list_locks",
    title="List a lock holder's locks",
    description="Lists the locks of a lock holder with their address and key counts.",
    input_schema=obj({"lockHolderId": HOLDER_ID}),
    output_schema=list_output("locks", LOCK_ITEM),
    sample={"locks": [SAMPLE_LOCK], "count": 1},
    run=list_locks,
    connection="unloc_integrators",
    retry_safety=RetrySafety.IDEMPOTENT,
)

GET_LOCK = Action(
    key="unloc_integrators.get_lock",
    title="Get a lock holder's lock",
    description="Reads one lock of a lock holder.",
    input_schema=obj({"lockHolderId": HOLDER_ID, "lockId": LOCK_ID}, ["lockId"]),
    output_schema={
        "type": "object",
        "required": ["id"],
        "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
    },
    sample=SAMPLE_LOCK,
    run=get_lock,
    connection="unloc_integrators",
    retry_safety=RetrySafety.IDEMPOTENT,
)

LIST_KEYS = Action(
    key="unloc_integrators.list_keys",
    title="List a lock holder's keys",
    description="Lists the keys created through the API for a lock holder, or for one of its locks (with recurrence).",
    input_schema=obj(
        {"lockHolderId": HOLDER_ID, "lockId": {**LOCK_ID, "description": "Only keys of this lock."}}
    ),
    output_schema=list_output("keys", KEY_OUTPUT),
    sample={"keys": [SAMPLE_KEY], "count": 1},
    run=list_keys,
    connection="unloc_integrators",
    retry_safety=RetrySafety.IDEMPOTENT,
)
