"""A vendor's 429 on one connection slows that connection, not the others (and holds no worker)."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlmodel import select

from latchflow.backends.embedded.dispatcher import EmbeddedDispatcher
from latchflow.engine import Engine
from latchflow.plugin.clock import FakeClock
from latchflow.plugin.errors import RateLimitedError
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


async def test_a_429_cools_down_its_connection_while_others_keep_running(
    engine: Engine, acme: AcmePlugin, clock: FakeClock
) -> None:
    setup_two_connections(engine)
    dispatcher = EmbeddedDispatcher(engine.executor, clock, workers=4)
    acme.fail_next("busy", RateLimitedError("acme answered 429", retry_after=60))
    limited = engine.start("on-busy", {}).run_id
    await dispatcher.drain()
    cool_end = engine.connections.cooling_until("busy")
    assert cool_end is not None and (cool_end - clock.now()).total_seconds() == 60
    assert status(engine, limited) == ("waiting", cool_end)  # the step retries at the same time

    clock.advance(10)
    held = [engine.start("on-busy", {"n": n}).run_id for n in range(3)]
    others = [engine.start("on-calm", {"n": n}).run_id for n in range(5)]
    await dispatcher.drain()
    assert [status(engine, r)[0] for r in others] == ["succeeded"] * 5
    assert calls_on(acme, "calm") == 5
    # the busy connection's new runs were not called: they wait for the end of the cool-down,
    # without a worker and without spending one of their attempts
    assert calls_on(acme, "busy") == 0
    assert [status(engine, r) for r in held] == [("waiting", cool_end)] * 3
    assert [attempts(engine, r) for r in held] == [0, 0, 0]
    shown = f"connection cooling down after a rate limit until {cool_end.isoformat()}"
    assert [step_shown(engine, r) for r in held] == [("retrying", shown)] * 3
    assert dispatcher.in_flight == 0

    clock.advance(49)
    await dispatcher.drain()
    assert calls_on(acme, "busy") == 0
    assert engine.connections.cooling_until("busy") == cool_end

    clock.advance(1)
    await dispatcher.drain()
    assert engine.connections.cooling_until("busy") is None
    assert [status(engine, r)[0] for r in [limited, *held]] == ["succeeded"] * 4
    assert calls_on(acme, "busy") == 4
    assert attempts(engine, limited) == 2 and [attempts(engine, r) for r in held] == [1, 1, 1]


async def test_a_call_waiting_for_a_slot_when_the_429_arrives_waits_for_the_cool_down(
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
    assert not task.done()  # past the cool-down check, queued for a slot
    until = engine.connections.cool_down("busy", 30)  # one of those calls got a 429
    for _ in range(slots):
        live.slots.release()
    assert await task == "waiting"
    assert status(engine, run_id) == ("waiting", until)
    assert calls_on(acme, "busy") == 0 and attempts(engine, run_id) == 0
