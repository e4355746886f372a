"""Building actions from a declaration: input fields, vendor function, output shape.

Most KEYVOX operations are "rename a few fields, turn times into unix-second strings, call
one function, wrap ``data``"; ``operation`` builds such an Action. Time fields accept ISO
8601 or unix seconds; numbers and booleans are sent as strings, as KEYVOX samples do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from latchflow import JSON, Action, RetrySafety, RunContext, unix_seconds
from latchflow_keyvox.client import KeyvoxClient

CREDENTIALS = (
    "pinCode",
    "qrCode",
    "shortQrUrl",
    "pins.pinCode",
    "pins.qrCode",
    "pins.shortQrUrl",
)
"""Output fields that open a door or a box: sealed at rest and masked in run history."""

VENDOR = "keyvox"
Shape = Callable[[Any, JSON], JSON]


@dataclass(frozen=True)
class F:
    """One input field: its schema, the vendor's name for it, and how to send it."""

    name: str
    description: str
    schema: JSON
    vendor: str = ""
    required: bool = False
    time: bool = False


def s(name: str, description: str, vendor: str = "", required: bool = False, **extra: Any) -> F:
    return F(name, description, {"type": "string", **extra}, vendor, required)


def t(name: str, description: str, vendor: str = "", required: bool = False) -> F:
    schema = {"type": ["string", "integer"], "examples": ["2026-04-01T15:00:00+09:00", 1775023200]}
    return F(name, description + " (ISO 8601 or unix seconds)", schema, vendor, required, True)


def input_schema(fields: list[F]) -> JSON:
    return {
        "type": "object",
        "required": [f.name for f in fields if f.required],
        "properties": {f.name: {**f.schema, "description": f.description} for f in fields},
        "additionalProperties": False,
    }


def vendor_value(value: Any, is_time: bool) -> Any:
    if is_time:
        return str(unix_seconds(value))
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return str(int(value)) if float(value).is_integer() else str(value)
    return value


def body_from(fields: list[F], data: JSON) -> JSON:
    """The vendor request body for validated input ``data``."""
    return {
        f.vendor or f.name: vendor_value(data[f.name], f.time)
        for f in fields
        if data.get(f.name) is not None and data.get(f.name) != ""
    }


def client(ctx: RunContext, key: str) -> KeyvoxClient:
    """The client for action ``key`` (``keyvox.<key>``, named in its errors)."""
    assert ctx.connection is not None, "KEYVOX actions need a connection"
    return KeyvoxClient(ctx.connection, f"{VENDOR}.{key}")


# output shapes ----------------------------------------------------------------------------
def merged(data: Any, data_in: JSON) -> JSON:
    return dict(data) if isinstance(data, dict) else {}


def done(*echo: str) -> Shape:
    """For calls whose answer is just success: ``{"ok": true}`` plus the ids acted on."""

    def shape(data: Any, data_in: JSON) -> JSON:
        return {"ok": True, **{k: data_in[k] for k in echo if k in data_in}}

    return shape


def listed(key: str) -> Shape:
    def shape(data: Any, data_in: JSON) -> JSON:
        items = list(data or [])
        return {key: items, "count": len(items)}

    return shape


def obj(properties: JSON, required: list[str] | None = None) -> JSON:
    return {"type": "object", "required": required or [], "properties": properties}


def list_output(key: str, item: JSON) -> JSON:
    return obj(
        {"count": {"type": "integer"}, key: {"type": "array", "items": item}}, [key, "count"]
    )


OK_OUTPUT = obj({"ok": {"const": True}}, ["ok"])


def operation(
    key: str,
    function: str,
    title: str,
    description: str,
    fields: list[F],
    output_schema: JSON,
    sample: JSON,
    shape: Shape = merged,
    *,
    retry_safety: RetrySafety,
    fixed: JSON | None = None,
    credentials: tuple[str, ...] = CREDENTIALS,
) -> Action:
    """An action that calls ``function`` once with the input's fields (and ``fixed`` ones)."""

    async def run(ctx: RunContext, data: JSON) -> JSON:
        body = {**body_from(fields, data), **(fixed or {})}
        return shape(await client(ctx, key).call(function, body), data)

    return Action(
        key=f"{VENDOR}.{key}",
        title=title,
        description=description,
        input_schema=input_schema(fields),
        output_schema=output_schema,
        sample=sample,
        run=run,
        connection=VENDOR,
        credentials=credentials,
        retry_safety=retry_safety,
    )


LIMIT = F(
    "limit",
    "Stop after this many items (pages are fetched with position/records until then)",
    {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100},
)


def paginated(
    key: str,
    function: str,
    title: str,
    description: str,
    fields: list[F],
    list_key: str,
    out_key: str,
    item_schema: JSON,
    sample: JSON,
) -> Action:
    """A read that walks KEYVOX's ``position`` cursor and returns up to ``limit`` items."""

    async def run(ctx: RunContext, data: JSON) -> JSON:
        limit = int(data.get("limit") or 100)
        items: list[Any] = []
        async for item in client(ctx, key).pages(function, body_from(fields, data), list_key):
            items.append(item)
            if len(items) >= limit:
                break
        return {out_key: items, "count": len(items)}

    return Action(
        key=f"{VENDOR}.{key}",
        title=title,
        description=description,
        input_schema=input_schema([*fields, LIMIT]),
        output_schema=list_output(out_key, item_schema),
        sample=sample,
        run=run,
        connection=VENDOR,
        credentials=CREDENTIALS,
        retry_safety=RetrySafety.IDEMPOTENT,
    )
