"""Following a Create Keys job, and a new key's state, across wake-ups without a worker."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from latchflow import FatalError, Pending, RunContext, parse_moment
from latchflow_unloc.assumptions import (
    DEFAULT_MAX_WAIT_SECONDS,
    DEFAULT_POLL_INTERVAL_SECONDS,
    JOB_FAILED_STATUSES,
)
from latchflow_unloc.client import UnlocClient


def interval(input: dict[str, Any]) -> float:
    return float(input.get("pollInterval") or DEFAULT_POLL_INTERVAL_SECONDS)


def wait_state(ctx: RunContext, input: dict[str, Any]) -> dict[str, Any]:
    """The start of the state a ``Pending`` carries: when to give up waiting."""
    max_wait = float(input.get("maxWait") or DEFAULT_MAX_WAIT_SECONDS)
    deadline = ctx.clock.now() + timedelta(seconds=max_wait)
    return {"deadline": deadline.isoformat(), "max_wait": max_wait}


def later(
    ctx: RunContext, input: dict[str, Any], state: dict[str, Any], at: datetime | None = None
) -> Pending:
    """Call again after the poll interval, or at ``at`` if that is later."""
    soonest = ctx.clock.now() + timedelta(seconds=interval(input))
    return Pending(check_at=max(soonest, at) if at else soonest, state=state)


def give_up_if_late(ctx: RunContext, state: dict[str, Any], waiting_for: str) -> None:
    """FatalError once the step has waited longer than its ``maxWait``."""
    if ctx.clock.now() >= parse_moment(state["deadline"]):
        raise FatalError(
            f"{waiting_for} after {state.get('max_wait')} s; look it up with unloc.get_job or"
            " unloc.list_keys, or raise the step's maxWait"
        )


def failed_keys_text(job: dict[str, Any]) -> str:
    failed = (job.get("resultData") or {}).get("failedKeys") or []
    reasons = []
    for item in failed[:5]:
        if isinstance(item, dict):
            who = item.get("appUserId") or (item.get("appUser") or {}).get("id") or ""
            why = item.get("reason") or item.get("state") or "failed"
            reasons.append(f"{who} on lock {item.get('lockId')}: {why}")
    return "; ".join(reasons)


async def check_job(
    ctx: RunContext, client: UnlocClient, state: dict[str, Any]
) -> dict[str, Any] | None:
    """The finished job, None while it still runs; FatalError if it failed or took too long."""
    job_id = str(state["job_id"])
    job = await client.get_job(job_id)
    status = job.get("status")
    where = f"{client.action}: Unloc job {job_id}"
    if status in ("pending", "inProgress"):
        give_up_if_late(ctx, state, f"{where} is still {status}")
        return None
    if status == "succeeded":
        return job
    reason = job.get("failureReason")
    reason_text = f" ({reason})" if isinstance(reason, str) and reason else ""
    details = failed_keys_text(job)
    details_text = f": {details}" if details else ""
    said = f"{status}{reason_text}{details_text}"
    if status not in JOB_FAILED_STATUSES:
        raise FatalError(f"{where} has an unknown status {status!r}")
    if status == "failedValidation":
        raise FatalError(
            f"{where} rejected the keys ({said}). Check the lock id, the phone number and the"
            " start/end times; no key was created."
        )
    if status == "failedJob":
        raise FatalError(
            f"{where} could not create the key in the lock vendor's system ({said}). The key is"
            " in state error and needs an administrator in Unloc Control Center; revoke it and"
            " try again once the lock system is reachable."
        )
    raise FatalError(
        f"{where} timed out ({said}). Look for the key with unloc.list_keys before creating it"
        " again."
    )
