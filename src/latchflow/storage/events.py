"""Events in: every event that arrives for a flow is stored here, with its run, in one writer.

A ``Delivery`` is one event for one flow, from a trigger URL, a vendor webhook, a schedule fire,
a poll or a manual start. ``EventWriter`` stores deliveries in batches, one transaction each:

- a delivery whose signed ``webhook-id`` or dedupe key the flow has seen (in the database or
  earlier in the batch) is kept as a ``duplicate`` event and answered with the first event's
  run (a sender retries a signed delivery with the same ``webhook-id`` until it gets a 2xx);
- a delivery with a ``filtered`` reason is kept as a ``filtered`` event, without a run;
- a vendor event no trigger stands for is kept as a ``dropped`` event, for no flow;
- every other delivery becomes an ``accepted`` event and a ``queued`` run, queued with the
  store's run queue in the same transaction.

Trigger URLs ``accept`` through group commit (``BatchWriter``); schedule fires, polls, vendor
webhooks and manual starts ``write`` their deliveries in one transaction on the calling thread,
together with the flow's new poll cursor when there is one, so that a poll's events and its
cursor are committed together or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, tuple_, update

from latchflow.plugin.types import JSON
from latchflow.storage.batch_writer import BatchWriter
from latchflow.storage.models import EventRecord, FlowRecord, PollCursor, RunRecord, WebhookReceipt
from latchflow.storage.runqueue import RunQueue
from latchflow.storage.status import EventStatus, RunStatus
from latchflow.storage.write_lock import WRITE_LOCK_TIMEOUT

EVENTS = EventRecord.__table__  # type: ignore[attr-defined]
RECEIPTS = WebhookReceipt.__table__  # type: ignore[attr-defined]
RUNS = RunRecord.__table__  # type: ignore[attr-defined]
CURSORS = PollCursor.__table__  # type: ignore[attr-defined]
INSERTS = (RECEIPTS.insert(), EVENTS.insert(), RUNS.insert())
"""Core inserts, built once (each keeps its cache key): cheaper than the ORM's bulk inserts."""


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Accepted:
    """The run an event started; ``created`` is False when the event was a duplicate."""

    run_id: str
    event_id: str
    created: bool


@dataclass(frozen=True)
class Delivery:
    """One event for one flow, waiting to be stored."""

    flow: FlowRecord
    data: JSON
    now: datetime
    dedupe_key: str | None = None
    webhook_id: str | None = None
    filtered: str | None = None
    """Why the event does not concern the flow: kept as "filtered", with no run."""


Outcome = Accepted | None
"""What became of a delivery: its run (or its first delivery's), or None when it was filtered."""

First = tuple[str, str]
"""The event id and run id of the accepted delivery that others duplicate."""


@dataclass(frozen=True)
class Cursor:
    """Where a flow's poll or schedule left off, committed with the events it produced."""

    flow_id: str
    value: JSON
    at: datetime


@dataclass(frozen=True)
class Dropped:
    """A vendor event that no trigger stands for, kept to answer "why did nothing run"."""

    connection_id: str
    vendor_type: str
    data: JSON
    reason: str
    now: datetime


def _dropped_row(d: Dropped) -> dict[str, Any]:
    return {
        "id": new_id(),
        "flow_id": None,
        "trigger": "",
        "connection_id": d.connection_id,
        "vendor_type": d.vendor_type,
        "status": EventStatus.DROPPED,
        "reason": d.reason,
        "data": d.data,
        "received_at": d.now,
    }


class EventWriter:
    """Stores deliveries: grouped for trigger URLs (``accept``), at once for the rest (``write``)."""

    def __init__(
        self, engine: Engine, queue: RunQueue, lock_timeout: float = WRITE_LOCK_TIMEOUT
    ) -> None:
        self.engine = engine
        self.queue = queue
        self.batches = BatchWriter(
            engine,
            self.write_in,
            name="group-commit",
            lock_timeout=lock_timeout,
            copies_wal=False,
        )
        """The trigger URLs' group commit (its commits leave WAL copying to other writers)."""

    async def accept(self, delivery: Delivery) -> Accepted:
        """Store the delivery's event and run (or find its duplicate) once it is committed."""
        outcome = await self.batches.submit(delivery)
        assert outcome is not None, "a trigger URL delivery is never filtered"
        return outcome

    async def close(self) -> None:
        """Let the group commit in progress finish and close its connection."""
        await self.batches.close()

    def write(
        self,
        deliveries: Sequence[Delivery],
        cursor: Cursor | None = None,
        dropped: Sequence[Dropped] = (),
    ) -> list[Outcome]:
        """Store ``deliveries``, ``cursor`` and ``dropped`` events in one transaction; if another
        writer takes a dedupe key at the same moment, nothing is stored and the caller may
        repeat the work."""
        with self.engine.begin() as connection:
            outcomes = self.write_in(connection, deliveries)
            if cursor is not None:
                _save_cursor(connection, cursor)
            if dropped:
                connection.execute(EVENTS.insert(), [_dropped_row(d) for d in dropped])
            return outcomes

    def write_in(self, connection: Connection, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """Store ``deliveries`` in the caller's transaction on ``connection``."""
        firsts = _existing_events(connection, deliveries)
        receipted = _existing_receipts(connection, deliveries)
        outcomes: list[Outcome] = []
        receipts: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        runs: list[dict[str, Any]] = []
        for d in deliveries:
            flow = d.flow
            if d.filtered is not None:
                events.append(_event_row(d, None, EventStatus.FILTERED, d.filtered))
                outcomes.append(None)
                continue
            duplicate = _duplicate_of(d, receipted, firsts)
            if duplicate is not None:
                (event_id, run_id), reason = duplicate
                events.append(_event_row(d, None, EventStatus.DUPLICATE, reason))
                outcomes.append(Accepted(run_id=run_id, event_id=event_id, created=False))
                continue
            event = _event_row(d, new_id())
            event_id, run_id = event["id"], event["run_id"]
            if d.webhook_id is not None:
                receipted[(flow.id, d.webhook_id)] = (event_id, run_id)
                receipts.append(
                    {
                        "flow_id": flow.id,
                        "webhook_id": d.webhook_id,
                        "run_id": run_id,
                        "received_at": d.now,
                    }
                )
            if d.dedupe_key is not None:
                firsts[(flow.id, d.dedupe_key)] = (event_id, run_id)
            events.append(event)
            runs.append(_run_row(d, run_id, event_id))
            outcomes.append(Accepted(run_id=run_id, event_id=event_id, created=True))
        for statement, rows in zip(INSERTS, (receipts, events, runs), strict=True):
            if rows:
                connection.execute(statement, rows)
        for run in runs:
            self.queue.enqueue(connection, run["id"], run["due_at"])
        return outcomes


def _duplicate_of(
    d: Delivery,
    receipted: dict[tuple[str, str], First],
    firsts: dict[tuple[str, str | None], First],
) -> tuple[First, str] | None:
    """The accepted delivery ``d`` repeats (by signed ``webhook-id``, then by dedupe key) and
    why, or None when it is new."""
    if d.webhook_id is not None:
        first = receipted.get((d.flow.id, d.webhook_id))
        if first is not None:
            return first, f"same webhook-id {d.webhook_id!r} as event {first[0]}"
    if d.dedupe_key is not None:
        first = firsts.get((d.flow.id, d.dedupe_key))
        if first is not None:
            return first, f"same key {d.dedupe_key!r} as event {first[0]}"
    return None


def _event_row(
    d: Delivery,
    run_id: str | None,
    status: EventStatus = EventStatus.ACCEPTED,
    reason: str | None = None,
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "flow_id": d.flow.id,
        "trigger": d.flow.trigger_type,
        "dedupe_key": d.dedupe_key if status == EventStatus.ACCEPTED else None,
        "source_key": d.dedupe_key,
        "status": status,
        "reason": reason,
        "run_id": run_id,
        "data": d.data,
        "received_at": d.now,
    }


def _run_row(d: Delivery, run_id: str, event_id: str) -> dict[str, Any]:
    return {
        "id": run_id,
        "flow_id": d.flow.id,
        "flow_version": d.flow.version,
        "event_id": event_id,
        "status": RunStatus.QUEUED,
        "step_index": 0,
        "due_at": d.now,
        "created_at": d.now,
        "updated_at": d.now,
        "replays": 0,
    }


def _existing_events(
    connection: Connection, deliveries: Sequence[Delivery]
) -> dict[tuple[str, str | None], tuple[str, str]]:
    """(flow id, dedupe key) → (event id, run id) of accepted events with the batch's keys."""
    keyed = {
        (d.flow.id, d.dedupe_key)
        for d in deliveries
        if d.dedupe_key is not None and d.filtered is None
    }
    if not keyed:
        return {}
    rows = connection.execute(
        select(EVENTS.c.flow_id, EVENTS.c.dedupe_key, EVENTS.c.id, EVENTS.c.run_id)
        .where(EVENTS.c.flow_id.in_({flow_id for flow_id, _ in keyed}))
        .where(EVENTS.c.dedupe_key.in_({key for _, key in keyed}))
    )
    return {(f, k): (e, r or "") for f, k, e, r in rows if (f, k) in keyed}


def _existing_receipts(
    connection: Connection, deliveries: Sequence[Delivery]
) -> dict[tuple[str, str], First]:
    """(flow id, webhook id) → (event id, run id) of accepted deliveries with the batch's ids."""
    wanted = {(d.flow.id, d.webhook_id) for d in deliveries if d.webhook_id is not None}
    if not wanted:
        return {}
    rows = connection.execute(
        select(
            RECEIPTS.c.flow_id,
            RECEIPTS.c.webhook_id,
            RECEIPTS.c.run_id,
            RUNS.c.event_id,
            RECEIPTS.c.received_at,
        )
        .select_from(RECEIPTS.outerjoin(RUNS, RUNS.c.id == RECEIPTS.c.run_id))
        .where(tuple_(RECEIPTS.c.flow_id, RECEIPTS.c.webhook_id).in_(wanted))
    )
    found: dict[tuple[str, str], First] = {}
    for flow_id, webhook_id, run_id, event_id, received_at in rows:
        if run_id is None or event_id is None:  # a receipt from before receipts kept their run
            event_id, run_id = _receipt_event(connection, flow_id, webhook_id, received_at)
        found[(flow_id, webhook_id)] = (event_id, run_id)
    return found


def _receipt_event(
    connection: Connection, flow_id: str, webhook_id: str, received_at: datetime
) -> First:
    """The accepted event stored with a receipt that has no run id: same flow, same moment
    (one transaction wrote both), and the webhook id among its headers."""
    rows = connection.execute(
        select(EVENTS.c.id, EVENTS.c.run_id, EVENTS.c.data).where(
            EVENTS.c.flow_id == flow_id,
            EVENTS.c.received_at == received_at,
            EVENTS.c.status == EventStatus.ACCEPTED,
        )
    )
    for event_id, run_id, data in rows:
        if run_id is not None and (data.get("headers") or {}).get("webhook-id") == webhook_id:
            return event_id, run_id
    raise LookupError(
        f"webhook receipt ({flow_id!r}, {webhook_id!r}) has no run id and no accepted event"
        f" received at {received_at.isoformat()} carries that webhook-id"
    )


def _save_cursor(connection: Connection, cursor: Cursor) -> None:
    values = {"cursor": cursor.value, "polled_at": cursor.at}
    updated = connection.execute(
        update(CURSORS).where(CURSORS.c.flow_id == cursor.flow_id).values(values)
    )
    if not updated.rowcount:
        connection.execute(insert(CURSORS).values(flow_id=cursor.flow_id, **values))
