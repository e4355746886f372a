"""A vendor's 429 or outage on one connection holds that connection, not the others (and holds no
worker); every process sees the hold."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlmodel import select

from latchflow.backends.embedded.dispatcher import EmbeddedDispatcher
from latchflow.engine import Engine
from latchflow.plugin.clock import FakeClock
from latchflow.plugin.errors import RateLimitedError, RetryableError
from latchflow.plugin.host import Registry
from latchflow.runs.connections import RELEASES_PER_SLOT
from latchflow.runs.holds import OUTAGE_AFTER, REFRESH_SECONDS
from latchflow.storage.models import StepRecord

from .support import AcmePlugin, flow

CONFIG = {"api_key": "acme-key", "api_secret": "s3cret"}


def setup_two_connections(engine: Engine) -> None:
    vendor = engine.registry.vendors["acme"]
    for connection_id in ("busy", "calm"):
        engine.store.save_connection(connection_id, vendor, connection_id, CONFIG)
        engine.install_flow(
            flow(
                [
                    {
                        "id": "call",
                        "action": "acme.connected",
                        "connection": connection_id,
                        "input": {"name": connection_id},
                    }
                ],
                id=f"on-{connection_id}",
            )
        )


def calls_on(acme: AcmePlugin, connection_id: str) -> int:
    return sum(1 for _, call in acme.calls if call.get("connection") == connection_id)


def status(engine: Engine, run_id: str) -> tuple[str, datetime | None]:
    run = engine.run(run_id)
    assert run is not None
    return run.status, run.due_at


def step_shown(engine: Engine, run_id: str) -> tuple[str, str | None]:
    with engine.store.session() as session:
        step = session.exec(select(StepRecord).where(StepRecord.run_id == run_id)).one()
        return step.status, step.error


def attempts(engine: Engine, run_id: str) -> int:
    with engine.store.session() as session:
        return session.exec(select(StepRecord.attempts).where(StepRecord.run_id == run_id)).one()


def pace(engine: Engine, limits: int) -> timedelta:
    """How far apart a hold releases the runs it kept waiting after ``limits`` 429s in a row
    (each halves the rate, from RELEASES_PER_SLOT times the vendor's concurrency a second)."""
    rate = RELEASES_PER_SLOT * engine.registry.vendors["acme"].max_concurrency / 2**limits
    return timedelta(seconds=1 / rate)


async def test_a_429_holds_its_connection_while_others_keep_running(
    engine: Engine, acme: AcmePlugin, clock: FakeClock
) -> None:
    setup_two_connections(engine)
    dispatcher = EmbeddedDispatcher(engine.executor, clock, workers=4)
    acme.fail_next("busy", RateLimitedError("acme answered 429", retry_after=60))
    limited = engine.start("on-busy", {}).run_id
    await dispatcher.drain()
    hold_end = engine.connections.holds.held_until("busy")
    assert hold_end is not None and (hold_end - clock.now()).total_seconds() == 60
    assert status(engine, limited) == ("waiting", hold_end)  # the step retries at the end
    assert attempts(engine, limited) == 0  # the vendor asked it to wait: not an attempt

    clock.advance(10)
    held = [engine.start("on-busy", {"n": n}).run_id for n in range(3)]
    others = [engine.start("on-calm", {"n": n}).run_id for n in range(5)]
    await dispatcher.drain()
    assert [status(engine, r)[0] for r in others] == ["succeeded"] * 5
    assert calls_on(acme, "calm") == 5
    # the busy connection's new runs were not called: they wait for the end of the hold,
    # without a worker and without spending one of their attempts, and are released one
    # after another, not all at once
    assert calls_on(acme, "busy") == 0
    slots = [hold_end + pace(engine, 1) * n for n in (1, 2, 3)]  # in whichever order they ran
    assert sorted(status(engine, r) for r in held) == [("waiting", slot) for slot in slots]
    assert [attempts(engine, r) for r in held] == [0, 0, 0]
    shown = [f"the connection is held (rate limit or outage) until {s.isoformat()}" for s in slots]
    assert sorted(step_shown(engine, r) for r in held) == [("retrying", t) for t in shown]
    assert dispatcher.in_flight == 0

    clock.advance(49)
    await dispatcher.drain()
    assert calls_on(acme, "busy") == 0
    assert engine.connections.holds.held_until("busy") == hold_end

    clock.advance(1)
    await dispatcher.drain()
    assert engine.connections.holds.held_until("busy") is None
    assert status(engine, limited)[0] == "succeeded" and calls_on(acme, "busy") == 1
    clock.advance(1)
    await dispatcher.drain()
    assert [status(engine, r)[0] for r in [limited, *held]] == ["succeeded"] * 4
    assert calls_on(acme, "busy") == 4
    assert attempts(engine, limited) == 1 and [attempts(engine, r) for r in held] == [1, 1, 1]


async def test_a_call_waiting_for_a_slot_when_the_429_arrives_waits_for_the_hold(
    engine: Engine, acme: AcmePlugin, clock: FakeClock
) -> None:
    setup_two_connections(engine)
    live = await engine.connections.get("busy")
    slots = engine.registry.vendors["acme"].max_concurrency
    for _ in range(slots):  # every slot is taken by calls already at the vendor
        await live.slots.acquire()
    run_id = engine.start("on-busy", {}).run_id
    task = asyncio.create_task(engine.executor.execute(run_id))
    for _ in range(100):
        await asyncio.sleep(0)
    assert not task.done()  # past the hold check, queued for a slot
    until = engine.connections.holds.rate_limited("busy", 30, "429")  # one of those calls got it
    for _ in range(slots):
        live.slots.release()
    assert await task == "waiting"
    assert status(engine, run_id) == ("waiting", until)
    assert calls_on(acme, "busy") == 0 and attempts(engine, run_id) == 0


async def test_an_outage_opens_the_breaker_one_probe_then_the_runs_go_on(
    engine: Engine, acme: AcmePlugin, clock: FakeClock
) -> None:
    setup_two_connections(engine)
    dispatcher = EmbeddedDispatcher(engine.executor, clock, workers=1)
    down = [RetryableError("acme answered 502", status=502) for _ in range(OUTAGE_AFTER + 1)]
    acme.fail_next("busy", *down)
    runs = [engine.start("on-busy", {"n": n}).run_id for n in range(20)]
    await dispatcher.drain()
    # five failures in a row open the breaker: the other runs wait without calling
    assert calls_on_vendor(acme) == OUTAGE_AFTER
    hold_end = engine.connections.holds.held_until("busy")
    assert hold_end is not None and (hold_end - clock.now()).total_seconds() == 15
    assert sum(attempts(engine, r) for r in runs) == OUTAGE_AFTER
    calm = engine.start("on-calm", {}).run_id
    await dispatcher.drain()
    assert status(engine, calm)[0] == "succeeded"  # another connection is not held

    # the hold ends: one call probes, and fails: the breaker opens again, for longer
    clock.set(hold_end)
    await dispatcher.drain()
    assert calls_on_vendor(acme) == OUTAGE_AFTER + 1
    second_end = engine.connections.holds.held_until("busy")
    assert second_end is not None and (second_end - clock.now()).total_seconds() == 30

    # the vendor is back: the probe succeeds, the breaker closes, every run succeeds
    for _ in range(40):
        clock.advance(15)
        await dispatcher.drain()
    assert [status(engine, r)[0] for r in runs] == ["succeeded"] * 20
    assert engine.connections.holds.held_until("busy") is None
    assert calls_on_vendor(acme) == OUTAGE_AFTER + 1


def calls_on_vendor(acme: AcmePlugin) -> int:
    """Calls on the busy connection that failed (the failures the test queued and used)."""
    return OUTAGE_AFTER + 1 - len(acme.failures.get("busy", []))


async def test_a_hold_is_seen_by_every_process(
    engine: Engine, registry: Registry, clock: FakeClock
) -> None:
    other = Engine(engine.settings, registry=registry, clock=clock)
    try:
        until = engine.connections.holds.rate_limited("busy", 60, "429")
        clock.advance(REFRESH_SECONDS)
        assert other.connections.holds.held_until("busy") == until
    finally:
        await other.close()


async def test_429s_in_a_row_slow_the_releases_and_calls_that_go_through_speed_them_up(
    engine: Engine, clock: FakeClock
) -> None:
    holds, rate = engine.connections.holds, 16.0
    for _ in range(3):
        until = holds.rate_limited("busy", 1, "acme answered 429")
    first, second = holds.admit("busy", rate), holds.admit("busy", rate)
    assert first == until and second is not None
    assert (second - first).total_seconds() == 2**3 / rate  # a run every half second

    clock.set(until)
    assert holds.admit("busy", rate) is None  # the hold is over: calls go out
    for _ in range(16):
        holds.succeeded("busy")
    until = holds.rate_limited("busy", 1, "acme answered 429 again")
    first, second = holds.admit("busy", rate), holds.admit("busy", rate)
    assert first is not None and second is not None
    assert (second - first).total_seconds() == 2 / rate  # back to full speed, halved once
