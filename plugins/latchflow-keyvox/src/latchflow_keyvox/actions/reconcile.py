"""Creates that make one object however often their step is tried (``RetrySafety.RECONCILE``).

KEYVOX has no idempotency key. A create sends a name carrying its step's marker
(``markers.py``) and looks for an object with that name before creating one: a step whose
earlier attempt KEYVOX applied (the answer was lost), or a replayed step, adopts it. A create
that needed a retry and still made a new object checks back ``verifyAfterSeconds`` later,
because KEYVOX may apply the earlier attempt late; it then revokes every object with its
marker but the one it returned, and lists them in ``duplicatesRemoved``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from latchflow import JSON, FatalError, Pending, RunContext
from latchflow_keyvox.actions.base import F
from latchflow_keyvox.answers import Refused
from latchflow_keyvox.client import KeyvoxClient

DEFAULT_VERIFY_AFTER_SECONDS = 120
VERIFY_AFTER = F(
    "verifyAfterSeconds",
    "When this step needed a retry: how long after it to check that KEYVOX did not also apply"
    " an earlier attempt late (a second object is then revoked)",
    {"type": "integer", "minimum": 0, "maximum": 86400, "default": DEFAULT_VERIFY_AFTER_SECONDS},
)
MADE_OUTPUT: JSON = {
    "reused": {
        "type": "boolean",
        "description": "true when an earlier attempt of this step had made it",
    },
    "duplicatesRemoved": {
        "type": "array",
        "items": {"type": "string"},
        "description": "Ids of objects an earlier attempt made late, revoked by this step",
    },
}


@dataclass(frozen=True)
class Kind:
    """How to make, find and revoke one kind of KEYVOX object."""

    noun: str
    id_field: str
    create: Callable[[KeyvoxClient, JSON], Awaitable[JSON]]
    find: Callable[[KeyvoxClient, JSON], Awaitable[list[JSON]]]
    """The objects that carry the marked name of a create ``body``."""
    revoke: Callable[[KeyvoxClient, JSON], Awaitable[None]]


@dataclass(frozen=True)
class Made:
    """The object a create step stands for, and how it came to be."""

    object: JSON
    reused: bool
    duplicates_removed: list[str] = field(default_factory=list)

    def output(self, extra: JSON) -> JSON:
        return {
            **self.object,
            **extra,
            "reused": self.reused,
            "duplicatesRemoved": self.duplicates_removed,
        }


async def create_once(
    ctx: RunContext, api: KeyvoxClient, kind: Kind, body: JSON, verify_after: int
) -> Made | Pending:
    """Create with ``body`` (whose name carries the step's marker) unless it exists."""
    if ctx.state is not None:
        return await _verify(api, kind, body, str(ctx.state["made"]))
    found = await kind.find(api, body)
    if found:
        ctx.logger.info("KEYVOX %s %s was made by this step before", kind.noun, _id(kind, found[0]))
        return Made(found[0], reused=True)
    try:
        made = await kind.create(api, body)
    except Refused:
        # an earlier attempt applied late may hold the place (a box, a room) this one asks for
        found = await kind.find(api, body) if ctx.attempt > 1 else []
        if not found:
            raise
        return Made(found[0], reused=True)
    if ctx.attempt == 1:
        return Made(made, reused=False)
    check_at = ctx.clock.now() + timedelta(seconds=verify_after)
    return Pending(check_at=check_at, state={"made": _id(kind, made)})


async def _verify(api: KeyvoxClient, kind: Kind, body: JSON, made_id: str) -> Made:
    """Keep the object this step returned and revoke any other with its marker."""
    found = await kind.find(api, body)
    keep = next((o for o in found if _id(kind, o) == made_id), None)
    if keep is None:
        raise FatalError(
            f"{api.what}: the {kind.noun} {made_id} this step made is no longer active at"
            " KEYVOX (revoked since?); check it in the KEYVOX console"
        )
    removed: list[str] = []
    for extra in found:
        if extra is keep:
            continue
        try:
            await kind.revoke(api, extra)
        except Refused as exc:
            raise FatalError(
                f"{api.what}: KEYVOX applied an earlier attempt of this step late and made a"
                f" second {kind.noun} {_id(kind, extra)}; revoking it failed ({exc}). Revoke it"
                " in the KEYVOX console"
            ) from exc
        removed.append(_id(kind, extra))
    return Made(keep, reused=False, duplicates_removed=removed)


def _id(kind: Kind, obj: JSON) -> str:
    return str(obj.get(kind.id_field, ""))
