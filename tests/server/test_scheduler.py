"""Schedules (one run per tick, catch-up after downtime) and polling (cursor with the runs)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

from latchflow.backends.embedded.clock import Scheduler
from latchflow.engine import Engine
from latchflow.plugin.clock import FakeClock
from latchflow.server.state import ServerState
from latchflow.storage.models import EventRecord, PollCursor, RunRecord

from . import fakeplugin


def schedule_flow(catch_up: str = "once", **schedule: Any) -> dict[str, Any]:
    return {
        "id": "sched",
        "name": "Every minute",
        "version": 1,
        "trigger": {"type": "schedule", "input": {**schedule, "catch_up": catch_up}},
        "steps": [{"id": "c", "action": "test.count"}],
    }


def events(engine: Engine, status: str | None = None) -> list[EventRecord]:
    with engine.store.session() as session:
        rows = list(session.exec(select(EventRecord)))
    return [e for e in rows if status is None or e.status == status]


def runs(engine: Engine) -> list[RunRecord]:
    with engine.store.session() as session:
        return list(session.exec(select(RunRecord)))


async def install_front_door_poll(engine: Engine) -> None:
    """An acme connection and a flow polling it for the front door's openings."""
    await engine.connections.save("acme-1", "acme", "Acme", {"api_key": "k"})
    engine.install_flow(
        {
            "id": "front",
            "name": "Front door",
            "version": 1,
            "trigger": {"type": "acme.door_opened", "poll": True, "input": {"door": "front"}},
            "steps": [{"id": "c", "action": "test.count"}],
        }
    )


async def test_two_fires_of_the_same_tick_give_one_run(
    engine: Engine, state: ServerState, clock: FakeClock
) -> None:
    engine.install_flow(schedule_flow(interval_seconds=60))
    tick = clock.now().replace(second=0)
    first = state.scheduler.fire("sched", tick)
    second = Scheduler(engine.store, engine.registry, engine.connections, state.dispatcher).fire(
        "sched", tick
    )
    assert first.created and not second.created and first.run_id == second.run_id
    assert len(runs(engine)) == 1
    (duplicate,) = events(engine, "duplicate")
    assert "schedule:sched:" in (duplicate.reason or "")


async def test_fire_due_fires_each_tick_once(
    engine: Engine, state: ServerState, clock: FakeClock
) -> None:
    engine.install_flow(schedule_flow(interval_seconds=60))
    clock.set(clock.now().replace(second=30))
    assert state.scheduler.fire_due("sched") == []  # a new schedule starts from now
    clock.advance(31)  # just past the next minute
    (accepted,) = state.scheduler.fire_due("sched")
    assert state.scheduler.fire_due("sched") == []
    assert (
        Scheduler(engine.store, engine.registry, engine.connections, state.dispatcher).fire_due(
            "sched"
        )
        == []
    )
    await state.dispatcher.drain()
    assert {f"{accepted.run_id}:c": 1} == fakeplugin.EFFECTS
    event = events(engine, "accepted")[0]
    assert event.data["scheduled_for"].endswith(":00+00:00")


@pytest.mark.parametrize("catch_up", ["once", "skip"])
async def test_a_late_look_fires_every_tick_of_the_last_minute(
    engine: Engine, state: ServerState, clock: FakeClock, catch_up: str
) -> None:
    engine.install_flow(schedule_flow(catch_up, interval_seconds=1))
    clock.set(clock.now().replace(microsecond=0))
    state.scheduler.fire_due("sched")
    clock.advance(3.5)  # a busy node looked 3.5 s later: not downtime, nothing may be skipped
    fired = state.scheduler.fire_due("sched")
    assert len(fired) == 3 and all(a.created for a in fired)
    ticks = sorted(e.data["scheduled_for"] for e in events(engine, "accepted"))
    assert len(set(ticks)) == 3
    assert state.scheduler.fire_due("sched") == []


@pytest.mark.parametrize(("catch_up", "expected"), [("once", 1), ("skip", 0)])
async def test_missed_fires_after_downtime(
    engine: Engine, state: ServerState, clock: FakeClock, catch_up: str, expected: int
) -> None:
    engine.install_flow(schedule_flow(catch_up, cron="*/5 * * * *", timezone="Europe/Oslo"))
    clock.set(clock.now().replace(minute=0, second=10))
    state.scheduler.fire_due("sched")
    clock.advance(3600)  # down for an hour: 12 ticks missed
    assert len(state.scheduler.fire_due("sched")) == expected
    assert len(runs(engine)) == expected
    clock.advance(300)  # the next tick on time fires either way
    assert len(state.scheduler.fire_due("sched")) == 1


async def test_scheduler_jobs_are_rebuilt_from_the_database(
    engine: Engine, state: ServerState
) -> None:
    engine.install_flow(schedule_flow(interval_seconds=60))
    poll_flow = {
        "id": "polled",
        "name": "Polled doors",
        "version": 1,
        "trigger": {"type": "acme.door_opened", "poll": True},
        "steps": [{"id": "c", "action": "test.count"}],
    }
    engine.install_flow(poll_flow)
    await state.scheduler.start()
    try:
        assert set(state.scheduler.jobs()) == {"wake", "schedule:sched", "poll:polled"}
        await state.dispatcher.start()  # not needed for jobs; checks start/stop together
        await state.dispatcher.stop()
    finally:
        state.scheduler.shutdown()


async def test_the_clock_fires_a_schedule_when_its_tick_comes_and_stops_when_disabled(
    engine: Engine, state: ServerState, clock: FakeClock
) -> None:
    engine.install_flow(schedule_flow(interval_seconds=1))
    await state.scheduler.start()
    try:
        with engine.store.session() as session:
            assert session.get(PollCursor, "sched") is not None  # started from now
        assert runs(engine) == []
        clock.advance(1)  # the tick is due: the clock's job (APScheduler's "due") fires it
        await state.scheduler.run_due()
        assert len(runs(engine)) == 1
        engine.install_flow({**schedule_flow(interval_seconds=1), "version": 2, "enabled": False})
        state.flows_changed()
        assert state.scheduler.jobs() == ["wake"]
    finally:
        state.scheduler.shutdown()


async def test_the_clock_polls_a_polled_flow_at_start(engine: Engine, state: ServerState) -> None:
    await install_front_door_poll(engine)
    await state.scheduler.start()
    try:
        for _ in range(60):
            with engine.store.session() as session:
                cursor = session.get(PollCursor, "front")
            if cursor is not None:
                break
            await asyncio.sleep(0.05)
        assert cursor is not None and cursor.cursor == {"poll": {"seen": 0}}
    finally:
        state.scheduler.shutdown()


@pytest.mark.parametrize(("catch_up", "expected"), [("once", 1), ("skip", 0)])
async def test_start_after_downtime_catches_up_per_catch_up(
    engine: Engine, state: ServerState, clock: FakeClock, catch_up: str, expected: int
) -> None:
    engine.install_flow(schedule_flow(catch_up, cron="*/5 * * * *"))
    await state.scheduler.start()
    state.scheduler.shutdown()
    clock.advance(3600)  # down for an hour
    await state.scheduler.start()
    try:
        assert len(runs(engine)) == expected
        assert "schedule:sched" in state.scheduler.jobs()
    finally:
        state.scheduler.shutdown()


async def test_polling_commits_cursor_with_runs_dedupes_and_filters(
    engine: Engine, state: ServerState
) -> None:
    await install_front_door_poll(engine)
    fakeplugin.FEED.append({"id": "old", "door": "front"})
    assert await state.scheduler.poll_flow("front") == []  # first poll: cursor only
    fakeplugin.FEED.extend([{"id": "e1", "door": "front"}, {"id": "e2", "door": "back"}])
    (accepted,) = await state.scheduler.poll_flow("front")
    assert accepted.created
    with engine.store.session() as session:
        cursor = session.get(PollCursor, "front")
        assert cursor is not None and cursor.cursor == {"poll": {"seen": 3}}
        cursor.cursor = {"poll": {"seen": 1}}  # as if that commit was lost: e1 comes again...
        session.add(cursor)
        session.commit()
    again = await state.scheduler.poll_flow("front")
    assert [a.created for a in again] == [False]  # ...and is deduped by its event id
    assert len(runs(engine)) == 1
    filtered = events(engine, "filtered")
    assert filtered and all(
        "door" in (e.reason or "") or "match" in (e.reason or "") for e in filtered
    )


async def test_a_rate_limited_poll_leaves_the_account_alone_until_retry_after(
    engine: Engine, state: ServerState, clock: FakeClock
) -> None:
    await install_front_door_poll(engine)
    assert await state.scheduler.poll_flow("front") == []  # first poll: cursor only
    fakeplugin.FEED.append({"id": "e1", "door": "front"})
    fakeplugin.POLL_LIMITS.append(120)
    assert await state.scheduler.poll_flow("front") == []  # 429: nothing stored
    assert engine.connections.holds.held_until("acme-1") == clock.now() + timedelta(seconds=120)
    fakeplugin.POLL_LIMITS.append(120)  # a poll now would get another 429...
    clock.advance(119)
    assert await state.scheduler.poll_flow("front") == []
    assert fakeplugin.POLL_LIMITS == [120]  # ...but none was sent during the cool-down
    fakeplugin.POLL_LIMITS.clear()
    clock.advance(1)
    (accepted,) = await state.scheduler.poll_flow("front")
    assert accepted.created and len(runs(engine)) == 1
