"""Runs advanced by child processes, so the server's process keeps its core for accepting.

With SQLite on a machine with more than one CPU, ``serve`` hands runs to child processes
(``python -m latchflow.process``; how many is decided in ``backends.choose``) that run the
embedded dispatcher against the same database; the server's process accepts webhooks, fires
schedules and answers the API. One Python process can use only one core, so this is what lets
the halves work at once.

- The children start with the first queued run (an idle server has none); the server wakes them
  with a byte on their stdin, and each reports its steps in flight as lines on its stdout.
- Child ``k`` claims runs as ``runs-<k>``, the same name in every server, and holds an exclusive
  lock on ``<database file>.runs-<k>.lock`` before it releases stale claims and starts: so a new
  child never takes runs from an old one that is still finishing its steps, and a second
  server on the same database waits for the first one's children. A child releases every
  claim but its peers'. Due runs are claimed in one statement, so no run is taken twice.
- While a burst of runs is being queued, only child 0 starts runs (with a quarter of its
  workers): accepting keeps the CPU, and the others join in when the burst is over.
- They stop when their stdin closes (the server stopped, or was killed) or on SIGTERM: runs in
  flight finish their current step, as in a graceful shutdown. They ignore SIGINT, which a
  terminal sends to the whole process group; the server closes the pipes instead.
- They run at the server's CPU priority: a lower one made the server wait longer for SQLite's
  write lock whenever a child held it and was not scheduled.
- A child that exits unexpectedly is replaced a second later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from latchflow.backends.base import DEFAULT_WORKERS
from latchflow.backends.embedded.dispatcher import EmbeddedDispatcher
from latchflow.plugin.clock import Clock
from latchflow.runs.executor import Executor
from latchflow.storage.database import Settings, sqlite_file
from latchflow.storage.store import Store

log = logging.getLogger("latchflow.run_process")

RESTART_SECONDS = 1.0
LOCK_POLL_SECONDS = 0.2


def lock_path(settings: Settings, index: int = 0) -> Path | None:
    """The lock file of run process ``index`` on a SQLite database file; None for other
    databases (and in-memory)."""
    database = sqlite_file(settings.database_url)
    return None if database is None else Path(f"{database}.runs-{index}.lock")


def worker_id(index: int) -> str:
    """The name run process ``index`` claims runs under (the same for every server)."""
    return f"runs-{index}"


class RunProcess:
    """The server's side: a ``Dispatcher`` whose runs are advanced by child processes."""

    fires_schedules = False

    def __init__(
        self,
        store: Store,
        clock: Clock,
        workers: int = DEFAULT_WORKERS,
        grace_seconds: float = 10.0,
        processes: int = 1,
    ) -> None:
        self.journal = store.journal
        self.clock = clock
        self.settings = store.settings
        self.workers = workers
        self.grace_seconds = grace_seconds
        self.processes = processes
        self._children: list[asyncio.subprocess.Process | None] = [None] * processes
        self._in_flight = [0] * processes
        self._supervisors: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_pending = False
        self._stopping = False

    @property
    def in_flight(self) -> int:
        return sum(self._in_flight)

    def notify(self) -> None:
        if self._wake_pending or self._stopping or self._loop is None:
            return
        self._wake_pending = True  # one byte per loop iteration, however many runs were queued
        self._loop.call_soon(self._wake)

    def wake_at(self, when: datetime) -> None:
        self.notify()  # the child re-reads the stored due times on every wake

    async def drain(self) -> None:
        """Wait until no run is due or being advanced (the child's progress is in the database)."""
        self.notify()
        while self._busy():  # noqa: ASYNC110 - nothing in this process to wait on
            await asyncio.sleep(0.05)

    def _busy(self) -> bool:
        return self.journal.busy(self.clock.now())

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        if self.journal.next_due(self.clock.now()) is not None:
            self.notify()

    async def stop(self, grace_seconds: float = 10.0) -> None:
        self._stopping = True
        running = [p for p in self._children if p is not None and p.stdin is not None]
        for process in running:
            assert process.stdin is not None
            process.stdin.close()  # the child finishes its current steps and exits
        await asyncio.gather(*(self._wait(process, grace_seconds + 10) for process in running))
        await asyncio.gather(*self._supervisors)
        self._supervisors = []

    @staticmethod
    async def _wait(process: asyncio.subprocess.Process, seconds: float) -> None:
        try:
            await asyncio.wait_for(process.wait(), seconds)
        except TimeoutError:
            log.warning("a run process did not stop in time; killing it")
            process.kill()
            await process.wait()

    def _wake(self) -> None:
        self._wake_pending = False
        if not self._supervisors:
            self._supervisors = [
                asyncio.create_task(self._supervise(index), name=f"run-process-{index}")
                for index in range(self.processes)
            ]
            return  # each child reads the database when it starts
        for process in self._children:
            if process is None or process.stdin is None or process.stdin.is_closing():
                continue
            if not process.stdin.transport.get_write_buffer_size():  # else a wake is on its way
                process.stdin.write(b"\n")

    async def _supervise(self, index: int) -> None:
        """Keep child ``index`` running until the server stops."""
        while not self._stopping:
            process = await asyncio.create_subprocess_exec(
                *self._command(index),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            self._children[index] = process
            assert process.stdin is not None and process.stdout is not None
            if self._stopping:  # stop() came while it was starting
                process.stdin.close()
            async for line in process.stdout:
                with contextlib.suppress(ValueError):
                    self._in_flight[index] = int(line)
            code = await process.wait()
            self._in_flight[index] = 0
            if not self._stopping:
                log.error(
                    "run process %d exited with code %s; starting another in %.0f s",
                    index,
                    code,
                    RESTART_SECONDS,
                )
                await asyncio.sleep(RESTART_SECONDS)

    def _command(self, index: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "latchflow.process",
            "--data-dir",
            str(self.settings.data_dir),
            "--database-url",
            self.settings.database_url,
            "--workers",
            str(self.workers),
            "--grace",
            str(self.grace_seconds),
            "--index",
            str(index),
            "--processes",
            str(self.processes),
        ]


# the child's side


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[int]:
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        yield descriptor
    finally:
        os.close(descriptor)  # closing releases the lock


async def _take_lock(descriptor: int, path: Path, stop: asyncio.Event) -> bool:
    """Wait for the database's run lock; False if told to stop first."""
    import fcntl  # POSIX only, as is the run process

    waiting = False
    while not stop.is_set():
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if not waiting:
                log.info("waiting for the other process advancing runs (%s) to finish", path)
                waiting = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), LOCK_POLL_SECONDS)
    return False


async def _read_wakes(dispatcher: EmbeddedDispatcher, stop: asyncio.Event) -> None:
    """Wake the dispatcher for every byte from the server (each one means runs were queued,
    so a burst of them is seen here too); set ``stop`` at end of input."""
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while wakes := await reader.read(4096):
        for _ in wakes:
            dispatcher.notify()
    stop.set()


async def _report(dispatcher: EmbeddedDispatcher) -> None:
    """Write the steps in flight to stdout whenever the number changes."""
    reported = -1
    while True:
        if dispatcher.in_flight != reported:
            reported = dispatcher.in_flight
            try:
                sys.stdout.write(f"{reported}\n")
                sys.stdout.flush()
            except BrokenPipeError:  # the server is gone; its closed stdin stops us too
                return
        await asyncio.sleep(1.0)


async def run_child(
    executor: Executor,
    workers: int,
    grace_seconds: float,
    index: int = 0,
    processes: int = 1,
    started: Callable[[], None] = lambda: None,
) -> None:
    """Child ``index`` of ``processes``: advance runs with ``executor`` (claiming as
    ``worker_id(index)``) while holding the child's lock file, until stdin closes or SIGTERM;
    ``started`` is called once the dispatcher runs."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    executor.connections.processes = processes
    peers = tuple(worker_id(i) for i in range(processes) if i != index)
    dispatcher = EmbeddedDispatcher(
        executor, executor.clock, workers=workers, peers=peers, pause_in_bursts=index > 0
    )
    reading = asyncio.create_task(_read_wakes(dispatcher, stop))
    path = lock_path(executor.store.settings, index)
    assert path is not None
    with _locked(path) as descriptor:
        if await _take_lock(descriptor, path, stop):
            await dispatcher.start()
            started()
            reporting = asyncio.create_task(_report(dispatcher))
            await stop.wait()
            reporting.cancel()
            await dispatcher.stop(grace_seconds)
    reading.cancel()
