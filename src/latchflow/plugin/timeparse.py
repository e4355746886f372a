"""Moments as flows give them: ISO 8601 strings or unix seconds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from latchflow.plugin.errors import FatalError


def parse_moment(value: Any) -> datetime:
    """An aware UTC datetime from ISO 8601 (with a zone; none means UTC) or unix seconds.

    Raises FatalError naming the value when it is neither.
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, bool):
        raise FatalError(f"expected a date-time or unix seconds, got {value!r}")
    elif isinstance(value, int | float):
        moment = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, str) and value.strip().lstrip("-").replace(".", "", 1).isdigit():
        moment = datetime.fromtimestamp(float(value), UTC)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise FatalError(
                f"{value!r} is not an ISO 8601 date-time (e.g. 2026-03-01T15:00:00+01:00)"
                " or unix seconds"
            ) from None
    else:
        raise FatalError(f"expected a date-time or unix seconds, got {value!r}")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def unix_seconds(value: Any) -> int:
    """Unix seconds of a moment given as ISO 8601 or unix seconds."""
    return int(parse_moment(value).timestamp())
