"""Request and response bodies of the HTTP API (pydantic), so the OpenAPI document shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


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
    """What a vendor webhook delivery became: runs per listening flow, and filtered events."""

    events: int
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
    previous_secret_until: str | None = Field(
        None, description="Until when the signing secret replaced last is still accepted"
    )
    trigger_url: str | None = Field(None, description="POST here to start a run (webhook flows)")
    created_at: str
    updated_at: str


class FlowDetail(FlowSummary):
    document: dict[str, Any]


class FlowVersionOut(BaseModel):
    version: int
    created_at: str
    document: dict[str, Any]


class TokenOut(BaseModel):
    trigger_url: str


MAX_GRACE_SECONDS = 7 * 24 * 3600
DEFAULT_GRACE_SECONDS = 24 * 3600


class SigningSecretIn(BaseModel):
    secret: str | None = Field(
        None, description="A whsec_-prefixed base64 secret; leave out to have one generated"
    )
    grace_seconds: int = Field(
        DEFAULT_GRACE_SECONDS,
        ge=0,
        le=MAX_GRACE_SECONDS,
        description="How long the secret being replaced is still accepted (0: not at all)",
    )


class SigningSecretOut(BaseModel):
    secret: str = Field(description="Shown once; give it to the sender")


class StartIn(BaseModel):
    data: dict[str, Any] = Field(default_factory=dict, description="The event the flow sees")
    dedupe_key: str | None = None


class ConnectionIn(BaseModel):
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
    due_at: str | None
    error: str | None
    output: Any = None
    created_at: str | None
    finished_at: str | None


class StepOut(BaseModel):
    id: str
    action: str
    status: str
    attempts: int
    input: Any = None
    output: Any = None
    error: str | None
    started_at: str | None
    finished_at: str | None


class RunEvent(BaseModel):
    id: str
    data: Any
    received_at: str | None


class RunDetail(RunSummary):
    event: RunEvent | None
    steps: list[StepOut]


class ReplayIn(BaseModel):
    from_start: bool = Field(False, description="Replay every step, not just from the failed one")


class EventOut(BaseModel):
    """An event: accepted (it has a run), duplicate or filtered, with the reason."""

    id: str
    flow_id: str
    trigger: str
    status: str
    reason: str | None
    run_id: str | None
    key: str | None
    data: Any
    received_at: str | None


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


class ApiKeyIn(BaseModel):
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
