"""Where a run that became due is queued: inside the transaction that made it due.

Every place that makes a run due (intake, the executor's checkpoints, replay) calls
``enqueue`` before committing, so a committed run always has its queue entry and a rolled-back
one never does. The embedded backend's queue is the runs table itself, so ``RunsTable`` adds
nothing; a backend with its own job table adds its job row in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection
from sqlmodel import Session

from latchflow.plugin.clock import Clock

SESSION_KEY = "latchflow.run_queue"
"""Key of the queue in ``Session.info`` (the store puts it there for every session)."""


class RunQueue(Protocol):
    def enqueue(self, session: Session | Connection, run_id: str, due_at: datetime) -> None:
        """Queue ``run_id`` to be advanced at ``due_at``, in ``session``'s transaction."""
        ...


class RunsTable:
    """The embedded queue: a run's row (status, ``due_at``) is already its queue entry."""

    def enqueue(self, session: Session | Connection, run_id: str, due_at: datetime) -> None:
        return None


def enqueue(session: Session, run_id: str, due_at: datetime) -> None:
    """Queue a run with the queue of the store that opened ``session``."""
    queue: RunQueue = session.info.get(SESSION_KEY) or RunsTable()
    queue.enqueue(session, run_id, due_at)


def for_database(url: str, clock: Clock | None = None) -> RunQueue:
    """The queue a database URL calls for: procrastinate jobs on PostgreSQL, else the runs table."""
    if url.startswith("postgresql"):
        from latchflow.backends.postgres.queue import ProcrastinateJobs

        return ProcrastinateJobs(clock)
    return RunsTable()
