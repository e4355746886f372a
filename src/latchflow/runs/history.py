"""Run history as users see it (secrets redacted), and replay and cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import col, delete, select

from latchflow.plugin.errors import ValidationError
from latchflow.plugin.types import JSON
from latchflow.runs.executor import ACTIVE
from latchflow.storage.models import EventRecord, RunRecord, StepRecord
from latchflow.storage.runqueue import enqueue
from latchflow.storage.store import Store


def run_summary(run: RunRecord) -> JSON:
    return {
        "id": run.id,
        "flow_id": run.flow_id,
        "flow_version": run.flow_version,
        "event_id": run.event_id,
        "status": run.status,
        "step_index": run.step_index,
        "due_at": _iso(run.due_at),
        "error": run.error,
        "output": run.output,
        "created_at": _iso(run.created_at),
        "finished_at": _iso(run.finished_at),
    }


def run_list(
    store: Store,
    flow_id: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
) -> list[JSON]:
    """Runs, newest first, filtered by flow, status and creation time."""
    query = select(RunRecord).order_by(col(RunRecord.created_at).desc()).limit(limit)
    if flow_id:
        query = query.where(RunRecord.flow_id == flow_id)
    if status:
        query = query.where(RunRecord.status == status)
    if since:
        query = query.where(col(RunRecord.created_at) >= since)
    if until:
        query = query.where(col(RunRecord.created_at) < until)
    with store.session() as session:
        return [run_summary(r) for r in session.exec(query)]


def run_detail(store: Store, run_id: str) -> JSON:
    """A run with its event and every step's redacted input, output, status and error."""
    with store.session() as session:
        run = session.get(RunRecord, run_id)
        if run is None:
            raise KeyError(run_id)
        event = session.get(EventRecord, run.event_id)
        steps = session.exec(
            select(StepRecord).where(StepRecord.run_id == run_id).order_by(col(StepRecord.position))
        )
        return {
            **run_summary(run),
            "event": {"id": event.id, "data": event.data, "received_at": _iso(event.received_at)}
            if event
            else None,
            "steps": [
                {
                    "id": s.step_id,
                    "action": s.action,
                    "status": s.status,
                    "attempts": s.attempts,
                    "input": s.input,
                    "output": s.output,
                    "error": s.error,
                    "started_at": _iso(s.started_at),
                    "finished_at": _iso(s.finished_at),
                }
                for s in steps
            ],
        }


def replay_run(store: Store, run_id: str, *, from_start: bool, now: datetime) -> None:
    """Queue a finished run again, from its failed step or from the start.

    The run keeps its id, so each step keeps its idempotency key: vendors and plugins that
    honour it do not repeat an effect that already happened.
    """
    with store.session() as session:
        run = session.get(RunRecord, run_id)
        if run is None:
            raise ValidationError.at("$.run_id", f"no run {run_id!r}")
        if run.status in ACTIVE:
            raise ValidationError.at(
                "$.run_id", f"run {run_id} is still {run.status}; cancel it first"
            )
        start = 0 if from_start else run.step_index
        session.exec(
            delete(StepRecord).where(
                col(StepRecord.run_id) == run_id, col(StepRecord.position) >= start
            )
        )
        run.step_index, run.status, run.error, run.output = start, "queued", None, None
        run.due_at, run.finished_at, run.updated_at = now, None, now
        session.add(run)
        enqueue(session, run_id, now)
        session.commit()


def cancel_run(store: Store, run_id: str, now: datetime) -> bool:
    """Stop a run that has not finished; its current step, if running, completes first."""
    with store.session() as session:
        run = session.get(RunRecord, run_id)
        if run is None or run.status not in ACTIVE:
            return False
        run.status, run.finished_at, run.updated_at = "cancelled", now, now
        run.error = "cancelled"
        session.add(run)
        session.commit()
        return True


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def event_summary(event: EventRecord) -> dict[str, Any]:
    return {
        "id": event.id,
        "flow_id": event.flow_id,
        "trigger": event.trigger,
        "status": event.status,
        "reason": event.reason,
        "run_id": event.run_id,
        "key": event.source_key,
        "data": event.data,
        "received_at": _iso(event.received_at),
    }
