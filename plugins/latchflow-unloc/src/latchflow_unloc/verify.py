"""The later check for copies that Unloc applied late.

A request answered 504 may still be carried out after its retry looked for it and made another.
So after a create that needed a retry (attempt > 1) and made a new object, the step waits
``verifyDelay`` seconds, then looks for every object carrying its marker and revokes all but the
one it returned, or, where Unloc cannot delete that kind of object, fails naming the others.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from latchflow import RunContext, parse_moment
from latchflow_unloc.assumptions import DEFAULT_VERIFY_DELAY_SECONDS
from latchflow_unloc.client import UnlocClient

VERIFY_FIELDS: dict[str, Any] = {
    "verifyDelay": {
        "type": "number",
        "minimum": 0,
        "maximum": 86400,
        "default": DEFAULT_VERIFY_DELAY_SECONDS,
        "description": (
            "Seconds after a create that needed a retry (its first answer was lost) to look"
            " for a copy Unloc carried out late, and remove it."
        ),
    }
}


def verify_at(ctx: RunContext, input: dict[str, Any]) -> str | None:
    """When a create made by this attempt is checked for late copies: only after a retry."""
    if ctx.attempt <= 1:
        return None
    delay = float(input.get("verifyDelay", DEFAULT_VERIFY_DELAY_SECONDS))
    return (ctx.clock.now() + timedelta(seconds=delay)).isoformat()


def verify_due(ctx: RunContext, state: dict[str, Any]) -> bool:
    return bool(state.get("verify_at")) and ctx.clock.now() >= parse_moment(state["verify_at"])


async def revoke_copies(
    client: UnlocClient, keep: set[str], keys: list[dict[str, Any]]
) -> list[str]:
    """Revoke every key of ``keys`` not in ``keep``; the ids revoked (gone ones are skipped)."""
    return [
        str(key["id"])
        for key in keys
        if key["id"] not in keep and await client.revoke_if_present(str(key["id"]))
    ]
