"""JSON Schema building blocks and the action factory the LivionKey actions and triggers share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from latchflow import (
    JSON,
    Action,
    ConfigurationError,
    Connection,
    Pending,
    RetryPolicy,
    RetrySafety,
    RunContext,
    parse_moment,
)

VENDOR_V1 = "livionkey"
VENDOR_V2 = "livionkey_v2"

MOMENT: JSON = {
    "type": ["string", "number", "integer"],
    "description": "ISO 8601 date-time with time zone, or unix seconds",
}


def prop(kind: str | list[str], description: str, **extra: Any) -> JSON:
    return {"type": kind, "description": description, **extra}


def moment(description: str) -> JSON:
    return {**MOMENT, "description": f"{description} (ISO 8601 date-time or unix seconds)"}


def obj(
    properties: dict[str, JSON], required: list[str] | None = None, *, closed: bool = True
) -> JSON:
    schema: JSON = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if closed:
        schema["additionalProperties"] = False
    return schema


def open_obj(properties: dict[str, JSON] | None = None, required: list[str] | None = None) -> JSON:
    return obj(properties or {}, required, closed=False)


def list_of(name: str, item: JSON | None = None) -> JSON:
    return open_obj(
        {
            name: {"type": "array", "items": item or {"type": "object"}},
            "count": {"type": "integer"},
        },
        [name, "count"],
    )


def iso_z(value: Any) -> str:
    """A moment as LivionKey writes it: UTC, milliseconds, ``Z``."""
    when: datetime = parse_moment(value)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def connection_of(ctx: RunContext, vendor: str) -> Connection:
    connection = ctx.connection
    if connection is None or connection.vendor != vendor:
        raise ConfigurationError(
            f"this step needs a '{vendor}' connection", path=f"$.steps[{ctx.step_id}].connection"
        )
    return connection


CREDENTIALS = ("pincode", "pincodes", "keys.storageInfo.pincode", "contracts.pincode")
"""Output fields that let someone take a key or open a door: sealed and masked in history."""


Run = Callable[[RunContext, JSON], Awaitable[JSON | Pending]]


def action(
    connection: str,
    key: str,
    title: str,
    description: str,
    run: Run,
    input_schema: JSON,
    output_schema: JSON,
    sample: JSON,
    retry_safety: RetrySafety,
    retry: RetryPolicy | None = None,
) -> Action:
    """A ``livionkey.<key>`` action on a ``connection`` of that API version; without
    ``retry`` the engine's default schedule applies."""
    made = Action(
        key=f"livionkey.{key}",
        title=title,
        description=description,
        input_schema=input_schema,
        output_schema=output_schema,
        sample=sample,
        run=run,
        connection=connection,
        retry_safety=retry_safety,
        credentials=CREDENTIALS,
    )
    return made if retry is None else replace(made, retry=retry)
