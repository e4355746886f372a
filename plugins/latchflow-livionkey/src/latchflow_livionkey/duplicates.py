"""Late-applied duplicates: after a create that needed a retry, look again a while later.

A call whose answer was lost may be applied by LivionKey after the retry looked for it and made
another object. So a create that made its object on a retry returns ``Pending``; when it is
called again ``verifyAfterSeconds`` later it lists the objects carrying its marker and deletes
every one but its own, or fails naming the one it could not delete.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from latchflow import JSON, FatalError, Pending, RunContext
from latchflow_livionkey.schemas import prop

DEFAULT_VERIFY_SECONDS = 120.0
VERIFY_INPUT = prop(
    "number",
    "After a create that needed a retry, look this many seconds later for a copy LivionKey applied late, and delete it (the step finishes then)",
    minimum=0,
    maximum=86400,
    default=DEFAULT_VERIFY_SECONDS,
)
REMOVED_OUTPUT: JSON = {
    "type": "array",
    "items": {"type": "string"},
    "description": "Ids of late-applied copies this step deleted (only after a retry)",
}


def verify_later(ctx: RunContext, data: JSON, own_id: str) -> Pending:
    """Come back after ``verifyAfterSeconds`` to look for copies of ``own_id``."""
    delay = float(data.get("verifyAfterSeconds", DEFAULT_VERIFY_SECONDS))
    return Pending(check_at=ctx.clock.now() + timedelta(seconds=delay), state={"verify": own_id})


def verifying(ctx: RunContext) -> str | None:
    """The id of the object this step made, when this call is the later look for copies."""
    own = (ctx.state or {}).get("verify")
    return None if own is None else str(own)


async def remove_copies(
    own_id: str, found: list[str], delete: Callable[[str], Awaitable[object]], what: str
) -> list[str]:
    """Delete every object in ``found`` but ``own_id``; returns the ids deleted."""
    copies = [other for other in found if other != own_id]
    for other in copies:
        try:
            await delete(other)
        except FatalError as exc:
            raise FatalError(
                f"{what} {other} is a second copy of {own_id} (LivionKey applied a call whose"
                f" answer was lost after the retry made {own_id}) and could not be deleted"
                f" ({exc}): delete {other} by hand"
            ) from exc
    return copies
