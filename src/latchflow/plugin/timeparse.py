"""Moments as flows give them: ISO 8601 strings or unix seconds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from latchflow.plugin.errors import FatalError


def parse_moment(value: Any) -> datetime:
    """An aware UTC datetime from ISO 8601 (with a zone; none means UTC) or unix seconds.

    Raises FatalError naming the value when it is neither, or out of range.
    """
    try:
        moment = _moment(value)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (OverflowError, OSError, ValueError):
        raise FatalError(
            f"{value!r} is out of the supported date range (years 1 to 9999)"
        ) from None


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str):
        raise FatalError(f"expected a date-time or unix seconds, got {value!r}")
    if value.strip().lstrip("-").replace(".", "", 1).isdigit():
        return datetime.fromtimestamp(float(value), UTC)
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise FatalError(
            f"{value!r} is not an ISO 8601 date-time (e.g. 2026-03-01T15:00:00+01:00)"
            " or unix seconds"
        ) from None


def unix_seconds(value: Any) -> int:
    """Unix seconds of a moment given as ISO 8601 or unix seconds."""
    return int(parse_moment(value).timestamp())
