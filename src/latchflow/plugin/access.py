"""What a vendor registers to take part in access grants: a credential provider.

A grant says who may open which places when; each place maps to vendor resources (a KEYVOX
unit, an Unloc lock, a LivionKey key automat). For each resource the reconciler asks the
provider of its kind to issue a credential, move its window, revoke it, and to list what the
vendor really has there (``inspect``), so that drift is found and repaired.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from latchflow.plugin.types import JSON, Pending, RunContext


class CredentialKind(StrEnum):
    """How a person opens: what a grant may prefer and a provider may issue."""

    PIN = "pin"
    MOBILE_KEY = "mobile_key"
    KEY_HANDOVER = "key_handover"
    """A physical key (an iLOQ key) the person fetches from a key automat."""
    CARD = "card"


DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class WeeklyHours:
    """A recurring window inside a grant's dates: on ``days``, from ``start`` to ``end``
    (``HH:MM``, local time in the window's time zone)."""

    days: tuple[str, ...]
    start: str
    end: str


@dataclass(frozen=True)
class AccessWindow:
    """When a credential works: from ``starts_at`` to ``ends_at``; with ``weekly`` only in
    those hours. ``timezone`` (IANA) is the place's local time, for weekly hours."""

    starts_at: datetime
    ends_at: datetime
    timezone: str = "UTC"
    weekly: WeeklyHours | None = None


@dataclass(frozen=True)
class Holder:
    """The person a credential is for, as a vendor may show or notify them."""

    name: str
    phone: str | None = None
    """E.164, e.g. +4799887766."""
    email: str | None = None
    reference: str | None = None


@dataclass(frozen=True)
class CredentialRequest:
    """A credential to issue (or to change an issued one to)."""

    credential_id: str
    """latchflow's id for it: stable for the credential's life, fit for a vendor-side label."""
    resource_kind: str
    resource: str
    """The vendor's id of the resource (a unit id, a lock id, an automat id)."""
    kind: CredentialKind
    holder: Holder
    window: AccessWindow
    label: str
    """What to call it where the vendor shows a name (the holder and the grant's reference)."""


@dataclass(frozen=True)
class VendorCredential:
    """A credential as the vendor has it."""

    ids: JSON
    """What ``change`` and ``revoke`` need to find it again (a PIN id, a key id)."""
    resource: str
    kind: CredentialKind
    active: bool
    """It works, or will work in its window: not revoked, disabled or expired."""
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    secret: str | None = None
    """The PIN or code, when the vendor returns one (sealed at rest, never logged)."""
    holder: str | None = None
    """The name, phone or label the vendor shows for it."""
    status: str | None = None
    """The vendor's own word for its state (``delivery pending``, ``fetched``), if it has one."""
    delivered: bool | None = None
    """Whether it reached the device (a PIN synced to an offline lock); None: not known."""


@dataclass(frozen=True)
class Resource:
    """A vendor resource a place can map to: its id and the name the vendor shows."""

    id: str
    name: str


Issue = Callable[[RunContext, CredentialRequest], Awaitable[VendorCredential | Pending]]
Change = Callable[
    [RunContext, VendorCredential, CredentialRequest], Awaitable[VendorCredential | Pending]
]
Revoke = Callable[[RunContext, VendorCredential], Awaitable[Pending | None]]
Inspect = Callable[[RunContext, str, str], Awaitable[list[VendorCredential]]]
ListResources = Callable[[RunContext, str], Awaitable[list[Resource]]]


@dataclass(frozen=True)
class ResourceKind:
    """A kind of vendor resource a place can map to, such as ``keyvox.unit``."""

    key: str
    title: str
    description: str
    credentials: tuple[CredentialKind, ...]
    """The credential kinds the vendor can issue on it, preferred first."""


@dataclass(frozen=True)
class CredentialProvider:
    """Issues, changes, revokes and lists a vendor's credentials on its resource kinds.

    Each call gets a ``RunContext`` whose ``connection`` is the resource's connection and
    whose ``idempotency_key`` is stable for one issuance of one credential: on a later
    ``attempt`` an earlier call may have reached the vendor, so the provider looks before it
    acts (the vendor's actions with ``retry_safety`` do this). ``issue``, ``change`` and
    ``revoke`` may return ``Pending`` for a vendor job that finishes later: they are called
    again with ``ctx.state``. ``revoke`` of a credential the vendor no longer has succeeds.
    ``inspect`` lists what is on exactly that resource: no credential in two resources' lists.
    ``change`` is None when the vendor cannot move a window: the credential is revoked and
    issued again. ``weekly_hours`` says whether the vendor enforces ``WeeklyHours`` itself;
    otherwise the reconciler issues one occurrence at a time. ``resources`` lists the vendor's
    resources of a kind, to map places to (the sandbox makes a place of each).
    """

    vendor: str
    """Key of the vendor whose connections the resources belong to."""
    resource_kinds: tuple[ResourceKind, ...]
    issue: Issue
    revoke: Revoke
    inspect: Inspect
    change: Change | None = None
    weekly_hours: bool = False
    resources: ListResources | None = None
