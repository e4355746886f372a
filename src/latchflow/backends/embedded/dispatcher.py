"""The embedded dispatcher: one asyncio loop in the process, for SQLite or a single node."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from datetime import datetime

from latchflow.backends.base import DEFAULT_WORKERS
from latchflow.plugin.clock import Clock
from latchflow.runs.executor import Executor
from latchflow.storage.journal import RunRows

log = logging.getLogger("latchflow.dispatch")

IDLE_SECONDS = 5.0
"""Longest the embedded dispatcher sleeps without re-reading the database."""
BACKLOG = 64
"""Due runs claimed at once: under load, finished runs are replaced from memory, not by a
query. Few enough that none waits in the backlog anywhere near its claim's lease."""
BURST_WINDOW = 0.2
BURST_NOTIFIES = 16
"""Runs queued within ``BURST_WINDOW`` seconds that make a burst: while one lasts, new runs
start only while fewer than a quarter of the workers are busy (and in one process only, when
several advance runs), so the web server's accepts keep the CPU (every queued run is stored;
the backlog drains when the burst ends)."""


class EmbeddedDispatcher:
    """One asyncio loop that runs due runs with at most ``workers`` in flight.

    It wakes when told (``notify``), at the earliest stored ``due_at``, and at least every
    ``idle_seconds``; after any wake it re-reads the database. Start-up clears the claims a
    killed process left behind (this backend assumes it is the only node) so every active run
    resumes from its last checkpoint.
    """

    fires_schedules = False

    def __init__(
        self,
        executor: Executor,
        clock: Clock,
        workers: int = DEFAULT_WORKERS,
        idle_seconds: float = IDLE_SECONDS,
        peers: tuple[str, ...] = (),
        pause_in_bursts: bool = False,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.executor = executor
        self.journal = executor.journal
        self.clock = clock
        self.workers = workers
        self.idle_seconds = idle_seconds
        self.peers = peers
        """Worker ids of the other processes advancing this database's runs: their claims are
        theirs to release."""
        self.pause_in_bursts = pause_in_bursts
        """Start no run while a burst lasts (a peer runs them), leaving the CPU to accepting."""
        self._slots = asyncio.Semaphore(workers)
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._backlog: deque[RunRows] = deque()
        self._wake = asyncio.Event()
        self._stopping = False
        self._window_start = time.monotonic()
        self._queued_now = 0
        self._queued_before = 0
        self._loop_task: asyncio.Task[None] | None = None

    # the interface

    def notify(self) -> None:
        self._roll_window()
        self._queued_now += 1
        self._wake.set()

    def wake_at(self, when: datetime) -> None:
        # the loop computes its sleep from the stored due times; waking it makes it re-read them
        self._wake.set()

    async def drain(self) -> None:
        while True:
            self._launch_due()
            if not self._inflight:
                return
            await asyncio.wait(list(self._inflight.values()))

    async def start(self) -> None:
        self._stopping = False
        self.executor.stopping = False
        self._backlog.clear()
        released = self.recover()
        if released:
            log.info("resuming %d run(s) left claimed by a previous process", released)
        self._loop_task = asyncio.create_task(self._loop(), name="latchflow-dispatcher")

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Claim nothing new; runs in flight finish their current step (not their later ones)."""
        self._stopping = True
        self.executor.stopping = True
        self._wake.set()
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        pending = list(self._inflight.values())
        if pending:
            log.info(
                "stopping: %d run(s) in flight finish their current step (up to %.0f s)",
                len(pending),
                grace_seconds,
            )
            _, late = await asyncio.wait(pending, timeout=grace_seconds)
            for task in late:  # a step still running: its run resumes at that step next start
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=5.0)
                log.warning(
                    "stopping: %d step(s) did not finish in time; they run again at the next"
                    " start (same idempotency keys)",
                    len(late),
                )
        self.recover()
        log.info("dispatcher stopped; every active run resumes at the next start")

    # the embedded backend

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    def recover(self) -> int:
        """Release every claim on an active run but the peers' (single node: no other live
        process holds one)."""
        return self.journal.release_claims(keep=self.peers)

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                full = self._launch_due()
                timeout = self.idle_seconds if full else self._seconds_to_next_due()
                if self.bursting:  # look again when the burst may be over
                    timeout = min(timeout, BURST_WINDOW)
            except Exception:  # a database hiccup must not end dispatching
                log.exception("dispatcher could not read due runs; retrying")
                timeout = 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _launch_due(self) -> bool:
        """Start tasks for due runs while workers are free; True if all workers are busy."""
        if self._stopping:
            return False
        free = self._burst_workers if self.bursting else self.workers
        free -= len(self._inflight)
        if free <= 0:
            return True
        if not self._backlog:
            self._backlog.extend(self.executor.claim_due(limit=BACKLOG))
        while self._backlog:
            rows = self._backlog.popleft()
            run_id = rows.run.id
            if run_id in self._inflight:  # due again as its task ends: look again after that
                self.executor.release(run_id)
                continue
            self._inflight[run_id] = asyncio.create_task(self._run(rows), name=f"run-{run_id}")
            free -= 1
            if free == 0:
                return True
        return False

    @property
    def _burst_workers(self) -> int:
        """Workers in use while a burst lasts: a quarter, or none in a process that leaves the
        runs of bursts to a peer."""
        return 0 if self.pause_in_bursts else max(1, self.workers // 4)

    @property
    def bursting(self) -> bool:
        """Runs are being queued fast (a burst of deliveries): accepting them comes first."""
        self._roll_window()
        return max(self._queued_now, self._queued_before) >= BURST_NOTIFIES

    def _roll_window(self) -> None:
        now = time.monotonic()
        elapsed = now - self._window_start
        if elapsed >= BURST_WINDOW:
            self._queued_before = self._queued_now if elapsed < 2 * BURST_WINDOW else 0
            self._queued_now, self._window_start = 0, now

    async def _run(self, rows: RunRows) -> None:
        run_id = rows.run.id
        try:
            async with self._slots:
                await self.executor.execute(run_id, claimed=rows)
        except Exception:
            log.exception("run %s could not be advanced", run_id)
        finally:
            self._inflight.pop(run_id, None)
            self._wake.set()

    def _seconds_to_next_due(self) -> float:
        now = self.clock.now()
        due = self.journal.next_due(now, excluding=list(self._inflight))
        if due is None:
            return self.idle_seconds
        return max(0.0, min(self.idle_seconds, (due - now).total_seconds()))
