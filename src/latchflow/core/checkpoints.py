"""A run's rows as the executor keeps them: read once, written back at each checkpoint.

Plain dataclasses and prebuilt SQLAlchemy Core statements instead of ORM objects: a
checkpoint is one update of the run, an insert of its new steps and an update of its changed
ones, with none of the ORM's unit-of-work bookkeeping (which cost more than the rest of a
step together).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, or_, select

from latchflow.core.models import EventRecord, RunRecord, StepRecord
from latchflow.core.types import JSON

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

_LOAD_RUN = (
    select(*(RUNS.c[name] for name in RUN_COLUMNS), EVENTS.c.data)
    .outerjoin(EVENTS, EVENTS.c.id == RUNS.c.event_id)
    .where(RUNS.c.id == bindparam("run_id"))
)
_LOAD_STEPS = select(*(STEPS.c[name] for name in STEP_COLUMNS)).where(
    STEPS.c.run_id == bindparam("run_id")
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


def load(connection: Connection, run_id: str) -> tuple[RunRow, JSON, dict[str, StepRow]] | None:
    """The run, its trigger event's data and its step rows; None if there is no such run."""
    row = connection.execute(_LOAD_RUN, {"run_id": run_id}).first()
    if row is None:
        return None
    *values, data = row
    run = RunRow(*values)
    steps = {
        r.step_id: StepRow(**r._mapping, stored=True)
        for r in connection.execute(_LOAD_STEPS, {"run_id": run_id})
    }
    return run, data if data is not None else {}, steps


def write(
    connection: Connection,
    run: RunRow,
    steps: list[StepRow],
    claim: tuple[str, int, datetime | None, datetime] | None = None,
) -> bool:
    """Write the run and its changed steps in ``connection``'s transaction.

    With ``claim`` (status, step index and due time as loaded, and now), the run is written
    only if it is still as loaded and no other worker holds an unexpired claim on it; False
    (and nothing written) if it is not.
    """
    values = {name: getattr(run, name) for name in CHANGING}
    if claim is None:
        connection.execute(_UPDATE_RUN, {"_id": run.id, **values})
    else:
        status, step_index, due_at, now = claim
        result = connection.execute(
            _CLAIM_RUN,
            {
                "_id": run.id,
                "_status": status,
                "_step_index": step_index,
                "_due_at": due_at,
                "_now": now,
                **values,
            },
        )
        if not result.rowcount:
            return False
    new = [_step_values(s) for s in steps if not s.stored]
    if new:
        connection.execute(_INSERT_STEPS, new)
    changed = [
        {"_run_id": s.run_id, "_step_id": s.step_id, **_step_values(s, STEP_CHANGING)}
        for s in steps
        if s.stored
    ]
    if changed:
        connection.execute(_UPDATE_STEPS, changed)
    return True


def _step_values(step: StepRow, names: tuple[str, ...] = STEP_COLUMNS) -> dict[str, Any]:
    return {name: getattr(step, name) for name in names}
