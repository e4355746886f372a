"""Request and response bodies of the HTTP API (pydantic), so the OpenAPI document shows them."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
)

DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
"""RFC 3339's date-time (JSON Schema's ``format: date-time``): with a UTC offset."""


def _date_time(value: Any) -> Any:
    """An RFC 3339 date-time string as a datetime (not a number, not a date alone)."""
    if isinstance(value, str) and DATE_TIME.fullmatch(value) is None:
        raise ValueError(
            f"{value[:40]!r} is not a date and time with a UTC offset; send e.g."
            " 2025-01-31T12:00:00Z"
        )
    return value


def _isoformat(moment: datetime) -> str:
    return moment.isoformat()


DATE_TIME_SCHEMA = WithJsonSchema({"type": "string", "format": "date-time"})
Moment = Annotated[
    datetime,
    PlainSerializer(_isoformat, return_type=str, when_used="json"),
    DATE_TIME_SCHEMA,
]
"""A date and time in an answer, written as ``isoformat()`` writes it (with its UTC offset)."""
DateTimeParameter = Annotated[datetime, BeforeValidator(_date_time), DATE_TIME_SCHEMA]
"""A date and time in a request: RFC 3339 only."""


class StrictBody(BaseModel):
    """A request body read as JSON states it: no number for a boolean, no string for a number
    (an integer may have a zero fraction, 2.0, as JSON Schema counts integers)."""

    model_config = ConfigDict(strict=True)

    @field_validator("*", mode="before")
    @classmethod
    def _integral(cls, value: Any) -> Any:
        return int(value) if isinstance(value, float) and value.is_integer() else value


class ErrorBody(BaseModel):
    """Every refusal: what was wrong, where (a header, field or JSON path) and what to do."""

    error: str
    where: str | None = None
    hint: str | None = None


class ErrorDetailOut(BaseModel):
    path: str
    message: str


class ValidationErrorBody(BaseModel):
    """A document failed validation; ``errors`` lists every problem with its JSON path."""

    error: str
    errors: list[ErrorDetailOut]


class Health(BaseModel):
    status: str
    version: str


class HookAccepted(BaseModel):
    """The run an event started (202), the first run of a duplicate (200), or a finished run."""

    run_id: str
    status_url: str
    duplicate: bool = False
    status: str | None = Field(None, description="Set when ?wait= saw the run finish")
    output: Any = Field(None, description="The run's output, when ?wait= saw it succeed")
    error: str | None = None


class RunStarted(BaseModel):
    flow_id: str
    run_id: str
    created: bool


class DroppedEvent(BaseModel):
    flow_id: str
    event_id: str
    reason: str


class VendorAccepted(BaseModel):
    """What a vendor webhook delivery became: runs per listening flow, filtered events, and how
    many events no trigger stands for (kept as dropped, see ``GET /api/events``)."""

    events: int
    dropped: int
    runs: list[RunStarted]
    filtered: list[DroppedEvent]


class FlowSummary(BaseModel):
    id: str
    name: str
    version: int
    trigger_type: str
    trigger_connection: str | None
    enabled: bool
    signed: bool = Field(
        description="Whether the trigger URL requires Standard Webhooks signatures"
    )
    previous_secret_until: Moment | None = Field(
        None, description="Until when the signing secret replaced last is still accepted"
    )
    trigger_url: str | None = Field(None, description="POST here to start a run (webhook flows)")
    created_at: Moment
    updated_at: Moment


class FlowDetail(FlowSummary):
    document: dict[str, Any]


class FlowVersionOut(BaseModel):
    version: int
    created_at: Moment
    document: dict[str, Any]


class TokenOut(BaseModel):
    trigger_url: str


MAX_GRACE_SECONDS = 7 * 24 * 3600
DEFAULT_GRACE_SECONDS = 24 * 3600


B64 = "[A-Za-z0-9+/]"
SIGNING_SECRET = f"^whsec_(?:{B64}{{4}}){{5}}(?:{B64}{{2,3}}|(?:{B64}{{4}})+(?:{B64}{{2,3}})?)=*$"
"""'whsec_' and standard base64 (padded or not) of at least 16 bytes, as ``signing`` reads it."""


class SigningSecretIn(StrictBody):
    secret: str | None = Field(
        None,
        description="'whsec_' and the base64 of at least 16 random bytes; leave out to have one"
        " generated",
        json_schema_extra={"pattern": SIGNING_SECRET},
    )
    grace_seconds: int = Field(
        DEFAULT_GRACE_SECONDS,
        ge=0,
        le=MAX_GRACE_SECONDS,
        description="How long the secret being replaced is still accepted (0: not at all)",
    )


class SigningSecretOut(BaseModel):
    secret: str = Field(description="Shown once; give it to the sender")


class StartIn(StrictBody):
    data: dict[str, Any] = Field(default_factory=dict, description="The event the flow sees")
    dedupe_key: str | None = None


class ConnectionIn(StrictBody):
    vendor: str
    name: str | None = None
    config: dict[str, Any] = Field(
        default_factory=dict, description="Settings; secret fields left out keep their values"
    )
    test: bool = False
    webhook_sources: list[str] | None = Field(
        None,
        description=(
            "Networks (CIDR, e.g. 203.0.113.0/24) the vendor's webhooks may come from; an empty"
            " list accepts any; left out keeps what is set"
        ),
    )


class ConnectionOut(BaseModel):
    """A connection without its secrets (they are write-only)."""

    id: str
    vendor: str
    name: str
    config: dict[str, Any]
    webhook_sources: list[str] | None = None
    revision: str = Field(
        description="Changes with every save; send it as If-Match to change only this revision"
    )
    webhook_url: str | None = Field(
        None,
        description=(
            "Where the vendor sends webhooks: shown once, when the connection is created (or its"
            " token rotated); only a hash of its token is kept"
        ),
    )
    test: dict[str, Any] | None = None


class WebhookUrlOut(BaseModel):
    webhook_url: str


class ConnectionTest(BaseModel):
    ok: bool
    result: dict[str, Any] | None = None
    error: str | None = None


class RunSummary(BaseModel):
    id: str
    flow_id: str
    flow_version: int
    event_id: str
    status: str
    step_index: int
    due_at: Moment | None
    error: str | None
    output: Any = None
    created_at: Moment | None
    finished_at: Moment | None


class StepOut(BaseModel):
    id: str
    action: str
    status: str
    attempts: int
    input: Any = None
    output: Any = None
    error: str | None
    started_at: Moment | None
    finished_at: Moment | None


class RunEvent(BaseModel):
    id: str
    data: Any
    received_at: Moment | None


class RunDetail(RunSummary):
    event: RunEvent | None
    steps: list[StepOut]


class ReplayIn(StrictBody):
    from_start: bool = Field(False, description="Replay every step, not just from the failed one")


class EventOut(BaseModel):
    """An event: accepted (it has a run), duplicate or filtered, with the reason; or dropped
    (no trigger stands for it), for no flow, with the vendor's type and connection."""

    id: str
    flow_id: str | None
    trigger: str
    connection_id: str | None
    vendor_type: str | None
    status: str
    reason: str | None
    run_id: str | None
    key: str | None
    data: Any
    received_at: Moment | None


class PluginOut(BaseModel):
    name: str
    version: str | None
    vendors: list[str]
    triggers: list[str]
    actions: list[str]


class VendorOut(BaseModel):
    key: str
    title: str
    description: str
    connection_schema: dict[str, Any]
    webhook: bool
    sandbox: bool


class ComponentOut(BaseModel):
    key: str
    title: str
    description: str
    connection: str | None
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    sample: dict[str, Any]


class TriggerOut(ComponentOut):
    webhook: bool
    polls: bool
    poll_interval: float | None


class ActionOut(ComponentOut):
    idempotent: bool


class Catalog(BaseModel):
    plugins: list[PluginOut]
    vendors: list[VendorOut]
    triggers: list[TriggerOut]
    actions: list[ActionOut]


class NodeOut(BaseModel):
    """A ``latchflow serve`` process; ``alive`` is false once its heartbeat is 15 s old."""

    id: str
    host: str
    backend: str = Field(description="embedded (SQLite, one node) or procrastinate (PostgreSQL)")
    started_at: datetime
    last_heartbeat: datetime
    jobs_in_flight: int = Field(description="Steps this node was running at its last heartbeat")
    alive: bool


class ApiKeyIn(StrictBody):
    name: str = Field(min_length=1, max_length=100, description="What the key is for")
    scope: Literal["read", "write", "admin"] = Field(
        "read", description="read: see; write: also change; admin: also manage keys"
    )
    expires_in_days: int | None = Field(
        None, ge=1, le=3650, description="Refused after this many days; none: never"
    )


class ApiKeyOut(BaseModel):
    """An API key's record: never the key, which is shown once, when it is created."""

    id: str
    name: str
    scope: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="Send as 'Authorization: Bearer <key>'; shown this once")


class AuditEventOut(BaseModel):
    at: datetime
    actor: str = Field(description="Who: the API key (id and name), or cli")
    action: str = Field(description="What, e.g. reveal")
    subject: str = Field(description="To what, e.g. run <id>")
    detail: Any = None
