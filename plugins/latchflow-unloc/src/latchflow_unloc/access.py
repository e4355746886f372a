"""The Unloc credential provider: mobile keys on Unloc locks, for access grants.

Built on the v2 actions: a key is issued by ``unloc.create_key`` (its Create Keys job is
followed with ``Pending``; a retried issue adopts the key its lost attempt made, by the marker
in the key's metadata), revoked by ``unloc.revoke_key`` and listed by ``unloc.list_keys``;
``unloc.list_locks`` lists the project's locks as resources.
Unloc enforces weekly hours itself (a key's ``recurrence``), in the lock's local time, which is
taken to be the place's time zone. Unloc cannot move a key's dates, so there is no ``change``.
"""

from __future__ import annotations

from typing import Any

from latchflow import (
    CredentialKind,
    CredentialProvider,
    CredentialRequest,
    FatalError,
    Pending,
    Resource,
    ResourceKind,
    RunContext,
    VendorCredential,
    WeeklyHours,
    parse_moment,
)
from latchflow_unloc.create_key import create_key
from latchflow_unloc.phone import to_e164
from latchflow_unloc.read_actions import list_keys, list_locks
from latchflow_unloc.revoke_actions import revoke_key
from latchflow_unloc.vendors import UNLOC

LOCK = "unloc.lock"
LABEL_FIELD = "label"
"""Metadata entry (shown in Unloc Control Center) holding the request's label."""
CREDENTIAL_FIELD = "latchflowCredential"
"""Metadata entry holding latchflow's credential id."""
LIVE_STATES = ("creating", "scheduled", "active", "inactive")
"""Key states that work now or will (inactive: outside its weekly hours)."""

UNLOC_LOCK = ResourceKind(
    key=LOCK,
    title="Unloc lock",
    description=(
        "Unloc lock id (UUID) in the connection's project, as listed by List locks"
        " (unloc.list_locks). Issues mobile keys that Unloc sends to the holder's phone."
    ),
    credentials=(CredentialKind.MOBILE_KEY,),
)


def hour_minute(text: str, where: str) -> tuple[int, int]:
    """``HH:MM`` as hour and minute (``24:00`` allowed), or FatalError naming ``where``."""
    hour, _, minute = text.partition(":")
    if hour.isdigit() and minute.isdigit() and len(minute) == 2:
        value = int(hour), int(minute)
        if value <= (24, 0) and value[1] < 60:
            return value
    raise FatalError(f"weekly hours {where} {text!r}: must be HH:MM, from 00:00 to 24:00")


def recurrence(weekly: WeeklyHours) -> dict[str, Any]:
    """Unloc's ``recurrence``: the same window on each of the weekly hours' days."""
    start, end = hour_minute(weekly.start, "start"), hour_minute(weekly.end, "end")
    if end <= start:
        raise FatalError(
            f"weekly hours {weekly.start}-{weekly.end}: an Unloc key's daily window cannot"
            " cross midnight; end the hours by 24:00 (or start them at 00:00 on the next day)"
        )
    window = {
        "startHour": start[0],
        "startMinute": start[1],
        "endHour": end[0],
        "endMinute": end[1],
    }
    return {day: dict(window) for day in weekly.days}


def key_request(request: CredentialRequest) -> dict[str, Any]:
    """The ``unloc.create_key`` input for a credential request; FatalError if Unloc cannot
    issue it."""
    if request.kind is not CredentialKind.MOBILE_KEY:
        raise FatalError(
            f"{LOCK}: Unloc issues mobile keys only, not {request.kind.value}; choose mobile_key"
        )
    if not request.holder.phone:
        raise FatalError(
            f"{LOCK}: a mobile key needs the person's phone number: Unloc sends the key to the"
            f" holder's phone. Add a mobile number (e.g. +4799887766) to {request.holder.name}"
            " or choose another credential kind for this place."
        )
    window = request.window
    input: dict[str, Any] = {
        "lockId": request.resource,
        "appUserId": to_e164(request.holder.phone, field="holder.phone"),
        "start": window.starts_at.isoformat(),
        "end": window.ends_at.isoformat(),
        "metadata": {LABEL_FIELD: request.label, CREDENTIAL_FIELD: request.credential_id},
    }
    if window.weekly is not None:
        input["recurrence"] = recurrence(window.weekly)
    return input


def credential(key: dict[str, Any]) -> VendorCredential:
    """A key (as the actions return it) as a vendor credential, found again by ``keyId``."""
    state = key.get("state")
    label = (key.get("metadata") or {}).get(LABEL_FIELD)
    phone = key.get("appUserId")
    return VendorCredential(
        ids={"keyId": str(key["keyId"])},
        resource=str(key["lockId"]),
        kind=CredentialKind.MOBILE_KEY,
        active=state in LIVE_STATES,
        starts_at=parse_moment(key["start"]) if key.get("start") else None,
        ends_at=parse_moment(key["end"]) if key.get("end") else None,
        holder=f"{label} ({phone})" if label and phone else label or phone,
        status=state,
        delivered=False if state in ("creating", "error") else None,
    )


async def issue(ctx: RunContext, request: CredentialRequest) -> VendorCredential | Pending:
    """Create the key, or follow its job while ``Pending``; a retry adopts an earlier key."""
    result = await create_key(ctx, key_request(request))
    return result if isinstance(result, Pending) else credential(result)


async def revoke(ctx: RunContext, issued: VendorCredential) -> None:
    """Revoke the key; a key that is gone (unknown, revoked or expired) is fine."""
    key_id = issued.ids.get("keyId")
    if not key_id:
        raise FatalError(f"{LOCK}: the credential names no Unloc keyId: {issued.ids}")
    await revoke_key(ctx, {"keyId": str(key_id), "ignoreMissing": True})


async def inspect(ctx: RunContext, resource_kind: str, resource: str) -> list[VendorCredential]:
    """Every key at the lock that is not revoked or expired, wherever it was made."""
    if resource_kind != LOCK:
        raise FatalError(f"{LOCK}: cannot inspect resource kind {resource_kind!r}")
    listed = await list_keys(
        ctx, {"lockId": resource, "excludeStates": ["revoked", "expired"], "allPages": True}
    )
    return [credential(key) for key in listed["keys"]]


async def resources(ctx: RunContext, resource_kind: str) -> list[Resource]:
    """Every lock of the connection's project (all pages of List locks), by its name."""
    if resource_kind != LOCK:
        raise FatalError(f"{LOCK}: cannot list resource kind {resource_kind!r}")
    listed = await list_locks(ctx, {"allPages": True})
    return [
        Resource(str(lock["id"]), str(lock.get("name") or lock["id"])) for lock in listed["locks"]
    ]


PROVIDER = CredentialProvider(
    vendor=UNLOC.key,
    resource_kinds=(UNLOC_LOCK,),
    issue=issue,
    revoke=revoke,
    inspect=inspect,
    weekly_hours=True,
    resources=resources,
)
