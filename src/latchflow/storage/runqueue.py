"""Where a run that became due is queued: inside the transaction that made it due.

Every place that makes a run due (the event writer, the executor's checkpoints, replay) calls
the store's queue before committing, so a committed run always has its queue entry and a
rolled-back one never does. The embedded backend's queue is the runs table itself, so
``RunsTable`` adds nothing; a backend with its own job table adds its job row in the same
transaction. Which queue a database gets is decided in ``backends.choose``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection


class RunQueue(Protocol):
    def enqueue(self, connection: Connection, run_id: str, due_at: datetime) -> None:
        """Queue ``run_id`` to be advanced at ``due_at``, in ``connection``'s transaction."""
        ...


class RunsTable:
    """The embedded queue: a run's row (status, ``due_at``) is already its queue entry."""

    def enqueue(self, connection: Connection, run_id: str, due_at: datetime) -> None:
        return None
