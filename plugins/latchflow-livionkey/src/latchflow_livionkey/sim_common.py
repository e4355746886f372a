"""Small helpers both LivionKey simulators share."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from fastapi import Request


def object_id() -> str:
    """A 24-hex object id like Livion's (V1 §8 "Generated id format")."""
    return secrets.token_hex(12)


def iso(moment: datetime | None) -> str | None:
    """UTC ISO 8601 with milliseconds and Z, as LivionKey writes times."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 date-time with a time zone (Z or offset) as an aware datetime; None when
    absent, invalid or without a zone (LivionKey cannot know which zone a naive time is in)."""
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def is_pincode(value: Any, digits: int) -> bool:
    """Whether ``value`` is a pincode of exactly ``digits`` digits, as a string."""
    return isinstance(value, str) and len(value) == digits and value.isascii() and value.isdigit()


def pincode(used: set[str], digits: int) -> str:
    """A random pincode of ``digits`` digits not in ``used``."""
    while True:
        code = "".join(secrets.choice("0123456789") for _ in range(digits))
        if code not in used and code[0] != "0":
            return code


async def json_body(request: Request) -> Any:
    """The request's JSON body, or None when it is empty or not JSON."""
    raw = await request.body()
    if not raw:
        return None
    try:
        return await request.json()
    except ValueError:
        return None


def overlaps(
    start_a: datetime, end_a: datetime | None, start_b: datetime, end_b: datetime | None
) -> bool:
    """Whether [start_a, end_a) and [start_b, end_b) share a moment (None = open-ended)."""
    a_before_b_ends = end_b is None or start_a < end_b
    b_before_a_ends = end_a is None or start_b < end_a
    return a_before_b_ends and b_before_a_ends
