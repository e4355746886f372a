"""Markers that tie what a step made at Unloc to that step, derived from its idempotency key.

A v2 key carries its marker in its metadata; an integrators key, which has no metadata, in the
milliseconds of its start. A retried step looks for its marker before it creates anything, and
later checks that no second object carries it.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import datetime
from typing import Any

from latchflow import FatalError, RunContext, parse_moment
from latchflow_unloc.assumptions import (
    GONE_KEY_STATES,
    MARKER_METADATA_FIELD,
    START_MARKER_MILLISECONDS,
)
from latchflow_unloc.client import UnlocClient

BATCH_SEPARATOR = "#"


def key_marker(ctx: RunContext) -> str:
    """The metadata marker of the key ``unloc.create_key`` makes."""
    return ctx.idempotency_key


def batch_marker(ctx: RunContext, index: int) -> str:
    """The metadata marker of key number ``index`` of an ``unloc.create_keys`` batch."""
    return f"{ctx.idempotency_key}{BATCH_SEPARATOR}{index}"


def marker_of(key: dict[str, Any]) -> str | None:
    value = (key.get("metadata") or {}).get(MARKER_METADATA_FIELD)
    return str(value) if value is not None else None


def oldest_first(keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(keys, key=lambda k: (str(k.get("created") or ""), str(k.get("id"))))


async def keys_marked(
    client: UnlocClient, lock_id: str, app_user_id: str, marker: str
) -> list[dict[str, Any]]:
    """The keys of the lock and user that carry ``marker`` and are not revoked or expired,
    oldest first."""
    keys = await client.all_keys(lock_id=lock_id, app_user_id=app_user_id)
    return oldest_first(
        [k for k in keys if marker_of(k) == marker and k.get("state") not in GONE_KEY_STATES]
    )


async def batch_keys_marked(
    ctx: RunContext, client: UnlocClient, lock_ids: set[str]
) -> dict[int, list[dict[str, Any]]]:
    """The keys of the step's batch that are not revoked or expired, by their index in the
    batch, oldest first."""
    prefix = f"{ctx.idempotency_key}{BATCH_SEPARATOR}"
    groups: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for lock_id in sorted(lock_ids):
        for key in await client.all_keys(lock_id=lock_id):
            marker = marker_of(key) or ""
            suffix = marker[len(prefix) :]
            live = key.get("state") not in GONE_KEY_STATES
            if marker.startswith(prefix) and suffix.isdigit() and live:
                groups[int(suffix)].append(key)
    return {index: oldest_first(keys) for index, keys in groups.items()}


def marked_start(ctx: RunContext, start: datetime) -> datetime:
    """``start`` to the second, with milliseconds that mark the step (integrators keys)."""
    digest = hashlib.sha256(ctx.idempotency_key.encode()).digest()
    millis = int.from_bytes(digest[:4], "big") % START_MARKER_MILLISECONDS
    return start.replace(microsecond=millis * 1000)


def starts_at(key: dict[str, Any], moment: datetime) -> bool:
    """Whether the key's start is exactly ``moment`` (to the millisecond)."""
    try:
        return bool(key.get("start")) and parse_moment(key["start"]) == moment
    except FatalError:  # an unreadable start is not one this step chose
        return False
