"""Creating through the Integrators v1 API: lock holders and keys, each made once however often
the step is tried.

An integrators key carries no metadata, so the step marks its key by the milliseconds of its
start; a lock holder is known by its organisation id, suffix and name. A retried step first
looks for what its lost attempt made and adopts it. One that had to create after all looks again
``verifyDelay`` seconds later; the integrators API can delete neither keys nor lock holders, so
a copy Unloc made late fails the step with the ids to remove by hand.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from latchflow import Action, FatalError, Pending, RetrySafety, RunContext, parse_moment
from latchflow_unloc.assumptions import GONE_KEY_STATES, LOCK_HOLDER_IDENTITY
from latchflow_unloc.integrators import IntegratorsClient, integrators_client_for
from latchflow_unloc.keys import check_recurrence, flat_key, iso_utc
from latchflow_unloc.markers import marked_start, oldest_first, starts_at
from latchflow_unloc.phone import to_e164
from latchflow_unloc.schemas import (
    DEFAULT_REGION,
    HOLDER_ID,
    HOLDER_OUTPUT,
    KEY_FIELDS,
    KEY_OUTPUT,
    LOCK_ID,
    SAMPLE_HOLDER,
    SAMPLE_KEY,
    obj,
)
from latchflow_unloc.verify import VERIFY_FIELDS, verify_at

KEY_ACTION = "unloc_integrators.create_key"
HOLDER_ACTION = "unloc_integrators.create_lock_holder"


def copies_error(action: str, what: str, kept: str, extra: list[str], how: str) -> FatalError:
    return FatalError(
        f"{action}: Unloc made {len(extra) + 1} {what}s for this step (a request whose answer"
        f" was lost was carried out late): this step returned {kept}; the extra {what}"
        f" {', '.join(extra)} must be removed by hand: {how}"
    )


def key_start(ctx: RunContext, input: dict[str, Any]) -> datetime:
    """The key's start, its milliseconds marking the step: the given start, else the moment the
    step first ran (a second early, so the key is usable at once)."""
    if input.get("start") not in (None, ""):
        try:
            start = parse_moment(input["start"])
        except FatalError as exc:
            raise FatalError(f"{KEY_ACTION}: input.start: {exc}") from None
    else:
        start = (ctx.started_at or ctx.clock.now()) - timedelta(seconds=1)
    return marked_start(ctx, start)


def key_body(ctx: RunContext, input: dict[str, Any], start: datetime) -> dict[str, Any]:
    body: dict[str, Any] = {
        "userId": to_e164(input["appUserId"], input.get("defaultRegion")),
        "start": iso_utc(start),
        # Integrators v1 documents null as "never expires".
        "end": iso_utc(input["end"]) if input.get("end") not in (None, "") else None,
    }
    if body["end"] is not None and parse_moment(body["end"]) <= start:
        raise FatalError(f"{KEY_ACTION}: input.end: must be after start ({body['start']})")
    if input.get("recurrence"):
        body["recurrence"] = check_recurrence(input["recurrence"])
    if "skipInviteNotification" in input:
        body["skipInviteNotification"] = bool(input["skipInviteNotification"])
    return body


async def keys_marked(
    client: IntegratorsClient, input: dict[str, Any], user_id: str, start: datetime
) -> list[dict[str, Any]]:
    """The lock's keys for the user that start at the step's marked start, oldest first."""
    keys = await client.list_keys(input.get("lockHolderId"), input["lockId"])
    return oldest_first(
        [
            k
            for k in keys
            if str((k.get("toUser") or {}).get("id")) == user_id
            and starts_at(k, start)
            and k.get("state") not in GONE_KEY_STATES
        ]
    )


def key_copies_error(kept: str, extra: list[str]) -> FatalError:
    how = (
        "the integrators API cannot revoke keys; revoke them in Unloc Control Center, or with"
        " unloc.revoke_key on a v2 connection"
    )
    return copies_error(KEY_ACTION, "key", kept, extra, how)


async def create_key(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any] | Pending:
    client = integrators_client_for(ctx, KEY_ACTION)
    start = key_start(ctx, input)
    body = key_body(ctx, input, start)
    if ctx.state is not None:  # the check for a copy made late
        found = await keys_marked(client, input, body["userId"], start)
        extra = [str(k["id"]) for k in found if k["id"] != ctx.state["key"]["keyId"]]
        if extra:
            raise key_copies_error(ctx.state["key"]["keyId"], extra)
        ours = [flat_key(k) for k in found]
        return ours[0] if ours else dict(ctx.state["key"])
    if ctx.attempt > 1:
        found = await keys_marked(client, input, body["userId"], start)
        if len(found) > 1:
            raise key_copies_error(str(found[0]["id"]), [str(k["id"]) for k in found[1:]])
        if found:
            return flat_key(found[0])
    key = flat_key(await client.create_key(input.get("lockHolderId"), input["lockId"], body))
    check_at = verify_at(ctx, input)
    if check_at is not None:
        return Pending(check_at=parse_moment(check_at), state={"key": key})
    return key


def holder_body(input: dict[str, Any]) -> dict[str, Any]:
    fields = ("name", "countryIso", "organizationId", "organizationIdSuffix", "createVendorAccount")
    return {k: input[k] for k in fields if k in input}


async def same_holders(client: IntegratorsClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The lock holders with the organisation id, suffix and name of ``body``."""
    wanted = [str(body.get(field) or "") for field in LOCK_HOLDER_IDENTITY]
    return [
        h
        for h in await client.list_lock_holders()
        if [str(h.get(field) or "") for field in LOCK_HOLDER_IDENTITY] == wanted
    ]


def holder_copies_error(kept: str, extra: list[str]) -> FatalError:
    how = "Unloc has no endpoint to delete lock holders; ask Unloc support to remove them"
    return copies_error(HOLDER_ACTION, "lock holder", kept, extra, how)


async def create_lock_holder(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any] | Pending:
    client = integrators_client_for(ctx, HOLDER_ACTION)
    body = holder_body(input)
    if ctx.state is not None:  # the check for a copy made late
        kept = ctx.state["holder"]
        extra = [str(h["id"]) for h in await same_holders(client, body) if h["id"] != kept["id"]]
        if extra:
            raise holder_copies_error(kept["id"], extra)
        return dict(kept)
    if ctx.attempt > 1:
        same = await same_holders(client, body)
        if len(same) > 1:
            raise holder_copies_error(str(same[0]["id"]), [str(h["id"]) for h in same[1:]])
        if same:
            return same[0]
    holder = await client.create_lock_holder(body)
    check_at = verify_at(ctx, input)
    if check_at is not None:
        return Pending(check_at=parse_moment(check_at), state={"holder": holder})
    return holder


CREATE_LOCK_HOLDER = Action(
    key=HOLDER_ACTION,
    title="Create a lock holder",
    description=(
        "Creates a lock holder (an owner of locks) under the integrator; needs the"
        " integrator.admin scope. A retried step adopts the lock holder with the same"
        " organizationId, organizationIdSuffix and name that its lost attempt made."
    ),
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
            **VERIFY_FIELDS,
        },
        ["name", "countryIso", "organizationId"],
    ),
    output_schema=HOLDER_OUTPUT,
    sample=SAMPLE_HOLDER,
    run=create_lock_holder,
    connection="unloc_integrators",
    retry_safety=RetrySafety.RECONCILE,
)

CREATE_KEY = Action(
    key=KEY_ACTION,
    title="Create a key (integrators)",
    description=(
        "Gives a phone number a key to a lock holder's lock. The key starts in state creating."
        " Its start (the given one, else when the step first ran) is sent with milliseconds"
        " that mark the step, by which a retried step finds the key an attempt whose answer"
        " was lost made."
    ),
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
            **VERIFY_FIELDS,
        },
        ["lockId", "appUserId"],
    ),
    output_schema=KEY_OUTPUT,
    sample={**SAMPLE_KEY, "state": "creating"},
    run=create_key,
    connection="unloc_integrators",
    retry_safety=RetrySafety.RECONCILE,
)
