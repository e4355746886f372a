"""Which backend runs a database's work: the one place where embedded and PostgreSQL part.

- **Embedded** (SQLite, the default): one node. Runs are the runs table's rows; the embedded
  dispatcher advances them in the server's process, or in run processes when the machine has
  more than one CPU; the embedded clock fires schedules and polls.
- **PostgreSQL**: several nodes share the database. Every due run is a procrastinate job, and
  the backend's periodic tick fires schedules and polls itself.
"""

from __future__ import annotations

import os

from latchflow.backends.base import DEFAULT_WORKERS, Dispatcher
from latchflow.backends.embedded.dispatcher import EmbeddedDispatcher
from latchflow.backends.embedded.run_processes import RunProcess, lock_path
from latchflow.plugin.clock import Clock
from latchflow.plugin.errors import ConfigurationError
from latchflow.runs.executor import Executor
from latchflow.storage.database import Settings
from latchflow.storage.runqueue import RunQueue, RunsTable

MAX_RUN_PROCESSES = 2
"""SQLite has one writer at a time: more run processes than this wait for it more than they gain."""


def shared(settings: Settings) -> bool:
    """Whether the database is PostgreSQL, shared by nodes (else SQLite, embedded)."""
    return settings.database_url.startswith("postgresql")


def run_queue(settings: Settings, clock: Clock) -> RunQueue:
    """Where the database's due runs are queued: procrastinate jobs, or the runs table itself."""
    if shared(settings):
        from latchflow.backends.postgres.queue import ProcrastinateJobs

        return ProcrastinateJobs(clock)
    return RunsTable()


def run_processes(settings: Settings, choice: bool | None, count: int | None = None) -> int:
    """How many child processes advance runs for ``serve`` (0: its own process does).

    ``choice`` None decides: with a SQLite file on a POSIX machine with more than one CPU, one
    per CPU (at most ``MAX_RUN_PROCESSES``) unless ``count`` says how many.
    """
    usable = lock_path(settings) is not None and os.name == "posix"
    if choice and not usable:
        raise ConfigurationError(
            "--run-process needs a SQLite database file on a POSIX system; on PostgreSQL, start"
            " more nodes instead"
        )
    cpus = os.cpu_count() or 1
    if choice is False or (choice is None and not (usable and cpus > 1)):
        return 0
    return count or max(1, min(cpus, MAX_RUN_PROCESSES))


def dispatcher(
    executor: Executor,
    workers: int = DEFAULT_WORKERS,
    name: str = "local",
    processes: int = 0,
) -> Dispatcher:
    """The dispatcher for the executor's database: procrastinate on PostgreSQL; else the
    embedded one, in this process or (``processes`` > 0) in that many run processes."""
    if shared(executor.store.settings):
        from latchflow.backends.postgres.dispatcher import ProcrastinateDispatcher

        return ProcrastinateDispatcher(executor, workers=workers, name=name)
    if processes:
        return RunProcess(executor.store, executor.clock, workers, processes=processes)
    return EmbeddedDispatcher(executor, executor.clock, workers=workers)
