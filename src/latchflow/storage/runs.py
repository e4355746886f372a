"""Runs and events as history: listings, one run with its event and steps, replay and cancel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, delete, select, update

from latchflow.plugin.errors import ValidationError
from latchflow.storage.models import EventRecord, RunRecord, StepRecord
from latchflow.storage.runqueue import RunQueue
from latchflow.storage.status import ACTIVE, CANCELLABLE, RunStatus


@dataclass(frozen=True)
class RunFilter:
    """Which runs a listing shows, newest first."""

    flow_id: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50


class RunHistory:
    """Reads runs and events for people, and changes a run's course (replay, cancel)."""

    def __init__(self, engine: Engine, queue: RunQueue) -> None:
        self.engine = engine
        self.queue = queue

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def get(self, run_id: str) -> RunRecord | None:
        with self._session() as session:
            return session.get(RunRecord, run_id)

    def runs(self, which: RunFilter) -> list[RunRecord]:
        query = select(RunRecord).order_by(col(RunRecord.created_at).desc()).limit(which.limit)
        if which.flow_id:
            query = query.where(RunRecord.flow_id == which.flow_id)
        if which.status:
            query = query.where(RunRecord.status == which.status)
        if which.since:
            query = query.where(col(RunRecord.created_at) >= which.since)
        if which.until:
            query = query.where(col(RunRecord.created_at) < which.until)
        with self._session() as session:
            return list(session.exec(query))

    def detail(self, run_id: str) -> tuple[RunRecord, EventRecord | None, list[StepRecord]]:
        """A run with its event and its steps in order; KeyError if there is no such run."""
        with self._session() as session:
            run = session.get(RunRecord, run_id)
            if run is None:
                raise KeyError(run_id)
            event = session.get(EventRecord, run.event_id)
            steps = session.exec(
                select(StepRecord)
                .where(StepRecord.run_id == run_id)
                .order_by(col(StepRecord.position))
            )
            return run, event, list(steps)

    def events(
        self, flow_id: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[EventRecord]:
        query = select(EventRecord).order_by(col(EventRecord.received_at).desc()).limit(limit)
        if flow_id:
            query = query.where(EventRecord.flow_id == flow_id)
        if status:
            query = query.where(EventRecord.status == status)
        with self._session() as session:
            return list(session.exec(query))

    def replay(self, run_id: str, *, from_start: bool, now: datetime) -> None:
        """Queue a finished run again, from its failed step or from the start (the steps from
        there on are forgotten)."""
        with self._session() as session:
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
            run.step_index, run.status, run.error, run.output = start, RunStatus.QUEUED, None, None
            run.replays += 1
            run.due_at, run.finished_at, run.updated_at = now, None, now
            session.add(run)
            session.flush()
            self.queue.enqueue(session.connection(), run_id, now)
            session.commit()

    def cancel(self, run_id: str, now: datetime) -> bool:
        """End a run that has not finished (or waits for a person to check it); False if it had."""
        with self._session() as session:
            run = session.get(RunRecord, run_id)
            if run is None or run.status not in CANCELLABLE:
                return False
            run.status, run.finished_at, run.updated_at = RunStatus.CANCELLED, now, now
            run.error = "cancelled"
            session.add(run)
            session.commit()
            return True

    def cancel_flow(self, flow_id: str, now: datetime, reason: str) -> int:
        """End every unfinished run of a flow; how many were."""
        with self._session() as session:
            cancelled = cancel_flow_runs(session, flow_id, now, reason)
            session.commit()
            return cancelled


def cancel_flow_runs(session: Session, flow_id: str, now: datetime, reason: str) -> int:
    """End every unfinished run of a flow in ``session``'s transaction; how many were."""
    result = session.execute(
        update(RunRecord)
        .where(col(RunRecord.flow_id) == flow_id, col(RunRecord.status).in_(ACTIVE))
        .values(status=RunStatus.CANCELLED, error=reason, finished_at=now, updated_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
