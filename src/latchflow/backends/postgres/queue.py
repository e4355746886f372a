"""The PostgreSQL run queue: procrastinate's job table, the only SQL outside ``storage``.

A run's job row is inserted in the transaction that made the run due.
The event writer, the executor's checkpoints and replay queue a run before they commit, so
on PostgreSQL the run's state and its next job commit together or not at all. The job is locked
by the run id (procrastinate never starts two jobs with the same lock at once, so a run's steps
never overlap across nodes) and scheduled at the run's ``due_at`` when that is in the future.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection, Engine, bindparam, make_url, text

from latchflow.plugin.clock import Clock
from latchflow.storage.status import ACTIVE

RUNS_QUEUE = "latchflow-runs"
ADVANCE_TASK = "latchflow.advance_run"

_DEFER = text(
    "SELECT procrastinate_defer_jobs_v1(ARRAY[CAST(ROW("
    ":queue, :task, 0, :lock, NULL, CAST(:args AS jsonb), :scheduled_at"
    ") AS procrastinate_job_to_defer_v1)])"
)


def conninfo(database_url: str) -> str:
    """The libpq connection string for a SQLAlchemy ``postgresql+psycopg://`` URL."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class ProcrastinateJobs:
    """``RunQueue`` for PostgreSQL: one ``advance_run`` job per due moment of a run."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def enqueue(self, connection: Connection, run_id: str, due_at: datetime) -> None:
        # A job due now is left unscheduled, so a node whose clock runs ahead of the database's
        # does not leave it waiting for the next poll.
        later = due_at if due_at > self.clock.now() else None
        connection.execute(
            _DEFER,
            {
                "queue": RUNS_QUEUE,
                "task": ADVANCE_TASK,
                "lock": run_id,
                "args": json.dumps({"run_id": run_id}),
                "scheduled_at": later,
            },
        )

    def make_due(self, engine: Engine) -> int:
        """Make the run jobs whose ``scheduled_at`` this node's clock has passed due now (a
        test's fake clock runs ahead of the database's); how many are ready to be worked on."""
        with engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE procrastinate_jobs SET scheduled_at = NULL WHERE status = 'todo'"
                    " AND queue_name = :queue AND scheduled_at <= :now"
                ),
                {"queue": RUNS_QUEUE, "now": self.clock.now()},
            )
            ready: int = connection.execute(
                text(
                    "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = :queue"
                    " AND (status = 'doing' OR (status = 'todo' AND scheduled_at IS NULL))"
                ),
                {"queue": RUNS_QUEUE},
            ).scalar_one()
            return ready

    def requeue_orphans(self, engine: Engine, due_before: datetime, limit: int = 500) -> list[str]:
        """Queue again the active runs due before ``due_before`` that have no waiting or
        running job (a job that failed more often than its retries allow); their ids."""
        with engine.begin() as connection:
            orphans = list(
                connection.execute(
                    text(
                        "SELECT id FROM runs WHERE status IN :active AND due_at <= :cutoff"
                        " AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j"
                        " WHERE j.lock = runs.id AND j.status IN ('todo', 'doing')) LIMIT :limit"
                    ).bindparams(bindparam("active", expanding=True)),
                    {"active": list(ACTIVE), "cutoff": due_before, "limit": limit},
                ).scalars()
            )
            for run_id in orphans:
                self.enqueue(connection, run_id, self.clock.now())
        return orphans
