"""Reading request bodies the way KEYVOX does: numbers as strings or numbers, unix seconds."""

from __future__ import annotations

from typing import Any

from latchflow_keyvox import assumptions as A
from latchflow_keyvox.simulator.world import SimError

_MISSING = object()


def text(body: dict[str, Any], name: str, default: Any = _MISSING) -> str:
    value = body.get(name)
    if value is None or value == "":
        if default is _MISSING:
            raise SimError(A.E_PARAM, f"{name} is required")
        return str(default) if default is not None else ""
    if isinstance(value, dict | list | bool):
        raise SimError(A.E_PARAM, f"{name} must be a string")
    return str(value)


def maybe(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    return None if value is None or value == "" else text(body, name)


def unix(body: dict[str, Any], name: str, default: Any = _MISSING) -> int:
    raw = text(body, name, default)
    if not raw.isdigit():
        raise SimError(A.E_PARAM, f"{name} must be unix seconds, got {raw!r}")
    if int(raw) >= A.MILLISECONDS_FROM:
        raise SimError(A.E_PARAM, f"{name} must be unix seconds, got {raw} (milliseconds?)")
    return int(raw)


def number(body: dict[str, Any], name: str, default: int, least: int = 0) -> int:
    """A whole number sent as a string (or a number), at least ``least``."""
    raw = text(body, name, default)
    if not raw.isdigit() or int(raw) < least:
        raise SimError(A.E_PARAM, f"{name} must be a whole number of at least {least}, got {raw!r}")
    return int(raw)


def choice(body: dict[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    """One of ``allowed``, sent as a string."""
    value = text(body, name, default)
    if value not in allowed:
        raise SimError(A.E_PARAM, f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def maybe_unix(body: dict[str, Any], name: str) -> int | None:
    return None if maybe(body, name) is None else unix(body, name)


def page(items: list[Any], body: dict[str, Any], key: str) -> dict[str, Any]:
    """One page of ``items``: ``position`` is an opaque offset, ``""`` first and when done."""
    raw_pos = maybe(body, "position") or "0"
    raw_rec = maybe(body, "records") or str(A.DEFAULT_RECORDS)
    if not raw_pos.isdigit() or not raw_rec.isdigit() or int(raw_rec) < 1:
        raise SimError(A.E_PARAM, "position and records must be numbers as strings")
    start, size = int(raw_pos), min(int(raw_rec), A.MAX_RECORDS)
    chunk = items[start : start + size]
    nxt = start + size
    return {
        "position": str(nxt) if nxt < len(items) else "",
        "records": str(size),
        key: chunk,
    }
