"""The run journal: a run's rows as the executor keeps them (read once, written back at each
checkpoint), and the claims and due times by which workers take runs.

Plain dataclasses and prebuilt SQLAlchemy Core statements instead of ORM objects (whose
unit-of-work bookkeeping cost more than the rest of a step together), and checkpoints of
concurrent runs written together: one transaction, one statement per kind of row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, bindparam, literal_column, or_, select, update

from latchflow.plugin.types import JSON
from latchflow.storage.batch_writer import BatchWriter
from latchflow.storage.models import EventRecord, RunRecord, StepRecord
from latchflow.storage.runqueue import RunQueue
from latchflow.storage.status import ACTIVE, FINISHED_STEP, StepStatus

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
    replays: int


@dataclass
class StepRow:
    """A step's checkpoint row; ``stored`` once a commit has written it."""

    run_id: str
    step_id: str
    position: int
    action: str
    started_at: datetime
    status: str = StepStatus.RUNNING
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
STILL_ACTIVE = RUNS.c.status.in_([literal_column(f"'{status.value}'") for status in ACTIVE])
"""The run was not cancelled meanwhile (literal values: executemany allows no expanding IN)."""
_UPDATE_RUN = RUNS.update().where(RUNS.c.id == bindparam("_id"), STILL_ACTIVE)
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


class RunEnded(Exception):
    """The run was cancelled (or its flow deleted) while it was being advanced: it must not go
    on. The checkpoint's finished steps were written; nothing else of it was."""


class CheckpointWriter:
    """Concurrent runs' checkpoints share one transaction (group commit, ``BatchWriter``).

    A run awaits the commit of the batch its checkpoint joined, so it still calls its next
    action only after its checkpoint is durable; the batch spends one transaction and one
    statement per kind of row on many runs. If a batch fails, each checkpoint in it is written
    on its own, so one run's bad row fails only that run.

    A checkpoint changes its run only while the run is active: one cancelled meanwhile keeps
    its status, only the steps that finished are written (a step in flight when the run was
    cancelled did happen), and the executor is told ``RunEnded``.
    """

    def __init__(self, engine: Engine, queue: RunQueue) -> None:
        self.queue = queue
        self._writer = BatchWriter(engine, self._write_batch, name="checkpoints")

    async def commit(self, checkpoint: Checkpoint) -> bool:
        """Write the checkpoint; False if its claim failed (and nothing of it was written),
        ``RunEnded`` if the run is no longer active."""
        return await self._writer.submit(checkpoint)

    def _write_batch(
        self, connection: Connection, batch: Sequence[Checkpoint]
    ) -> list[bool | RunEnded]:
        written = [c.claim is None or _claim(connection, c) for c in batch]
        kept = [c for c, ok in zip(batch, written, strict=True) if ok]
        ended = self._update_runs(connection, [c for c in kept if c.claim is None])
        for statement, rows in (
            (_INSERT_STEPS, [row for c in kept for row in c.new_steps if _kept(c, row, ended)]),
            (_UPDATE_STEPS, [row for c in kept for row in c.changed_steps if _kept(c, row, ended)]),
        ):
            if rows:
                connection.execute(statement, rows)
        for c in kept:
            if c.queue_at is not None and c.run_id not in ended:
                self.queue.enqueue(connection, c.run_id, c.queue_at)
        return [
            RunEnded(c.run_id) if c.run_id in ended else ok
            for c, ok in zip(batch, written, strict=True)
        ]

    @staticmethod
    def _update_runs(connection: Connection, plain: list[Checkpoint]) -> set[str]:
        """Write the runs that are still active; the ids of those that are not."""
        if not plain:
            return set()
        rows = [{"_id": c.run_id, **c.run} for c in plain]
        if connection.execute(_UPDATE_RUN, rows).rowcount == len(rows):
            return set()
        statuses = connection.execute(
            select(RUNS.c.id, RUNS.c.status).where(RUNS.c.id.in_([c.run_id for c in plain]))
        )
        return {run_id for run_id, status in statuses if status not in ACTIVE}


def _kept(checkpoint: Checkpoint, row: dict[str, Any], ended: set[str]) -> bool:
    """Whether a step row is written: always, but for an ended run only a finished step."""
    return checkpoint.run_id not in ended or row["status"] in FINISHED_STEP


class Journal:
    """The runs table as the executor and the dispatchers use it: claims, loads, checkpoints
    and due times. A run is due when it is active, unclaimed (or its claim expired) and its
    ``due_at`` has come."""

    def __init__(self, engine: Engine, queue: RunQueue) -> None:
        self.engine = engine
        self.writer = CheckpointWriter(engine, queue)

    def load(self, run_ids: list[str]) -> list[RunRows]:
        with self.engine.connect() as connection:
            return load(connection, run_ids)

    def claim_due(
        self, worker_id: str, now: datetime, lease: timedelta, limit: int
    ) -> list[RunRows]:
        """Claim up to ``limit`` due runs for ``worker_id`` and read them, oldest due first. The
        claim is one statement: two workers never claim the same run."""
        due = (
            select(RUNS.c.id)
            .where(RUNS.c.status.in_(ACTIVE), RUNS.c.due_at <= now, _free(now))
            .order_by(RUNS.c.due_at)
            .limit(limit)
        )
        with self.engine.begin() as connection:
            claimed = connection.execute(
                update(RUNS)
                .where(RUNS.c.id.in_(due), _free(now))
                .values(claimed_by=worker_id, claimed_until=now + lease)
                .returning(RUNS.c.id)
            ).scalars()
            runs = load(connection, list(claimed))
        return sorted(runs, key=lambda rows: rows.run.due_at or now)

    def release(self, run_id: str, worker_id: str) -> None:
        """Drop ``worker_id``'s claim on a run, so it is due again."""
        with self.engine.begin() as connection:
            connection.execute(
                update(RUNS)
                .where(RUNS.c.id == run_id, RUNS.c.claimed_by == worker_id)
                .values(claimed_by=None, claimed_until=None)
            )

    def release_claims(self, keep: tuple[str, ...] = ()) -> int:
        """Release every claim on an active run but those of the workers in ``keep``; returns
        how many were released."""
        query = update(RUNS).where(RUNS.c.status.in_(ACTIVE), RUNS.c.claimed_by.is_not(None))
        if keep:
            query = query.where(RUNS.c.claimed_by.not_in(keep))
        with self.engine.begin() as connection:
            result = connection.execute(query.values(claimed_by=None, claimed_until=None))
            return int(result.rowcount)

    def next_due(self, now: datetime, excluding: list[str] | None = None) -> datetime | None:
        """When the earliest active run that nobody holds falls due (runs ``excluding`` aside)."""
        query = (
            select(RUNS.c.due_at)
            .where(RUNS.c.status.in_(ACTIVE), _free(now))
            .order_by(RUNS.c.due_at)
            .limit(1)
        )
        if excluding:
            query = query.where(RUNS.c.id.not_in(excluding))
        with self.engine.connect() as connection:
            due: datetime | None = connection.execute(query).scalar()
            return due

    def busy(self, now: datetime) -> bool:
        """Whether some active run is due now or held by a worker."""
        query = (
            select(RUNS.c.id)
            .where(RUNS.c.status.in_(ACTIVE), or_(RUNS.c.due_at <= now, RUNS.c.claimed_until > now))
            .limit(1)
        )
        with self.engine.connect() as connection:
            return connection.execute(query).first() is not None

    def is_due(self, run_id: str, by: datetime) -> bool:
        """Whether the run is active and due at ``by`` (a stale job for it is not)."""
        query = select(RUNS.c.status, RUNS.c.due_at).where(RUNS.c.id == run_id)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None or row.status not in ACTIVE:
            return False
        return row.due_at is None or row.due_at <= by


def _free(now: datetime) -> Any:
    """Unclaimed, or claimed by a worker whose lease ran out."""
    return or_(RUNS.c.claimed_by.is_(None), RUNS.c.claimed_until < now)


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
