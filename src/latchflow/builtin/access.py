"""Access grants in flows: the actions that create, change and cancel grants, the credential
reveal, the reconciler's own step, and the triggers the access layer fires.

They are declared here like any plugin's; the engine binds the actions to its access layer
(``latchflow.access``), so they run only inside an engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from latchflow import (
    JSON,
    Action,
    ConfigurationError,
    CredentialKind,
    Pending,
    RetryPolicy,
    RetrySafety,
    RunContext,
    Trigger,
    hookimpl,
)
from latchflow.builtin.actions import MOMENT


async def unbound(ctx: RunContext, data: JSON) -> JSON | Pending:
    raise ConfigurationError("access actions run inside a latchflow engine, which binds them")


DAY = {"enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}
CLOCK = {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"}
PERSON = {
    "type": "object",
    "description": "Who: matched to a stored person by reference, else stored new",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "description": "Full name"},
        "phone": {"type": ["string", "null"], "description": "Phone number, normalised to E.164"},
        "email": {"type": ["string", "null"], "description": "E-mail address"},
        "reference": {
            "type": ["string", "null"],
            "description": "The person's id in another system",
        },
    },
    "additionalProperties": False,
}
WINDOW_FIELDS: dict[str, Any] = {
    "places": {
        "type": "array",
        "minItems": 1,
        "items": {"type": "string"},
        "description": "Names (or ids) of the places the person may open",
    },
    "starts": {**MOMENT, "description": "When access starts (ISO 8601 or unix seconds)"},
    "ends": {**MOMENT, "description": "When access ends (ISO 8601 or unix seconds)"},
    "timezone": {
        "type": "string",
        "description": "IANA time zone of weekly hours (default: the first place's)",
    },
    "weekly": {
        "type": "object",
        "description": "Only on these days, between these local times, within the dates",
        "required": ["days", "start", "end"],
        "properties": {
            "days": {"type": "array", "items": DAY, "minItems": 1, "uniqueItems": True},
            "start": CLOCK,
            "end": CLOCK,
        },
        "additionalProperties": False,
    },
    "kinds": {
        "type": "array",
        "items": {"enum": [k.value for k in CredentialKind]},
        "description": "Credential kinds preferred, first first (default: each place's own)",
    },
}
REFERENCE = {
    "type": "string",
    "minLength": 1,
    "description": "The grant's reference (a booking id)",
}
CREDENTIAL = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "place": {"type": "string"},
        "resource_kind": {"type": "string"},
        "resource": {"type": "string"},
        "kind": {"type": "string"},
        "state": {"type": "string"},
    },
}
GRANT_OUT = {
    "type": "object",
    "required": ["id", "state", "credentials"],
    "properties": {
        "id": {"type": "string"},
        "reference": {"type": ["string", "null"]},
        "state": {"type": "string"},
        "version": {"type": "integer"},
        "person": {"type": "string"},
        "places": {"type": "array", "items": {"type": "string"}},
        "starts": {"type": "string"},
        "ends": {"type": "string"},
        "credentials": {"type": "array", "items": CREDENTIAL},
    },
}
GRANT_SAMPLE = {
    "id": "4be1c0de5d0c4a8a9d7c3b8f1e2a6c55",
    "reference": "B-1001",
    "state": "active",
    "version": 1,
    "person": "Ada Lovelace",
    "places": ["Room 12"],
    "starts": "2026-04-03T15:00:00+00:00",
    "ends": "2026-04-05T11:00:00+00:00",
    "credentials": [
        {
            "id": "9f0c2d7e8b1a4c3d9e2f1a0b7c6d5e4f",
            "place": "Room 12",
            "resource_kind": "keyvox.unit",
            "resource": "U-12",
            "kind": "pin",
            "state": "issuing",
        }
    ],
}
CREDENTIAL_EVENT = {
    "type": "object",
    "properties": {
        "grant": {"type": "string", "description": "Grant id"},
        "reference": {"type": ["string", "null"], "description": "Grant reference"},
        "credential": {"type": "string", "description": "Credential id"},
        "person": {"type": "string"},
        "phone": {"type": ["string", "null"]},
        "email": {"type": ["string", "null"]},
        "place": {"type": "string"},
        "kind": {"type": "string"},
        "state": {"type": "string"},
        "error": {"type": ["string", "null"]},
    },
}
CREDENTIAL_EVENT_SAMPLE = {
    "grant": "4be1c0de5d0c4a8a9d7c3b8f1e2a6c55",
    "reference": "B-1001",
    "credential": "9f0c2d7e8b1a4c3d9e2f1a0b7c6d5e4f",
    "person": "Ada Lovelace",
    "phone": "+4799887766",
    "email": None,
    "place": "Room 12",
    "kind": "pin",
    "state": "issued",
    "error": None,
}
EVENT_SETTINGS = {"type": "object", "properties": {}, "additionalProperties": False}


def _event_trigger(key: str, title: str, description: str, state: str) -> Trigger:
    return Trigger(
        key=key,
        title=title,
        description=description,
        input_schema=EVENT_SETTINGS,
        output_schema=CREDENTIAL_EVENT,
        sample={**CREDENTIAL_EVENT_SAMPLE, "state": state},
        matches=lambda _settings, _data: True,
    )


TRIGGERS = [
    _event_trigger(
        "access.credential_issued",
        "Credential issued",
        "A grant's credential was issued at the vendor (reveal its PIN with Reveal credential).",
        "issued",
    ),
    _event_trigger(
        "access.credential_failed",
        "Credential failed",
        "The vendor refused to issue a grant's credential; the event says why.",
        "failed",
    ),
    _event_trigger(
        "access.revocation_overdue",
        "Revocation overdue",
        "A credential that should be revoked is still not confirmed revoked by the vendor"
        " after the grace period; the reconciler keeps trying.",
        "revoking",
    ),
    _event_trigger(
        "access.grant_ended",
        "Grant ended",
        "A grant was cancelled or its end passed, and every credential it had is revoked.",
        "revoked",
    ),
    _event_trigger(
        "access.drift_found",
        "Access drift found",
        "Verification found a vendor's credentials differing from the grants: one missing,"
        " one still active for an ended grant, or one nobody granted.",
        "active",
    ),
]

FOREVER = RetryPolicy(max_attempts=100_000, initial_delay=10.0, multiplier=3.0, max_delay=3600.0)
"""A revocation is retried until the vendor confirms it."""


def _grant_action(
    key: str,
    title: str,
    description: str,
    required: list[str],
    properties: JSON,
    state: str = "active",
) -> Action:
    """An action on a grant: its input, and the grant (as it is then) as output."""
    return Action(
        key=key,
        title=title,
        description=description,
        input_schema={
            "type": "object",
            "required": required,
            "properties": properties,
            "additionalProperties": False,
        },
        output_schema=GRANT_OUT,
        sample={**GRANT_SAMPLE, "state": state},
        run=unbound,
        retry_safety=RetrySafety.IDEMPOTENT,
    )


ACTIONS = [
    _grant_action(
        "access.grant",
        "Grant access",
        "Let a person open places from a start to an end (optionally on weekly hours):"
        " latchflow issues a credential on every vendor resource of each place, moves them"
        " when the grant changes and revokes them at its end. With a reference that already"
        " has a grant, that grant is changed instead.",
        ["person", "places", "starts", "ends"],
        {"reference": REFERENCE, "person": PERSON, **WINDOW_FIELDS},
    ),
    _grant_action(
        "access.update_grant",
        "Change a grant",
        "Move a grant's dates, change its places, hours or person, by its reference:"
        " credentials follow (a moved room is revoked on the old one and issued on the new).",
        ["reference"],
        {"reference": REFERENCE, "person": PERSON, **WINDOW_FIELDS},
    ),
    _grant_action(
        "access.cancel_grant",
        "Cancel a grant",
        "Cancel a grant by its reference: every credential it has is revoked.",
        ["reference"],
        {"reference": REFERENCE},
        "cancelled",
    ),
    Action(
        key="access.reveal_credential",
        title="Reveal credential",
        description=(
            "The PIN or code of an issued credential, to send to its holder (sealed in run"
            " history, masked where shown, and recorded in the audit log)."
        ),
        input_schema={
            "type": "object",
            "required": ["credential"],
            "properties": {"credential": {"type": "string", "description": "Credential id"}},
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {
                "credential": {"type": "string"},
                "kind": {"type": "string"},
                "code": {"type": ["string", "null"], "description": "The PIN or code"},
                "starts": {"type": ["string", "null"]},
                "ends": {"type": ["string", "null"]},
            },
        },
        sample={
            "credential": "9f0c2d7e8b1a4c3d9e2f1a0b7c6d5e4f",
            "kind": "pin",
            "code": "482913",
            "starts": "2026-04-03T15:00:00+00:00",
            "ends": "2026-04-05T11:00:00+00:00",
        },
        run=unbound,
        retry_safety=RetrySafety.IDEMPOTENT,
        credentials=("code",),
    ),
    Action(
        key="access.reconcile",
        title="Reconcile a credential",
        description=(
            "The access layer's own step: make one credential at its vendor what its grant"
            " wants now (issue, move, revoke), retrying a revocation until the vendor confirms it."
        ),
        input_schema={
            "type": "object",
            "required": ["credential"],
            "properties": {"credential": {"type": "string", "description": "Credential id"}},
            "additionalProperties": False,
        },
        output_schema={"type": "object"},
        sample={"credential": "9f0c2d7e8b1a4c3d9e2f1a0b7c6d5e4f", "state": "issued"},
        run=unbound,
        retry_safety=RetrySafety.IDEMPOTENT,
        retry=FOREVER,
    ),
    Action(
        key="access.verify",
        title="Verify access",
        description=(
            "The access layer's own step: compare every vendor resource's credentials with the"
            " grants, repair what is missing and report or revoke what nobody granted."
        ),
        input_schema={"type": "object", "properties": {}, "additionalProperties": False},
        output_schema={"type": "object"},
        sample={"resources": 3, "drift": 0},
        run=unbound,
        retry_safety=RetrySafety.IDEMPOTENT,
    ),
]


@hookimpl
def register_triggers(register: Callable[[Trigger], None]) -> None:
    for trigger in TRIGGERS:
        register(trigger)


@hookimpl
def register_actions(register: Callable[[Action], None]) -> None:
    for action in ACTIONS:
        register(action)
