"""Concurrent deliveries share transactions and still get the answers a lone delivery would."""

from __future__ import annotations

import asyncio

import httpx
from sqlmodel import col, func, select

from latchflow.core.engine import Engine
from latchflow.core.group_commit import Delivery, GroupCommitter, WebhookIdReplayed
from latchflow.core.models import EventRecord, RunRecord

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
    first = GroupCommitter(engine.store).write([Delivery(record, {"n": 0}, now, "k", "msg_1")])
    outcomes = GroupCommitter(engine.store).write(
        [
            Delivery(record, {"n": 1}, now, "k", "msg_2"),  # a known key: the first run, 200
            Delivery(record, {"n": 2}, now, None, "msg_1"),  # a known webhook id: replayed
            Delivery(record, {"n": 3}, now, None, "msg_3"),
            Delivery(record, {"n": 4}, now, None, "msg_3"),  # the same id within the batch
        ]
    )
    duplicate, replayed, fresh, replayed_again = outcomes
    assert not isinstance(first[0], WebhookIdReplayed)
    assert not isinstance(duplicate, WebhookIdReplayed) and not duplicate.created
    assert duplicate.run_id == first[0].run_id
    assert isinstance(replayed, WebhookIdReplayed) and isinstance(replayed_again, WebhookIdReplayed)
    assert not isinstance(fresh, WebhookIdReplayed) and fresh.created
    with engine.store.session() as session:
        assert session.exec(select(func.count()).select_from(RunRecord)).one() == 2
