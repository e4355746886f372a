"""A throwaway plugin for server tests: a vendor with webhooks and polling, and counting actions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from latchflow import (
    Action,
    ConfigurationError,
    Connection,
    PollResult,
    RateLimitedError,
    RetryableError,
    RunContext,
    Trigger,
    TriggerEvent,
    Vendor,
    WebhookError,
    WebhookRequest,
    hookimpl,
)

EFFECTS: Counter[str] = Counter()
"""Calls of test.count by idempotency key (reset by each test)."""
FLAKY: Counter[str] = Counter()
FEED: list[dict[str, Any]] = []
"""What the acme 'API' reports to polls, oldest first."""
POLL_LIMITS: list[float] = []
"""Each poll takes the first of these, if any, and answers 429 with it as Retry-After."""


async def test_connection(connection: Connection) -> dict[str, Any]:
    if connection.config.get("api_key") == "bad":
        raise ConfigurationError("the API key was refused", path="$.config.api_key")
    return {"account": "acme demo"}


async def webhook(request: WebhookRequest, connection: Connection) -> list[TriggerEvent]:
    if request.headers.get("x-acme-token") != connection.config["api_key"]:
        raise WebhookError("x-acme-token does not match the connection's API key", status_code=401)
    body = request.json()
    return [TriggerEvent(trigger="acme.door_opened", id=str(body["id"]), data=body)]


async def poll(connection: Connection, config: dict[str, Any], cursor: Any) -> PollResult:
    if POLL_LIMITS:
        raise RateLimitedError("acme answered 429", retry_after=POLL_LIMITS.pop(0))
    if cursor is None:  # the first poll only establishes where to start
        return PollResult(events=[], cursor={"seen": len(FEED)})
    new = FEED[cursor["seen"] :]
    events = [TriggerEvent(trigger="acme.door_opened", id=str(e["id"]), data=e) for e in new]
    return PollResult(events=events, cursor={"seen": len(FEED)})


async def count(ctx: RunContext, data: dict[str, Any]) -> dict[str, Any]:
    EFFECTS[ctx.idempotency_key] += 1
    return {"count": EFFECTS[ctx.idempotency_key]}


async def flaky(ctx: RunContext, data: dict[str, Any]) -> dict[str, Any]:
    FLAKY[ctx.idempotency_key] += 1
    if FLAKY[ctx.idempotency_key] <= data.get("failures", 1):
        raise RetryableError("acme answered 429", retry_after=30)
    return {"count": FLAKY[ctx.idempotency_key]}


ACME = Vendor(
    key="acme",
    title="Acme doors",
    description="A fake door vendor for tests",
    connection_schema={
        "type": "object",
        "required": ["api_key"],
        "properties": {
            "api_key": {"type": "string", "writeOnly": True, "description": "API key"},
            "site": {"type": "string", "description": "Site name"},
        },
    },
    test_connection=test_connection,
    webhook=webhook,
)

DOOR_OPENED = Trigger(
    key="acme.door_opened",
    title="Door opened",
    description="A door was opened",
    input_schema={
        "type": "object",
        "properties": {"door": {"type": "string", "description": "Only this door"}},
    },
    output_schema={"type": "object", "properties": {"id": {}, "door": {"type": "string"}}},
    sample={"id": "e1", "door": "front"},
    connection="acme",
    webhook=True,
    poll=poll,
    poll_interval=30,
)

OUT = {"type": "object", "properties": {"count": {"type": "integer"}}, "required": ["count"]}
ACTIONS = [
    Action(
        key="test.count",
        title="Count",
        description="Counts its calls by idempotency key",
        input_schema={"type": "object"},
        output_schema=OUT,
        sample={"count": 1},
        run=count,
    ),
    Action(
        key="test.flaky",
        title="Flaky",
        description="Fails with a retryable 429 (retry after 30 s) the first times",
        input_schema={
            "type": "object",
            "properties": {"failures": {"type": "integer", "description": "How many"}},
        },
        output_schema=OUT,
        sample={"count": 2},
        run=flaky,
    ),
]


@hookimpl
def register_vendors(register: Callable[[Vendor], None]) -> None:
    register(ACME)


@hookimpl
def register_triggers(register: Callable[[Trigger], None]) -> None:
    register(DOOR_OPENED)


@hookimpl
def register_actions(register: Callable[[Action], None]) -> None:
    for action in ACTIONS:
        register(action)
