"""Built-in actions, registered through the same hook as any plugin's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from latchflow import (
    JSON,
    Action,
    FatalError,
    Pending,
    RetrySafety,
    RunContext,
    RunFiltered,
    hookimpl,
    parse_moment,
)
from latchflow.builtin.http_request import http_request


async def set_values(ctx: RunContext, data: JSON) -> JSON:
    return dict(data["values"])


async def filter_run(ctx: RunContext, data: JSON) -> JSON:
    if not data["condition"]:
        raise RunFiltered(data.get("reason") or "the filter condition was false")
    return {"passed": True}


async def delay(ctx: RunContext, data: JSON) -> JSON | Pending:
    """Wait durably: the first call computes the moment, later calls check whether it came."""
    if ctx.state is not None:
        until = parse_moment(ctx.state["until"])
    elif data.get("until") is not None:
        until = parse_moment(data["until"])
    elif data.get("seconds") is not None:
        until = ctx.clock.now() + timedelta(seconds=float(data["seconds"]))
    else:
        raise FatalError("$.input: give 'until' (ISO 8601 or unix seconds) or 'seconds'")
    if ctx.clock.now() >= until:
        return {"waited_until": until.isoformat()}
    return Pending(check_at=until, state={"until": until.isoformat()})


MOMENT = {
    "description": "ISO 8601 date-time with time zone, or unix seconds",
    "type": ["string", "number", "integer"],
}

ACTIONS = [
    Action(
        key="core.set",
        title="Set values",
        description="Compute named values from the trigger and earlier steps for later steps to use.",
        input_schema={
            "type": "object",
            "required": ["values"],
            "properties": {
                "values": {"type": "object", "description": "Names and their (computed) values"}
            },
            "additionalProperties": False,
        },
        output_schema={"type": "object"},
        sample={"guest": "Ada Lovelace", "pin": "482913"},
        run=set_values,
        retry_safety=RetrySafety.IDEMPOTENT,
    ),
    Action(
        key="core.filter",
        title="Only continue if",
        description="End the run as 'filtered' (not failed) unless the condition is true.",
        input_schema={
            "type": "object",
            "required": ["condition"],
            "properties": {
                "condition": {"type": "boolean", "description": "Continue only when true"},
                "reason": {"type": "string", "description": "Shown on the run when filtered"},
            },
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {"passed": {"type": "boolean"}},
            "required": ["passed"],
        },
        sample={"passed": True},
        run=filter_run,
        retry_safety=RetrySafety.IDEMPOTENT,
    ),
    Action(
        key="core.delay",
        title="Delay",
        description="Wait until a moment or for a number of seconds; the wait survives restarts.",
        input_schema={
            "type": "object",
            "properties": {
                "until": MOMENT,
                "seconds": {"type": "number", "minimum": 0, "description": "Seconds to wait"},
            },
            "oneOf": [{"required": ["until"]}, {"required": ["seconds"]}],
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {"waited_until": {"type": "string", "format": "date-time"}},
            "required": ["waited_until"],
        },
        sample={"waited_until": "2026-03-01T10:00:00+00:00"},
        run=delay,
        retry_safety=RetrySafety.IDEMPOTENT,
    ),
    http_request,
]


@hookimpl
def register_actions(register: Callable[[Action], None]) -> None:
    for action in ACTIONS:
        register(action)
