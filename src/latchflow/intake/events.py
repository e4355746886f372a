"""Turning trigger events into stored events and queued runs, deduplicated."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from latchflow.plugin.types import JSON
from latchflow.storage.models import EventRecord, FlowRecord, PollCursor, RunRecord
from latchflow.storage.runqueue import enqueue


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Accepted:
    """The run an event started; ``created`` is False when the event was a duplicate."""

    run_id: str
    event_id: str
    created: bool


def add_event_and_run(
    session: Session,
    flow: FlowRecord,
    data: JSON,
    now: datetime,
    dedupe_key: str | None,
    due_at: datetime | None = None,
) -> tuple[str, str]:
    """Add an accepted event and its queued run to the session (the caller commits)."""
    event_id, run_id = new_id(), new_id()
    session.add(
        EventRecord(
            id=event_id,
            flow_id=flow.id,
            trigger=flow.trigger_type,
            dedupe_key=dedupe_key,
            source_key=dedupe_key,
            run_id=run_id,
            data=data,
            received_at=now,
        )
    )
    session.add(
        RunRecord(
            id=run_id,
            flow_id=flow.id,
            flow_version=flow.version,
            event_id=event_id,
            due_at=due_at or now,
            created_at=now,
            updated_at=now,
        )
    )
    enqueue(session, run_id, due_at or now)
    return event_id, run_id


def accept_event(
    session: Session,
    flow: FlowRecord,
    data: JSON,
    now: datetime,
    dedupe_key: str | None = None,
    due_at: datetime | None = None,
) -> Accepted:
    """Store an event and its queued run in one commit, or record a duplicate of an earlier one."""
    event_id, run_id = add_event_and_run(session, flow, data, now, dedupe_key, due_at)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        first = session.exec(
            select(EventRecord).where(
                EventRecord.flow_id == flow.id, EventRecord.dedupe_key == dedupe_key
            )
        ).one()
        record_dropped(
            session,
            flow,
            data,
            now,
            "duplicate",
            f"same key {dedupe_key!r} as event {first.id}",
            dedupe_key,
        )
        return Accepted(run_id=first.run_id or "", event_id=first.id, created=False)
    return Accepted(run_id=run_id, event_id=event_id, created=True)


def record_dropped(
    session: Session,
    flow: FlowRecord,
    data: JSON,
    now: datetime,
    status: str,
    reason: str,
    source_key: str | None = None,
) -> str:
    """Keep an event that started no run, with the reason ("why didn't this run")."""
    record = _dropped(flow, data, now, status, reason, source_key)
    session.add(record)
    session.commit()
    return record.id


def accept_batch(
    session: Session,
    flow: FlowRecord,
    items: list[tuple[str, JSON]],
    now: datetime,
    cursor: JSON | None = None,
    filtered: Sequence[tuple[str, JSON, str]] = (),
) -> list[Accepted]:
    """Store several keyed events (a poll's or a schedule tick's) and the flow's cursor in ONE commit.

    Keys seen before become "duplicate" events; ``filtered`` items (key, data, reason) are kept
    as "filtered". If the commit fails (a concurrent writer took a key), nothing is stored and
    the cursor stays where it was, so the next poll or tick repeats the same work.
    """
    keys = [key for key, _ in items]
    existing = {
        e.dedupe_key: e
        for e in session.exec(
            select(EventRecord).where(
                EventRecord.flow_id == flow.id,
                col(EventRecord.dedupe_key).in_(keys),
            )
        )
    }
    accepted: list[Accepted] = []
    for key, data in items:
        if key in existing:
            first = existing[key]
            session.add(
                _dropped(flow, data, now, "duplicate", f"same key {key!r} as event {first.id}", key)
            )
            accepted.append(Accepted(run_id=first.run_id or "", event_id=first.id, created=False))
            continue
        event_id, run_id = add_event_and_run(session, flow, data, now, key)
        existing[key] = EventRecord(
            id=event_id, flow_id=flow.id, trigger="", run_id=run_id, data={}
        )
        accepted.append(Accepted(run_id=run_id, event_id=event_id, created=True))
    for key, data, reason in filtered:
        session.add(_dropped(flow, data, now, "filtered", reason, key))
    if cursor is not None:
        row = session.get(PollCursor, flow.id) or PollCursor(flow_id=flow.id)
        row.cursor, row.polled_at = cursor, now
        session.add(row)
    session.commit()
    return accepted


def _dropped(
    flow: FlowRecord, data: JSON, now: datetime, status: str, reason: str, key: str | None
) -> EventRecord:
    return EventRecord(
        id=new_id(),
        flow_id=flow.id,
        trigger=flow.trigger_type,
        source_key=key,
        status=status,
        reason=reason,
        data=data,
        received_at=now,
    )
