"""The PostgreSQL run queue: a procrastinate job row, inserted in the transaction that made a run due.

Intake, the executor's checkpoints and replay call ``runqueue.enqueue`` before they commit, so
on PostgreSQL the run's state and its next job commit together or not at all. The job is locked
by the run id (procrastinate never starts two jobs with the same lock at once, so a run's steps
never overlap across nodes) and scheduled at the run's ``due_at`` when that is in the future.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection, text
from sqlmodel import Session

from latchflow.plugin.clock import Clock, SystemClock

RUNS_QUEUE = "latchflow-runs"
ADVANCE_TASK = "latchflow.advance_run"

_DEFER = text(
    "SELECT procrastinate_defer_jobs_v1(ARRAY[CAST(ROW("
    ":queue, :task, 0, :lock, NULL, CAST(:args AS jsonb), :scheduled_at"
    ") AS procrastinate_job_to_defer_v1)])"
)


class ProcrastinateJobs:
    """``RunQueue`` for PostgreSQL: one ``advance_run`` job per due moment of a run."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()

    def enqueue(self, session: Session | Connection, run_id: str, due_at: datetime) -> None:
        # A job due now is left unscheduled, so a node whose clock runs ahead of the database's
        # does not leave it waiting for the next poll.
        later = due_at if due_at > self.clock.now() else None
        session.execute(
            _DEFER,
            {
                "queue": RUNS_QUEUE,
                "task": ADVANCE_TASK,
                "lock": run_id,
                "args": json.dumps({"run_id": run_id}),
                "scheduled_at": later,
            },
        )
