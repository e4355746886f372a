"""Concurrent deliveries share transactions and still get the answers a lone delivery would."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, event
from sqlalchemy.exc import OperationalError
from sqlmodel import col, func, select

from latchflow.engine import Engine
from latchflow.storage.events import Accepted, Delivery, EventWriter, Outcome
from latchflow.storage.models import EventRecord, FlowRecord, RunRecord, WebhookReceipt
from latchflow.storage.write_lock import WriteLockTimeout

from .conftest import webhook_flow
from .test_hooks import hook_url


async def test_simultaneous_deliveries_each_get_their_own_committed_run(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    engine.install_flow(webhook_flow())
    url = hook_url(engine)
    answers = await asyncio.gather(*(client.post(url, json={"n": n}) for n in range(40)))
    assert {a.status_code for a in answers} == {202}
    run_ids = {a.json()["run_id"] for a in answers}
    assert len(run_ids) == 40
    with engine.store.session() as session:
        stored = set(session.exec(select(RunRecord.id)))
        bodies = [e.data["body"]["n"] for e in session.exec(select(EventRecord))]
    assert stored == run_ids and sorted(bodies) == list(range(40))


async def test_one_idempotency_key_in_one_batch_starts_one_run(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    engine.install_flow(webhook_flow())
    url = hook_url(engine)
    answers = await asyncio.gather(
        *(client.post(url, json={"n": n}, headers={"Idempotency-Key": "same"}) for n in range(8))
    )
    assert sorted(a.status_code for a in answers) == [200] * 7 + [202]
    assert len({a.json()["run_id"] for a in answers}) == 1
    with engine.store.session() as session:
        runs = session.exec(select(func.count()).select_from(RunRecord)).one()
        duplicates = session.exec(
            select(func.count()).where(col(EventRecord.status) == "duplicate")
        ).one()
    assert (runs, duplicates) == (1, 7)


async def test_a_batch_answers_duplicates_and_replays_like_lone_deliveries(engine: Engine) -> None:
    engine.install_flow(webhook_flow())
    record = engine.store.get_flow("hooked")
    assert record is not None
    now = engine.clock.now()
    committer = EventWriter(engine.store.engine, engine.store.queue)
    (first,) = await committer.batches.write([Delivery(record, {"n": 0}, now, "k", "msg_1")])
    inserts: list[str] = []

    def count_inserts(_db: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO events"):
            inserts.append(statement)

    event.listen(engine.store.engine, "before_cursor_execute", count_inserts)
    outcomes = await committer.batches.write(
        [
            Delivery(record, {"n": 1}, now, "k", "msg_2"),  # a known key: the first run, 200
            Delivery(record, {"n": 2}, now, "k2", "msg_1"),  # a known webhook id: the first run
            Delivery(record, {"n": 3}, now, None, "msg_3"),
            Delivery(record, {"n": 4}, now, None, "msg_3"),  # the same id within the batch
        ]
    )
    event.remove(engine.store.engine, "before_cursor_execute", count_inserts)
    await committer.close()
    assert len(inserts) == 1, "the batch was not written in one transaction"
    assert isinstance(first, Accepted) and first.created
    duplicate, replayed, fresh, replayed_again = (answer(o) for o in outcomes)
    assert (duplicate.run_id, duplicate.created) == (first.run_id, False)
    assert (replayed.run_id, replayed.event_id, replayed.created) == (
        first.run_id,
        first.event_id,
        False,
    )
    assert fresh.created and fresh.run_id != first.run_id
    assert (replayed_again.run_id, replayed_again.created) == (fresh.run_id, False)
    with engine.store.session() as session:
        assert session.exec(select(func.count()).select_from(RunRecord)).one() == 2
        receipts = {r.webhook_id: r.run_id for r in session.exec(select(WebhookReceipt))}
        reasons = session.exec(
            select(EventRecord.reason).where(col(EventRecord.status) == "duplicate")
        ).all()
    assert receipts == {"msg_1": first.run_id, "msg_3": fresh.run_id}
    assert sorted(str(r).split(" as ")[0] for r in reasons) == [
        "same key 'k'",
        "same webhook-id 'msg_1'",
        "same webhook-id 'msg_3'",
    ]


def answer(outcome: Outcome | Exception) -> Accepted:
    assert isinstance(outcome, Accepted), outcome
    return outcome


async def test_a_receipt_stored_without_its_run_finds_the_run_by_its_event(
    engine: Engine,
) -> None:
    engine.install_flow(webhook_flow())
    record = engine.store.get_flow("hooked")
    assert record is not None
    committer = EventWriter(engine.store.engine, engine.store.queue)
    data = {"body": {}, "headers": {"webhook-id": "msg_1"}}
    other = {"body": {}, "headers": {"webhook-id": "msg_2"}}
    now = engine.clock.now()
    first, _ = await committer.batches.write(
        [Delivery(record, data, now, None, "msg_1"), Delivery(record, other, now, None, "msg_2")]
    )
    with engine.store.engine.begin() as db:  # as receipts were stored before migration 0005
        db.exec_driver_sql("UPDATE webhook_receipts SET run_id = NULL")
    (again,) = await committer.batches.write([Delivery(record, data, now, None, "msg_1")])
    await committer.close()
    assert (answer(again).run_id, answer(again).created) == (answer(first).run_id, False)
    assert stored_runs(engine) == 2


@pytest.fixture
def hooked(engine: Engine) -> FlowRecord:
    engine.install_flow(webhook_flow())
    record = engine.store.get_flow("hooked")
    assert record is not None
    return record


@pytest.fixture
async def committer(engine: Engine) -> AsyncIterator[EventWriter]:
    committer = EventWriter(engine.store.engine, engine.store.queue, lock_timeout=0.05)
    yield committer
    await committer.close()


def hold_write_lock(engine: Engine) -> sqlite3.Connection:
    """Another connection (as the run process's would) in a write transaction."""
    holder = sqlite3.connect(str(engine.store.engine.url.database), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def stored_runs(engine: Engine) -> int:
    with engine.store.session() as session:
        return session.exec(select(func.count()).select_from(RunRecord)).one()


async def test_a_delivery_awaits_the_write_lock_while_the_loop_goes_on(
    engine: Engine, hooked: FlowRecord
) -> None:
    committer = EventWriter(engine.store.engine, engine.store.queue)
    holder = hold_write_lock(engine)
    delivery = asyncio.create_task(committer.accept(Delivery(hooked, {}, engine.clock.now())))
    longest_tick = 0.0
    for _ in range(20):  # SQLite's busy handler would stall the loop while it waits
        started = time.monotonic()
        await asyncio.sleep(0.002)
        longest_tick = max(longest_tick, time.monotonic() - started)
    assert not delivery.done() and longest_tick < 1.0
    holder.execute("ROLLBACK")  # released from the loop: only a loop that kept running gets here
    holder.close()
    accepted = await asyncio.wait_for(delivery, timeout=10)
    await committer.close()
    assert accepted.created and stored_runs(engine) == 1


async def test_a_lock_held_too_long_fails_the_waiting_deliveries_and_the_next_is_stored(
    engine: Engine, hooked: FlowRecord, committer: EventWriter
) -> None:
    now = engine.clock.now()
    holder = hold_write_lock(engine)
    failed = await asyncio.gather(
        *(committer.accept(Delivery(hooked, {"n": n}, now)) for n in range(3)),
        return_exceptions=True,
    )
    holder.execute("ROLLBACK")
    holder.close()
    assert all(isinstance(f, WriteLockTimeout) for f in failed)
    assert "held the write lock for more than 0.05 s" in str(failed[0])
    accepted = await committer.accept(Delivery(hooked, {"n": 3}, now))
    assert accepted.created and stored_runs(engine) == 1


async def test_a_broken_connection_fails_its_batch_and_the_next_batch_is_stored(
    engine: Engine, hooked: FlowRecord, committer: EventWriter
) -> None:
    broken: list[Connection] = []

    def break_the_writer(connection: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO events") and not broken:
            broken.append(connection)
        if connection in broken:
            raise sqlite3.OperationalError("disk I/O error")

    event.listen(engine.store.engine, "before_cursor_execute", break_the_writer)
    now = engine.clock.now()
    with pytest.raises(OperationalError, match="disk I/O error"):
        await committer.accept(Delivery(hooked, {"n": 1}, now))
    hold_write_lock(engine).close()  # the failed batch did not keep the lock
    accepted = await committer.accept(Delivery(hooked, {"n": 2}, now))
    event.remove(engine.store.engine, "before_cursor_execute", break_the_writer)
    assert accepted.created and stored_runs(engine) == 1
