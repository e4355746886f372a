"""Dispatch: the narrow interface between intake, the scheduler and whatever runs the work.

The executor advances a run it is handed; a dispatcher decides which runs to hand it and when.
The database is the source of truth: a run is due when it is active, unclaimed (or its claim
expired) and its ``due_at`` has come. In-memory signals only make a dispatcher look sooner.
Every backend implements ``Dispatcher`` and passes the same contract tests
(tests/server/contract.py); ``choose`` picks one for a database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

DEFAULT_WORKERS = 16
"""Runs advanced at the same time by one process."""


class Dispatcher(Protocol):
    """The narrow interface between run intake, the scheduler and whatever runs the work."""

    fires_schedules: bool
    """True when the backend fires schedules and polls itself (the embedded clock stays off)."""

    @property
    def in_flight(self) -> int:
        """Steps this process is running now."""
        ...

    def notify(self) -> None:
        """A run was queued (or became due) now: look for work without waiting."""
        ...

    def wake_at(self, when: datetime) -> None:
        """Something becomes due at ``when`` (already stored): make sure to look by then."""
        ...

    async def drain(self) -> None:
        """Run every due run until nothing is due at the clock's current time, then return."""
        ...

    async def start(self) -> None:
        """Recover from a crash (stale claims) and begin dispatching in the background."""
        ...

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop claiming; let in-flight steps finish for up to ``grace_seconds``; release claims."""
        ...
