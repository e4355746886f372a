"""A deadline for commands that open a locker: a locker must not open minutes after it was asked.

The deadline counts from the step's first attempt (``ctx.started_at``) across its retries. Each
call waits at most for the time left, and a failure is retried only while a retry can still
come in time; after that the step fails as "locker not opened in time".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from latchflow import JSON, FatalError, RetryableError, RetryPolicy, RunContext
from latchflow_livionkey.schemas import prop

T = TypeVar("T")

DEFAULT_DEADLINE_SECONDS = 30.0
DEADLINE_INPUT = prop(
    "number",
    "Give up when the locker has not opened this many seconds after the step started (retries included)",
    minimum=1,
    maximum=300,
    default=DEFAULT_DEADLINE_SECONDS,
)
RETRY_WITHIN_DEADLINE = RetryPolicy(
    max_attempts=100, initial_delay=1.0, multiplier=1.5, max_delay=5.0
)
"""Short waits between attempts; the deadline, not the attempt count, ends the retries."""


def seconds_left(ctx: RunContext, deadline: float) -> float:
    started = ctx.started_at or ctx.clock.now()
    return deadline - (ctx.clock.now() - started).total_seconds()


async def open_in_time(
    ctx: RunContext, data: JSON, what: str, call: Callable[[float], Awaitable[T]]
) -> T:
    """``call(seconds left)`` while the step's deadline has not passed."""
    deadline = float(data.get("deadlineSeconds") or DEFAULT_DEADLINE_SECONDS)
    late = (
        f"locker not opened in time: {what} was asked to open {deadline:g} s ago"
        " (deadlineSeconds) and is not opened any later"
    )
    left = seconds_left(ctx, deadline)
    if left <= 0:
        raise FatalError(late)
    try:
        return await call(left)
    except RetryableError as exc:
        if seconds_left(ctx, deadline) <= (exc.retry_after or 0):
            raise FatalError(f"{late}; last answer: {exc}") from exc
        raise
