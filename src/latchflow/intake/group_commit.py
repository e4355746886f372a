"""Group commit for trigger URLs: concurrent deliveries share one transaction.

Each delivery waits for the commit of the batch it joined, so its 202 still comes only after
ITS event and run are durable; the batch just spends one transaction (and one disk sync) on
many of them. The single writer task takes whatever queued while the previous batch was being
written, which keeps batches small when traffic is light and large when it is heavy. It writes
on the event loop's thread: in a worker thread every SQLite call would wait for the GIL behind
the loop (measured: slower than one transaction per request).

A batch answers duplicates (the flow's dedupe key seen before, or earlier in the same batch)
and replayed webhook ids itself. If its commit still fails on a unique key (another process
wrote the same key at the same moment), it is rolled back and every delivery in it is written
on its own, exactly as a lone delivery would be.

On SQLite the writer has a connection of its own and awaits the database's write lock
(``write_lock``) before it takes the next batch: while another process writes, the loop goes on
serving requests (SQLite's busy handler would stall it), and the deliveries that arrive
meanwhile join the batch. Holding the lock, it writes and commits the batch without waiting.
A batch that fails closes that connection; the next batch opens another.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from latchflow.intake.events import Accepted, accept_event, new_id
from latchflow.plugin.types import JSON
from latchflow.storage.models import EventRecord, FlowRecord, RunRecord, WebhookReceipt
from latchflow.storage.runqueue import SESSION_KEY, enqueue
from latchflow.storage.store import Store
from latchflow.storage.write_lock import WRITE_LOCK_TIMEOUT, begin_immediate, connect_for_writes

MAX_BATCH = 512
EVENTS = EventRecord.__table__  # type: ignore[attr-defined]
RECEIPTS = WebhookReceipt.__table__  # type: ignore[attr-defined]
RUNS = RunRecord.__table__  # type: ignore[attr-defined]
INSERTS = (RECEIPTS.insert(), EVENTS.insert(), RUNS.insert())
"""Core inserts, built once (each keeps its cache key): cheaper than the ORM's bulk inserts."""


class WebhookIdReplayed(Exception):
    """The delivery's signed ``webhook-id`` was already delivered for this flow."""


@dataclass(frozen=True)
class Delivery:
    """One accepted request for a flow's trigger URL, waiting to be stored."""

    flow: FlowRecord
    data: JSON
    now: datetime
    dedupe_key: str | None = None
    webhook_id: str | None = None


Outcome = Accepted | WebhookIdReplayed


class GroupCommitter:
    """Stores deliveries in batches: one writer, one transaction per batch."""

    def __init__(
        self, store: Store, max_batch: int = MAX_BATCH, lock_timeout: float = WRITE_LOCK_TIMEOUT
    ) -> None:
        self.store = store
        self.max_batch = max_batch
        self.lock_timeout = lock_timeout
        """Seconds a batch waits for SQLite's write lock before each of its deliveries fails."""
        self._sqlite = store.engine.dialect.name == "sqlite"
        self._connection: Connection | None = None
        self._queue: list[tuple[Delivery, asyncio.Future[Outcome]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def accept(self, delivery: Delivery) -> Accepted:
        """Store the delivery's event and run (or find its duplicate) once it is committed."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.append((delivery, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_while_queued(), name="group-commit")
        outcome = await future
        if isinstance(outcome, WebhookIdReplayed):
            raise outcome
        return outcome

    async def write(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """Store a batch in one transaction; on a unique-key race, each delivery on its own."""
        return self._write(await self._batch_session(), deliveries)

    async def close(self) -> None:
        """Let the batch in progress finish, then close the writer's connection."""
        if self._writer is not None:
            await self._writer
        self._close_connection()

    async def _write_while_queued(self) -> None:
        """Write batches until nothing is queued; the next delivery starts a new writer."""
        while self._queue:
            try:
                session = await self._batch_session()
            except Exception as exc:  # the write lock stayed taken: everything queued fails
                waiting = self._take(len(self._queue))
                self._answer(waiting, [exc] * len(waiting))
                continue
            batch = self._take(self.max_batch)
            try:
                outcomes: Sequence[Outcome | Exception] = self._write(
                    session, [d for d, _ in batch]
                )
            except Exception as exc:  # the database failed: each waiting request gets the error
                outcomes = [exc] * len(batch)
            self._answer(batch, outcomes)
            await asyncio.sleep(0)  # let the loop read the requests that arrived meanwhile

    def _take(self, count: int) -> list[tuple[Delivery, asyncio.Future[Outcome]]]:
        batch, self._queue = self._queue[:count], self._queue[count:]
        return batch

    @staticmethod
    def _answer(
        batch: Sequence[tuple[Delivery, asyncio.Future[Outcome]]],
        outcomes: Sequence[Outcome | Exception],
    ) -> None:
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, Exception) and not isinstance(outcome, WebhookIdReplayed):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    async def _batch_session(self) -> AbstractContextManager[Session]:
        """The session a batch is written in. On SQLite, its transaction already holds the
        write lock, on the writer's own connection; the session commits or rolls it back.
        PostgreSQL locks rows, not the database: an ordinary session."""
        if not self._sqlite:
            return self.store.session()
        if self._connection is None:
            self._connection = connect_for_writes(self.store.engine)
            # The accepts' commits never copy the WAL back into the database (10+ ms on the
            # event loop); the run processes' commits and the heartbeat's do it instead.
            self._connection.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
            self._connection.commit()
        try:
            await begin_immediate(self._connection, self.lock_timeout)
        except Exception:
            self._close_connection()
            raise
        return Session(
            self._connection,
            expire_on_commit=False,
            info={SESSION_KEY: self.store.queue},
            join_transaction_mode="control_fully",
        )

    def _write(
        self, batch_session: AbstractContextManager[Session], deliveries: Sequence[Delivery]
    ) -> list[Outcome]:
        try:
            with batch_session as session:
                try:
                    return self._write_batch(session, deliveries)
                except IntegrityError:
                    session.rollback()
        except Exception:
            self._close_connection()
            raise
        return [self._write_one(d) for d in deliveries]

    def _close_connection(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.close()

    def _write_batch(self, session: Session, deliveries: Sequence[Delivery]) -> list[Outcome]:
        firsts = _existing_events(session, deliveries)
        seen_ids = _existing_receipts(session, deliveries)
        outcomes: list[Outcome] = []
        events, runs, receipts, dropped = [], [], [], []
        for d in deliveries:
            flow = d.flow
            if d.webhook_id is not None and (flow.id, d.webhook_id) in seen_ids:
                outcomes.append(WebhookIdReplayed(d.webhook_id))
                continue
            first = firsts.get((flow.id, d.dedupe_key)) if d.dedupe_key is not None else None
            if first is not None:
                event_id, run_id = first
                dropped.append(
                    _event_row(
                        d,
                        new_id(),
                        None,
                        status="duplicate",
                        reason=f"same key {d.dedupe_key!r} as event {event_id}",
                    )
                )
                outcomes.append(Accepted(run_id=run_id, event_id=event_id, created=False))
                continue
            event_id, run_id = new_id(), new_id()
            if d.webhook_id is not None:
                seen_ids.add((flow.id, d.webhook_id))
                receipts.append(
                    {"flow_id": flow.id, "webhook_id": d.webhook_id, "received_at": d.now}
                )
            if d.dedupe_key is not None:
                firsts[(flow.id, d.dedupe_key)] = (event_id, run_id)
            events.append(_event_row(d, event_id, run_id))
            runs.append(
                {
                    "id": run_id,
                    "flow_id": flow.id,
                    "flow_version": flow.version,
                    "event_id": event_id,
                    "status": "queued",
                    "step_index": 0,
                    "due_at": d.now,
                    "created_at": d.now,
                    "updated_at": d.now,
                }
            )
            outcomes.append(Accepted(run_id=run_id, event_id=event_id, created=True))
        connection = session.connection()
        for statement, rows in zip(INSERTS, (receipts, events + dropped, runs), strict=True):
            if rows:
                connection.execute(statement, rows)
        for d, outcome in zip(deliveries, outcomes, strict=True):
            if isinstance(outcome, Accepted) and outcome.created:
                enqueue(session, outcome.run_id, d.now)
        session.commit()
        return outcomes

    def _write_one(self, d: Delivery) -> Outcome:
        with self.store.session() as session:
            if d.webhook_id is not None:
                session.add(
                    WebhookReceipt(flow_id=d.flow.id, webhook_id=d.webhook_id, received_at=d.now)
                )
                try:
                    session.flush()
                except IntegrityError:
                    session.rollback()
                    return WebhookIdReplayed(d.webhook_id)
            return accept_event(session, d.flow, d.data, d.now, d.dedupe_key)


def _event_row(
    d: Delivery,
    event_id: str,
    run_id: str | None,
    status: str = "accepted",
    reason: str | None = None,
) -> dict[str, object]:
    return {
        "id": event_id,
        "flow_id": d.flow.id,
        "trigger": d.flow.trigger_type,
        "dedupe_key": d.dedupe_key if status == "accepted" else None,
        "source_key": d.dedupe_key,
        "status": status,
        "reason": reason,
        "run_id": run_id,
        "data": d.data,
        "received_at": d.now,
    }


def _existing_events(
    session: Session, deliveries: Sequence[Delivery]
) -> dict[tuple[str, str | None], tuple[str, str]]:
    """(flow id, dedupe key) → (event id, run id) of accepted events with the batch's keys."""
    keyed = {(d.flow.id, d.dedupe_key) for d in deliveries if d.dedupe_key is not None}
    if not keyed:
        return {}
    rows = session.execute(
        select(EVENTS.c.flow_id, EVENTS.c.dedupe_key, EVENTS.c.id, EVENTS.c.run_id)
        .where(EVENTS.c.flow_id.in_({flow_id for flow_id, _ in keyed}))
        .where(EVENTS.c.dedupe_key.in_({key for _, key in keyed}))
    )
    return {(f, k): (e, r or "") for f, k, e, r in rows if (f, k) in keyed}


def _existing_receipts(session: Session, deliveries: Sequence[Delivery]) -> set[tuple[str, str]]:
    wanted = {(d.flow.id, d.webhook_id) for d in deliveries if d.webhook_id is not None}
    if not wanted:
        return set()
    rows = session.execute(
        select(RECEIPTS.c.flow_id, RECEIPTS.c.webhook_id).where(
            tuple_(RECEIPTS.c.flow_id, RECEIPTS.c.webhook_id).in_(wanted)
        )
    )
    return {(f, w) for f, w in rows}
