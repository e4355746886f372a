"""Database tables (SQLModel). Schema changes go through Alembic migrations in ``migrations/``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from latchflow.storage.status import EventStatus, RunStatus, StepStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


class Moment(TypeDecorator[datetime]):
    """A UTC moment: stored without zone, always read back timezone-aware (SQLite drops zones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


def _json(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=nullable))


def _moment(index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(Moment(), nullable=True, index=index))


def _created(index: bool = False) -> Any:
    return Field(default_factory=utcnow, sa_column=Column(Moment(), nullable=False, index=index))


class FlowRecord(SQLModel, table=True):
    """A flow's current version and its switches; its documents live in FlowVersion."""

    __tablename__ = "flows"
    id: str = Field(primary_key=True)
    version: int
    name: str
    trigger_type: str = Field(index=True)
    trigger_connection: str | None = Field(default=None, index=True)
    enabled: bool = True
    hook_token: str
    signing_secret: str | None = None
    """Fernet-encrypted Standard Webhooks secret, when the trigger URL requires signatures."""
    previous_signing_secret: str | None = None
    """The secret it replaced (Fernet-encrypted), still accepted until ``previous_secret_until``."""
    previous_secret_until: datetime | None = _moment()
    created_at: datetime = _created()
    updated_at: datetime = _created()


class FlowVersion(SQLModel, table=True):
    """Every saved version of every flow document."""

    __tablename__ = "flow_versions"
    flow_id: str = Field(primary_key=True)
    version: int = Field(primary_key=True)
    document: dict[str, Any] = _json(nullable=False)
    created_at: datetime = _created()


class ConnectionRecord(SQLModel, table=True):
    """A vendor account: plain settings in ``config``, secret ones Fernet-encrypted in ``secrets``."""

    __tablename__ = "connections"
    id: str = Field(primary_key=True)
    vendor: str = Field(index=True)
    name: str
    config: dict[str, Any] = _json(nullable=False)
    secrets: str
    webhook_token_hash: str | None = None
    """SHA-256 of the token in the connection's vendor webhook URL (shown once, rotatable)."""
    webhook_sources: list[str] | None = _json()
    """Networks (CIDR) the vendor's webhooks may come from; None: any."""
    created_at: datetime = _created()
    updated_at: datetime = _created()


class EventRecord(SQLModel, table=True):
    """Something that happened for a flow: accepted (it has a run), duplicate, or filtered; or
    a vendor event no trigger stands for: dropped, for no flow, with its ``vendor_type``.

    ``dedupe_key`` is unique per flow for accepted events; duplicates keep it NULL and say why.
    """

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("flow_id", "dedupe_key", name="uq_events_flow_dedupe"),)
    id: str = Field(primary_key=True)
    flow_id: str | None = Field(default=None, index=True)
    trigger: str
    connection_id: str | None = None
    """The vendor connection a dropped event came in on."""
    vendor_type: str | None = None
    """The vendor's own name for a dropped event's type."""
    dedupe_key: str | None = None
    source_key: str | None = None
    status: str = EventStatus.ACCEPTED
    reason: str | None = None
    run_id: str | None = None
    data: dict[str, Any] = _json(nullable=False)
    received_at: datetime = _created(index=True)


class ConnectionHold(SQLModel, table=True):
    """A connection every process holds back until ``until``: after a vendor's rate limit, or
    while an outage keeps its breaker open (then, once ``until`` has passed, one call probes
    whether the vendor is back, alone until ``probe_until``)."""

    __tablename__ = "connection_holds"
    connection_id: str = Field(primary_key=True)
    kind: str
    until: datetime = Field(sa_column=Column(Moment(), nullable=False))
    opened: int = 1
    """How many times in a row the outage breaker has opened (each open lasts longer)."""
    probe_until: datetime | None = _moment()
    reason: str | None = None


class RunRecord(SQLModel, table=True):
    """One execution of a flow version for one event.

    ``step_index`` is the next step to run; ``due_at`` is when the run may next be worked on
    (now, a retry, the end of a delay, a pending vendor job's next check).
    """

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_status_due", "status", "due_at"),)
    id: str = Field(primary_key=True)
    flow_id: str = Field(index=True)
    flow_version: int
    event_id: str
    status: str = RunStatus.QUEUED
    step_index: int = 0
    due_at: datetime | None = _moment()
    claimed_by: str | None = None
    claimed_until: datetime | None = _moment()
    error: str | None = None
    output: Any = _json()
    created_at: datetime = _created(index=True)
    updated_at: datetime = _created()
    finished_at: datetime | None = _moment()
    replays: int = 0
    """How many times a person replayed it: its steps' earlier attempts may have reached the
    vendor, so the steps it runs again look before they act."""


class StepRecord(SQLModel, table=True):
    """A step's checkpoint: its rendered input and output (sealed for execution, redacted for display)."""

    __tablename__ = "steps"
    run_id: str = Field(primary_key=True)
    step_id: str = Field(primary_key=True)
    position: int
    action: str
    status: str = StepStatus.RUNNING
    attempts: int = 0
    input: Any = _json()
    output: Any = _json()
    input_sealed: str | None = None
    output_sealed: str | None = None
    state: Any = _json()
    error: str | None = None
    started_at: datetime = _created()
    finished_at: datetime | None = _moment()


class PollCursor(SQLModel, table=True):
    """Where a flow's polling trigger left off."""

    __tablename__ = "poll_cursors"
    flow_id: str = Field(primary_key=True)
    cursor: Any = _json()
    polled_at: datetime | None = _moment()


class ApiKey(SQLModel, table=True):
    """A management API key, stored as a SHA-256 hash."""

    __tablename__ = "api_keys"
    id: str = Field(primary_key=True)
    name: str
    key_hash: str = Field(unique=True)
    scope: str = Field(default="admin", sa_column_kwargs={"server_default": "admin"})
    """read, write or admin: what the key may do."""
    expires_at: datetime | None = _moment()
    last_used_at: datetime | None = _moment()
    created_at: datetime = _created()


class WebhookReceipt(SQLModel, table=True):
    """A signed delivery's ``webhook-id`` seen on a flow's trigger URL; a repeat is a replay."""

    __tablename__ = "webhook_receipts"
    flow_id: str = Field(primary_key=True)
    webhook_id: str = Field(primary_key=True)
    run_id: str | None = None
    """The run the delivery started, the answer to a sender that delivers it again."""
    received_at: datetime = _created(index=True)


class NodeRecord(SQLModel, table=True):
    """A running ``latchflow serve`` process and its latest heartbeat."""

    __tablename__ = "nodes"
    id: str = Field(primary_key=True)
    host: str
    backend: str
    started_at: datetime = _created()
    last_heartbeat: datetime = _created(index=True)
    jobs_in_flight: int = 0


class AuditEvent(SQLModel, table=True):
    """Something done that must stay on record: who (``actor``), what, to what, when.

    Entries form a hash chain in ``seq`` order: ``hash`` covers the entry and the previous
    entry's hash, so an edited or removed entry breaks every hash after it.
    """

    __tablename__ = "audit_events"
    id: str = Field(primary_key=True)
    seq: int = Field(unique=True)
    at: datetime = _created(index=True)
    actor: str
    action: str
    subject: str
    detail: Any = _json()
    hash: str


class PersonRecord(SQLModel, table=True):
    """Someone who may be granted access."""

    __tablename__ = "people"
    id: str = Field(primary_key=True)
    name: str
    phone: str | None = None
    """E.164."""
    email: str | None = None
    reference: str | None = Field(default=None, unique=True)
    """The person's id in another system (a guest id in a PMS)."""
    created_at: datetime = _created()
    updated_at: datetime = _created()


class PlaceRecord(SQLModel, table=True):
    """A named space and the vendor resources that open it: ``resources`` is a list of
    ``{"connection", "kind", "id"}`` (a connection, a resource kind, the vendor's id)."""

    __tablename__ = "places"
    id: str = Field(primary_key=True)
    name: str = Field(unique=True)
    description: str | None = None
    timezone: str = "UTC"
    resources: list[dict[str, Any]] = _json(nullable=False)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class GrantRecord(SQLModel, table=True):
    """Who (``person_id``) may open which places, when, and how (credential kinds, preferred
    first). ``state`` is active, cancelled or ended; ``version`` counts its changes."""

    __tablename__ = "grants"
    id: str = Field(primary_key=True)
    person_id: str = Field(index=True)
    places: list[str] = _json(nullable=False)
    starts_at: datetime = Field(sa_column=Column(Moment(), nullable=False))
    ends_at: datetime = Field(sa_column=Column(Moment(), nullable=False))
    timezone: str = "UTC"
    weekly: dict[str, Any] | None = _json()
    """``{"days": ["mon", ...], "start": "HH:MM", "end": "HH:MM"}``, local time."""
    kinds: list[str] = _json(nullable=False)
    reference: str | None = Field(default=None, unique=True)
    """The grant's id in another system, e.g. a booking id."""
    state: str = "active"
    version: int = 1
    created_at: datetime = _created()
    updated_at: datetime = _created()


class CredentialRecord(SQLModel, table=True):
    """One grant's credential on one vendor resource, and what the reconciler knows of it.

    ``wanted`` says whether it should exist now; ``generation`` counts changes to what is
    wanted, each reconciled by its own run. ``issues`` counts issuances (a room moved back,
    a credential deleted at the vendor and issued again): each has its own idempotency key.
    """

    __tablename__ = "credentials"
    __table_args__ = (
        UniqueConstraint(
            "grant_id", "connection_id", "resource_kind", "resource", name="uq_credentials_target"
        ),
    )
    id: str = Field(primary_key=True)
    grant_id: str = Field(index=True)
    place_id: str
    connection_id: str = Field(index=True)
    resource_kind: str
    resource: str
    kind: str
    state: str = Field(default="issuing", index=True)
    wanted: bool = True
    vendor_ids: dict[str, Any] | None = _json()
    secret_sealed: str | None = None
    starts_at: datetime | None = _moment()
    ends_at: datetime | None = _moment()
    """The window the vendor has."""
    vendor_status: str | None = None
    delivered: bool | None = None
    issues: int = 1
    generation: int = 1
    attempts: int = 0
    error: str | None = None
    last_verified_at: datetime | None = _moment()
    revoke_requested_at: datetime | None = _moment()
    overdue_reported: bool = False
    lease_run: str | None = None
    lease_until: datetime | None = _moment()
    created_at: datetime = _created()
    updated_at: datetime = _created()
