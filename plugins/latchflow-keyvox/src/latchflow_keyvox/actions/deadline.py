"""Remote openings that happen in time or not at all.

Someone asks for a door or a box to open now; opening it minutes later, after retries,
opens it for whoever stands there then. An opening step has a deadline (``deadlineSeconds``
from its first attempt, ``ctx.started_at``, which spans its retries): past it the step fails
as "not opened in time" without calling KEYVOX, and its retries are short enough to fit in
the default deadline.
"""

from __future__ import annotations

from latchflow import (
    JSON,
    Action,
    FatalError,
    RateLimitedError,
    RetryableError,
    RetryPolicy,
    RetrySafety,
    RunContext,
)
from latchflow_keyvox.actions.base import (
    CREDENTIALS,
    VENDOR,
    F,
    Shape,
    body_from,
    client,
    input_schema,
)

DEFAULT_DEADLINE_SECONDS = 30
DEADLINE = F(
    "deadlineSeconds",
    "Open only within this many seconds of the step's first attempt; later the step fails as"
    " not opened in time instead of opening",
    {"type": "integer", "minimum": 1, "maximum": 3600, "default": DEFAULT_DEADLINE_SECONDS},
)
OPEN_RETRY = RetryPolicy(max_attempts=5, initial_delay=2.0, multiplier=2.0, max_delay=8.0)
"""Short waits between attempts: all of them fall inside the default deadline."""


def opening(
    key: str,
    function: str,
    title: str,
    description: str,
    fields: list[F],
    output_schema: JSON,
    sample: JSON,
    shape: Shape,
    *,
    fixed: JSON | None = None,
) -> Action:
    """An action that opens something with ``function`` before its deadline, or fails."""

    async def run(ctx: RunContext, data: JSON) -> JSON:
        deadline = int(data.get("deadlineSeconds", DEFAULT_DEADLINE_SECONDS))
        now = ctx.clock.now()
        elapsed = (now - (ctx.started_at or now)).total_seconds()
        if elapsed > deadline:
            raise FatalError(
                f"{VENDOR}.{key}: not opened in time: it was asked for {elapsed:.0f} s ago and"
                f" deadlineSeconds is {deadline}; it was not opened. Ask for it again if it is"
                " still wanted"
            )
        api = client(ctx, key)
        left = deadline - elapsed
        body = {**body_from(fields, data), **(fixed or {})}
        try:
            answer = await api.call(function, body, within=min(api.timeout, left))
        except RetryableError as exc:
            if isinstance(exc, RateLimitedError) or (exc.retry_after or 0) <= left:
                raise
            # a lock that is offline: try again within the deadline, not when KEYVOX suggests
            raise RetryableError(
                str(exc), maybe_applied=exc.maybe_applied, status=exc.status
            ) from exc
        return shape(answer, data)

    return Action(
        key=f"{VENDOR}.{key}",
        title=title,
        description=description,
        input_schema=input_schema([*fields, DEADLINE]),
        output_schema=output_schema,
        sample=sample,
        run=run,
        connection=VENDOR,
        credentials=CREDENTIALS,
        retry_safety=RetrySafety.IDEMPOTENT,
        retry=OPEN_RETRY,
    )
