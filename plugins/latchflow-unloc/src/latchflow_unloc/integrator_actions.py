"""Actions on the Integrators v1 API: lock holders, their locks and keys."""

from __future__ import annotations

from typing import Any

from latchflow import Action, ConfigurationError, RunContext
from latchflow_unloc.integrators import IntegratorsClient
from latchflow_unloc.keys import check_recurrence, flat_key, iso_utc
from latchflow_unloc.phone import to_e164
from latchflow_unloc.schemas import (
    DEFAULT_REGION,
    KEY_FIELDS,
    KEY_OUTPUT,
    LOCK_ID,
    LOCK_ITEM,
    SAMPLE_KEY,
    list_output,
    obj,
)

HOLDER_ID = {
    "type": "string",
    "minLength": 1,
    "description": "Lock holder id; may be left out when the connection names exactly one.",
}
HOLDER_OUTPUT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "countryIso": {"type": "string"},
        "organizationId": {"type": "string"},
        "organizationIdSuffix": {"type": "string"},
    },
}
SAMPLE_HOLDER = {
    "id": "866b8a35-4184-44c5-8ffd-448a77e5a91c",
    "name": "Demo lock holder",
    "countryIso": "NO",
    "organizationId": "demo-holder",
    "organizationIdSuffix": "",
}
SAMPLE_LOCK = {
    "id": SAMPLE_KEY["lockId"],
    "name": "Front door",
    "vendor": "danalock",
    "keysCreatedCount": 3,
    "canCreateKeysCount": 1000,
}


def client_for(ctx: RunContext) -> IntegratorsClient:
    if ctx.connection is None:
        raise ConfigurationError(
            "this step needs an Unloc integrators connection", path="connection"
        )
    return IntegratorsClient(ctx.connection)


async def list_lock_holders(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any]:
    holders = await client_for(ctx).list_lock_holders()
    return {"lockHolders": holders, "count": len(holders)}


async def create_lock_holder(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        k: input[k]
        for k in (
            "name",
            "countryIso",
            "organizationId",
            "organizationIdSuffix",
            "createVendorAccount",
        )
        if k in input
    }
    return await client_for(ctx).create_lock_holder(body)


async def list_locks(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any]:
    locks = await client_for(ctx).list_locks(input.get("lockHolderId"))
    return {"locks": locks, "count": len(locks)}


async def get_lock(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any]:
    return await client_for(ctx).get_lock(input.get("lockHolderId"), input["lockId"])


async def list_keys(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any]:
    keys = await client_for(ctx).list_keys(input.get("lockHolderId"), input.get("lockId"))
    return {"keys": [flat_key(k) for k in keys], "count": len(keys)}


async def create_key(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "userId": to_e164(input["appUserId"], input.get("defaultRegion")),
        # Integrators v1 documents null as "now" / "never expires".
        "start": iso_utc(input["start"]) if input.get("start") not in (None, "") else None,
        "end": iso_utc(input["end"]) if input.get("end") not in (None, "") else None,
    }
    if input.get("recurrence"):
        body["recurrence"] = check_recurrence(input["recurrence"])
    if "skipInviteNotification" in input:
        body["skipInviteNotification"] = bool(input["skipInviteNotification"])
    key = await client_for(ctx).create_key(input.get("lockHolderId"), input["lockId"], body)
    return flat_key(key)


LIST_LOCK_HOLDERS = Action(
    key="unloc_integrators.list_lock_holders",
    title="List lock holders",
    description="Lists the lock holders the integrator credentials reach.",
    input_schema=obj({}),
    output_schema=list_output("lockHolders", HOLDER_OUTPUT),
    sample={"lockHolders": [SAMPLE_HOLDER], "count": 1},
    run=list_lock_holders,
    connection="unloc_integrators",
    idempotent=True,
)

CREATE_LOCK_HOLDER = Action(
    key="unloc_integrators.create_lock_holder",
    title="Create a lock holder",
    description="Creates a lock holder (an owner of locks) under the integrator; needs the integrator.admin scope.",
    input_schema=obj(
        {
            "name": {
                "type": "string",
                "minLength": 4,
                "maxLength": 1024,
                "description": "Display name.",
            },
            "countryIso": {
                "type": "string",
                "pattern": "^[A-Z]{2}$",
                "description": "Country, ISO 3166 alpha-2 (e.g. NO).",
            },
            "organizationId": {
                "type": "string",
                "pattern": "^[A-Za-z0-9_-]{4,1024}$",
                "description": "Organisation number or other id of the holder.",
            },
            "organizationIdSuffix": {
                "type": "string",
                "description": "Suffix telling holders with the same organisation id apart.",
            },
            "createVendorAccount": {
                "type": "boolean",
                "description": "Also create an account at the lock vendor.",
            },
        },
        ["name", "countryIso", "organizationId"],
    ),
    output_schema=HOLDER_OUTPUT,
    sample=SAMPLE_HOLDER,
    run=create_lock_holder,
    connection="unloc_integrators",
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
    idempotent=True,
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
    idempotent=True,
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
    idempotent=True,
)

CREATE_KEY = Action(
    key="unloc_integrators.create_key",
    title="Create a key (integrators)",
    description="Gives a phone number a key to a lock holder's lock. The key starts in state creating.",
    input_schema=obj(
        {
            "lockHolderId": HOLDER_ID,
            "lockId": LOCK_ID,
            "appUserId": KEY_FIELDS["appUserId"],
            "defaultRegion": DEFAULT_REGION,
            "start": KEY_FIELDS["start"],
            "end": KEY_FIELDS["end"],
            "recurrence": KEY_FIELDS["recurrence"],
            "skipInviteNotification": {
                "type": "boolean",
                "description": "Do not send the user an SMS or push invitation.",
            },
        },
        ["lockId", "appUserId"],
    ),
    output_schema=KEY_OUTPUT,
    sample={**SAMPLE_KEY, "state": "creating"},
    run=create_key,
    connection="unloc_integrators",
)
