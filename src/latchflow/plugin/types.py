"""What plugins register (Vendor, Trigger, Action) and what the engine hands them."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import httpx

from latchflow.plugin.clock import Clock
from latchflow.plugin.errors import ErrorDetail

JSON = dict[str, Any]
ASGIApp = Callable[..., Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: delay = initial * multiplier**(attempt-1), capped.

    The default spans hours, so that a vendor's outage does not fail runs; a step that must
    not act late (opening a door) sets a short one and a deadline.
    """

    max_attempts: int = 10
    initial_delay: float = 5.0
    multiplier: float = 3.0
    max_delay: float = 7200.0
    jitter: float = 0.2

    def delay(self, attempt: int, random_fraction: float) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        ``random_fraction`` in [0, 1) spreads retries by up to ``jitter`` of the delay.
        """
        base = min(self.max_delay, self.initial_delay * self.multiplier ** (attempt - 1))
        return base * (1 + self.jitter * (2 * random_fraction - 1))


@dataclass
class Connection:
    """A configured vendor account, as an action or trigger sees it.

    ``config`` holds the decrypted settings (secrets included: never log them). ``http`` is
    the one client shared by every call on this connection. ``cache`` is in-memory state the
    plugin may keep per connection, such as an access token and its expiry.
    """

    id: str
    vendor: str
    config: JSON
    http: httpx.AsyncClient
    clock: Clock
    cache: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunContext:
    """Everything an action gets besides its input.

    ``idempotency_key`` is stable across retries and replays of the same step (run id + step
    id): pass it to the vendor or use it to look for an earlier result before acting.
    ``attempt`` is 1 on a step's first call; more after a retry, a process that died during
    the call, or a replay of the run: then an earlier attempt may have reached the vendor.
    ``state`` is what the action's previous ``Pending`` carried, or None on the first call.
    """

    run_id: str
    flow_id: str
    step_id: str
    attempt: int
    idempotency_key: str
    connection: Connection | None
    http: httpx.AsyncClient
    logger: logging.LoggerAdapter[logging.Logger]
    clock: Clock
    state: JSON | None = None
    started_at: datetime | None = None
    """When the step's first attempt started (for deadlines that span its retries)."""


@dataclass(frozen=True)
class Pending:
    """An action result meaning "not finished: call me again at ``check_at`` with ``state``".

    The worker is released meanwhile; the wait is stored, so it survives restarts.
    """

    check_at: datetime
    state: JSON


class RetrySafety(StrEnum):
    """How an action stays exactly-once when an attempt fails ambiguously: a timeout, a reset
    or a 5xx after the request was sent, or a process that died during the call. The vendor
    may have applied it, so the engine's next attempt must not apply it a second time."""

    IDEMPOTENT = "idempotent"
    """Running it twice has the effect of running it once (reads, sets, deletes)."""
    IDEMPOTENCY_KEY = "idempotency_key"
    """The vendor deduplicates by a key the action derives from ``ctx.idempotency_key``."""
    RECONCILE = "reconcile"
    """On a later attempt (``ctx.attempt > 1``) the action first looks the object up by a
    marker derived from ``ctx.idempotency_key`` (a name suffix, a custom field, an id it
    chose) and adopts it instead of creating another."""
    MANUAL = "manual"
    """The vendor offers no way to find out: after an ambiguous failure the run stops as
    ``needs_attention`` with what to check, instead of trying again."""


@dataclass(frozen=True)
class Action:
    """A command a flow step can run, such as ``keyvox.create_lock_pin``."""

    key: str
    title: str
    description: str
    input_schema: JSON
    output_schema: JSON
    sample: JSON
    run: Callable[[RunContext, JSON], Awaitable[JSON | Pending]]
    connection: str | None = None
    """Key of the vendor whose connection the step needs, or None."""
    retry_safety: RetrySafety | None = None
    """How a retry after an ambiguous failure avoids a second effect; an action that declares
    nothing is treated as ``MANUAL`` and fails the conformance check."""
    retry: RetryPolicy = RetryPolicy()
    connection_required: bool = True
    """False: the step uses a ``connection`` vendor's connection only when it names one."""
    credentials: tuple[str, ...] = ()
    """Output fields that are credentials (a PIN, a QR code's URL, a key code) as dotted paths
    (``pin``, ``key.code``; a path through a list applies to each item). They are sealed at
    rest and masked wherever the run is shown, and so is their value in later steps."""
    check_input: Callable[[JSON, str], list[ErrorDetail]] | None = None
    """More checks of a step's input when a flow is validated; gets the input and its JSON
    path, returns the problems (``ErrorDetail`` with a path under it)."""

    @property
    def idempotent(self) -> bool:
        return self.retry_safety is RetrySafety.IDEMPOTENT

    @property
    def safe_to_retry(self) -> bool:
        """Whether another attempt after an ambiguous failure cannot apply it twice."""
        return self.retry_safety not in (None, RetrySafety.MANUAL)


@dataclass(frozen=True)
class TriggerEvent:
    """One thing that happened at a vendor, for the flows listening on ``trigger``.

    ``id`` identifies the occurrence (a history entry id, a booking id plus its version):
    the same id delivered twice starts one run per flow.
    """

    trigger: str
    id: str
    data: JSON


@dataclass(frozen=True)
class UnmappedEvent:
    """A vendor event that no trigger stands for (a type unknown to the plugin, or mapped to
    none): stored as a dropped event with its raw type, so that "why did nothing run" has an
    answer."""

    vendor_type: str
    id: str
    data: JSON
    reason: str | None = None
    """Why no trigger stands for it, when it is not that its type is unmapped (a vendor's
    test delivery, a kind of event no trigger covers)."""


def map_event(
    connection: Connection, vendor_type: str, defaults: Mapping[str, str], id: str, data: JSON
) -> TriggerEvent | UnmappedEvent:
    """The event for a vendor event type, by the connection's ``eventTypes`` setting (vendor
    type → trigger key; an empty key maps it to none) over the plugin's ``defaults``."""
    trigger = {**defaults, **connection.config.get("eventTypes", {})}.get(vendor_type)
    if not trigger:
        return UnmappedEvent(vendor_type, id, data)
    return TriggerEvent(trigger, id, data)


def event_types_schema(defaults: Mapping[str, str], triggers: list[str]) -> JSON:
    """The ``eventTypes`` connection field: which trigger each vendor event type starts."""
    return {
        "type": "object",
        "description": (
            "Which trigger each vendor event type starts (vendor type → trigger; an empty"
            " value starts none). Types left out keep the default shown; an event of a type"
            " that starts no trigger is kept as a dropped event."
        ),
        "additionalProperties": {"enum": ["", *triggers]},
        "default": dict(defaults),
    }


@dataclass(frozen=True)
class PollResult:
    """What one poll found, and the cursor to start the next poll from."""

    events: list[TriggerEvent]
    cursor: JSON | None


def match_fields(config: JSON, data: JSON) -> bool:
    """Default trigger filter: every configured field that the event also has must be equal."""
    return all(data[k] == v for k, v in config.items() if k in data and v not in (None, ""))


@dataclass(frozen=True)
class Trigger:
    """An event a flow can start on, such as ``keyvox.booking_created``.

    ``input_schema`` describes the flow's trigger settings (which lock, which place);
    ``output_schema`` and ``sample`` describe the event the flow's steps see as ``trigger``.
    Events arrive through the vendor's webhook (``webhook=True``), through ``poll`` every
    ``poll_interval`` seconds, or both; ``matches`` decides whether an event concerns a flow.
    """

    key: str
    title: str
    description: str
    input_schema: JSON
    output_schema: JSON
    sample: JSON
    connection: str | None = None
    webhook: bool = False
    poll: Callable[[Connection, JSON, JSON | None], Awaitable[PollResult]] | None = None
    poll_interval: float = 60.0
    matches: Callable[[JSON, JSON], bool] = match_fields


@dataclass(frozen=True)
class WebhookRequest:
    """An HTTP request a vendor sent to ``/vendors/{vendor}/{connection_id}/{token}``."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Vendor:
    """A vendor API: how to connect to it, test it, receive its webhooks and simulate it.

    ``connection_schema`` marks secret fields ``writeOnly``. ``webhook`` turns a request the
    vendor sent into events (verifying its signature; raise WebhookError to refuse it), and
    returns an ``UnmappedEvent`` for each event no trigger stands for, never nothing.
    ``simulator`` builds an ASGI app that behaves like the vendor's API; ``sandbox`` prepares
    a running simulator (given its base URL and the URL of latchflow's webhook route for the
    connection) and returns the connection settings that talk to it. ``max_concurrency``
    bounds concurrent calls per connection in a node (its run processes share it out).
    """

    key: str
    title: str
    description: str
    connection_schema: JSON
    test_connection: Callable[[Connection], Awaitable[JSON]]
    webhook: (
        Callable[[WebhookRequest, Connection], Awaitable[list[TriggerEvent | UnmappedEvent]]] | None
    ) = None
    simulator: Callable[[], ASGIApp] | None = None
    sandbox: Callable[[str, str], Awaitable[JSON]] | None = None
    max_concurrency: int = 8
