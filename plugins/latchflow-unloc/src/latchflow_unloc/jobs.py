"""Following a Create Keys job across wake-ups without holding a worker."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from latchflow import ConfigurationError, FatalError, Pending, RunContext, parse_moment
from latchflow_unloc.assumptions import DEFAULT_MAX_WAIT_SECONDS, DEFAULT_POLL_INTERVAL_SECONDS
from latchflow_unloc.client import UnlocClient

STILL_RUNNING = ("pending", "inProgress")


def client_for(ctx: RunContext) -> UnlocClient:
    if ctx.connection is None:
        raise ConfigurationError("this step needs an Unloc connection", path="connection")
    return UnlocClient(ctx.connection)


def interval(input: dict[str, Any]) -> float:
    return float(input.get("pollInterval") or DEFAULT_POLL_INTERVAL_SECONDS)


def wait_state(ctx: RunContext, input: dict[str, Any], job_id: str) -> dict[str, Any]:
    """The state a ``Pending`` carries while a job runs: its id and when to give up."""
    max_wait = float(input.get("maxWait") or DEFAULT_MAX_WAIT_SECONDS)
    deadline = ctx.clock.now() + timedelta(seconds=max_wait)
    return {"job_id": job_id, "deadline": deadline.isoformat(), "max_wait": max_wait}


def later(
    ctx: RunContext, input: dict[str, Any], state: dict[str, Any], at: datetime | None = None
) -> Pending:
    soonest = ctx.clock.now() + timedelta(seconds=interval(input))
    return Pending(check_at=max(soonest, at) if at else soonest, state=state)


def failed_keys_text(job: dict[str, Any]) -> str:
    failed = (job.get("resultData") or {}).get("failedKeys") or []
    reasons = []
    for item in failed[:5]:
        if isinstance(item, dict):
            who = item.get("appUserId") or (item.get("appUser") or {}).get("id") or ""
            reasons.append(
                f"{who} on lock {item.get('lockId')}: {item.get('reason') or item.get('state') or 'failed'}"
            )
    return "; ".join(reasons)


async def check_job(
    ctx: RunContext, client: UnlocClient, state: dict[str, Any]
) -> dict[str, Any] | None:
    """The finished job, None while it still runs; FatalError if it failed or took too long."""
    job_id = str(state["job_id"])
    job = await client.get_job(job_id)
    status = job.get("status")
    if status in STILL_RUNNING:
        if ctx.clock.now() >= parse_moment(state["deadline"]):
            raise FatalError(
                f"Unloc job {job_id} is still {status} after {state.get('max_wait')} s; look it up"
                " with unloc.get_job, or raise the step's maxWait"
            )
        return None
    reason = job.get("failureReason")
    reason_text = f" ({reason})" if isinstance(reason, str) and reason else ""
    details = failed_keys_text(job)
    details_text = f": {details}" if details else ""
    if status == "succeeded":
        return job
    if status == "failedValidation":
        raise FatalError(
            f"Unloc rejected the key request (job {job_id} failedValidation){reason_text}{details_text}."
            " Check the lock id, the phone number and the start/end times; no key was created."
        )
    if status == "failedJob":
        raise FatalError(
            f"Unloc could not create the key in the lock vendor's system (job {job_id} failedJob)"
            f"{reason_text}{details_text}. The key is in state error and needs an administrator"
            " in Unloc Control Center; revoke it and try again once the lock system is reachable."
        )
    if status == "timeout":
        raise FatalError(
            f"Unloc's key job {job_id} timed out{reason_text}{details_text}. Look for the key with"
            " unloc.list_keys before creating it again."
        )
    raise FatalError(f"Unloc job {job_id} has an unknown status {status!r}")
