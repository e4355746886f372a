"""A run's rows as the executor keeps them: read once, written back at each checkpoint.

Plain dataclasses and prebuilt SQLAlchemy Core statements instead of ORM objects (whose
unit-of-work bookkeeping cost more than the rest of a step together), and checkpoints of
concurrent runs written together: one transaction, one statement per kind of row.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, bindparam, event, or_, select

from latchflow.plugin.types import JSON
from latchflow.storage.models import EventRecord, RunRecord, StepRecord
from latchflow.storage.runqueue import RunQueue
from latchflow.storage.write_lock import begin_immediate, connect_for_writes

RUNS = RunRecord.__table__  # type: ignore[attr-defined]
STEPS = StepRecord.__table__  # type: ignore[attr-defined]
EVENTS = EventRecord.__table__  # type: ignore[attr-defined]


@dataclass
class RunRow:
    """The run's columns the executor reads and changes."""

    id: str
    flow_id: str
    flow_version: int
    event_id: str
    status: str
    step_index: int
    due_at: datetime | None
    claimed_by: str | None
    claimed_until: datetime | None
    error: str | None
    output: Any
    updated_at: datetime
    finished_at: datetime | None


@dataclass
class StepRow:
    """A step's checkpoint row; ``stored`` once a commit has written it."""

    run_id: str
    step_id: str
    position: int
    action: str
    started_at: datetime
    status: str = "running"
    attempts: int = 0
    input: Any = None
    output: Any = None
    input_sealed: str | None = None
    output_sealed: str | None = None
    state: Any = None
    error: str | None = None
    finished_at: datetime | None = None
    stored: bool = field(default=False, compare=False)


RUN_COLUMNS = tuple(f.name for f in fields(RunRow))
CHANGING = RUN_COLUMNS[4:]
"""What a checkpoint writes back: everything but the run's identity."""
STEP_COLUMNS = tuple(f.name for f in fields(StepRow) if f.name != "stored")
STEP_CHANGING = STEP_COLUMNS[2:]

_LOAD_RUNS = (
    select(*(RUNS.c[name] for name in RUN_COLUMNS), EVENTS.c.data)
    .outerjoin(EVENTS, EVENTS.c.id == RUNS.c.event_id)
    .where(RUNS.c.id.in_(bindparam("run_ids", expanding=True)))
)
_LOAD_STEPS = select(*(STEPS.c[name] for name in STEP_COLUMNS)).where(
    STEPS.c.run_id.in_(bindparam("run_ids", expanding=True))
)
_INSERT_STEPS = STEPS.insert()
_UPDATE_STEPS = STEPS.update().where(
    STEPS.c.run_id == bindparam("_run_id"), STEPS.c.step_id == bindparam("_step_id")
)
_UPDATE_RUN = RUNS.update().where(RUNS.c.id == bindparam("_id"))
_CLAIM_RUN = RUNS.update().where(
    RUNS.c.id == bindparam("_id"),
    RUNS.c.status == bindparam("_status"),
    RUNS.c.step_index == bindparam("_step_index"),
    RUNS.c.due_at.is_not_distinct_from(bindparam("_due_at")),
    or_(RUNS.c.claimed_by.is_(None), RUNS.c.claimed_until < bindparam("_now")),
)
"""Statements built once: each keeps its compiled form in SQLAlchemy's cache."""


class RunRows(NamedTuple):
    """A run as the executor reads it: its row, its trigger event's data and its steps."""

    run: RunRow
    trigger: JSON
    steps: dict[str, StepRow]


def load(connection: Connection, run_ids: list[str]) -> list[RunRows]:
    """The runs that exist among ``run_ids``, in two queries however many there are."""
    found = [
        RunRows(RunRow(*values), data if data is not None else {}, {})
        for *values, data in connection.execute(_LOAD_RUNS, {"run_ids": run_ids})
    ]
    by_id = {rows.run.id: rows for rows in found}
    for r in connection.execute(_LOAD_STEPS, {"run_ids": run_ids}):
        by_id[r.run_id].steps[r.step_id] = StepRow(**r._mapping, stored=True)
    return found


@dataclass(frozen=True)
class Checkpoint:
    """One run's writes as they were when its checkpoint was made."""

    run_id: str
    run: dict[str, Any]
    new_steps: list[dict[str, Any]]
    changed_steps: list[dict[str, Any]]
    queue_at: datetime | None = None
    """When to queue the run to be advanced again, if it should be."""
    claim: tuple[str, int, datetime | None, datetime] | None = None
    """Status, step index and due time as loaded, and now: write only if the run is still as
    loaded and no other worker holds an unexpired claim on it (this checkpoint claims it)."""

    @classmethod
    def of(
        cls,
        run: RunRow,
        steps: list[StepRow],
        queue_at: datetime | None = None,
        claim: tuple[str, int, datetime | None, datetime] | None = None,
    ) -> Checkpoint:
        return cls(
            run.id,
            {name: getattr(run, name) for name in CHANGING},
            [_step_values(s) for s in steps if not s.stored],
            [
                {"_run_id": s.run_id, "_step_id": s.step_id, **_step_values(s, STEP_CHANGING)}
                for s in steps
                if s.stored
            ],
            queue_at,
            claim,
        )


class CheckpointWriter:
    """Concurrent runs' checkpoints share one transaction (group commit).

    A run awaits the commit of the batch its checkpoint joined, so it still calls its next
    action only after its checkpoint is durable; the batch spends one transaction and one
    statement per kind of row on many runs. On SQLite the writer has a connection of its own
    and awaits the write lock on the event loop (``write_lock``) instead of blocking it while
    another process writes. If a batch fails, each checkpoint in it is written on its own, so
    one run's bad row fails only that run.
    """

    def __init__(self, engine: Engine, queue: RunQueue) -> None:
        self.engine = engine
        self.queue = queue
        self._sqlite = engine.dialect.name == "sqlite"
        self._connection: Connection | None = None
        self._pending: list[tuple[Checkpoint, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None
        event.listen(engine, "engine_disposed", lambda _engine: self._close())

    async def commit(self, checkpoint: Checkpoint) -> bool:
        """Write the checkpoint; False if its claim failed (and nothing of it was written)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((checkpoint, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_while_pending(), name="checkpoints")
        return await future

    async def _write_while_pending(self) -> None:
        while self._pending:
            try:
                connection = await self._locked_connection()
            except Exception as exc:  # the write lock stayed taken: everything pending fails
                batch, self._pending = self._pending, []
                _answer(batch, [exc] * len(batch))
                continue
            batch, self._pending = self._pending, []  # what arrived while the lock was awaited
            _answer(batch, self._write(connection, [c for c, _ in batch]))
            await asyncio.sleep(0)  # let the runs that were waiting for a slot catch up

    async def _locked_connection(self) -> Connection | None:
        """On SQLite, the writer's connection, holding the write lock; elsewhere None (each
        batch takes a pooled connection)."""
        if not self._sqlite:
            return None
        if self._connection is None:
            self._connection = connect_for_writes(self.engine)
        try:
            await begin_immediate(self._connection)
        except Exception:
            self._close()
            raise
        return self._connection

    def _write(
        self, connection: Connection | None, batch: list[Checkpoint]
    ) -> list[bool | BaseException]:
        try:
            if connection is None:
                with self.engine.begin() as pooled:
                    return list(self._write_batch(pooled, batch))
            try:
                written = self._write_batch(connection, batch)
                connection.commit()
            except Exception:
                self._close()  # rolls back; the next batch opens another connection
                raise
            return list(written)
        except Exception as exc:
            if len(batch) == 1:
                return [exc]
        return [outcome for c in batch for outcome in self._write(None, [c])]

    def _write_batch(self, connection: Connection, batch: list[Checkpoint]) -> list[bool]:
        written = [c.claim is None or _claim(connection, c) for c in batch]
        kept = [c for c, ok in zip(batch, written, strict=True) if ok]
        plain = [{"_id": c.run_id, **c.run} for c in kept if c.claim is None]
        for statement, rows in (
            (_UPDATE_RUN, plain),
            (_INSERT_STEPS, [row for c in kept for row in c.new_steps]),
            (_UPDATE_STEPS, [row for c in kept for row in c.changed_steps]),
        ):
            if rows:
                connection.execute(statement, rows)
        for c in kept:
            if c.queue_at is not None:
                self.queue.enqueue(connection, c.run_id, c.queue_at)
        return written

    def _close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.close()


def _answer(
    batch: list[tuple[Checkpoint, asyncio.Future[bool]]], outcomes: list[bool | BaseException]
) -> None:
    for (_, future), outcome in zip(batch, outcomes, strict=True):
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _claim(connection: Connection, checkpoint: Checkpoint) -> bool:
    """Write the run of a claiming checkpoint if the claim holds; whether it did."""
    assert checkpoint.claim is not None
    status, step_index, due_at, now = checkpoint.claim
    result = connection.execute(
        _CLAIM_RUN,
        {
            "_id": checkpoint.run_id,
            "_status": status,
            "_step_index": step_index,
            "_due_at": due_at,
            "_now": now,
            **checkpoint.run,
        },
    )
    return bool(result.rowcount)


def _step_values(step: StepRow, names: tuple[str, ...] = STEP_COLUMNS) -> dict[str, Any]:
    return {name: getattr(step, name) for name in names}
