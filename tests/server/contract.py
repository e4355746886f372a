"""Dispatch backend contract: what every backend must do, written once, run against each.

Each check takes an engine (FakeClock, the test plugin loaded) and a dispatcher built for it,
and steps time with the clock instead of sleeping. ``test_dispatch_contract.py`` runs them
for every backend in its BACKENDS table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import update
from sqlmodel import col

from latchflow.backends.base import Dispatcher
from latchflow.backends.embedded.clock import Scheduler
from latchflow.engine import Engine
from latchflow.plugin.clock import FakeClock
from latchflow.storage.models import RunRecord

from . import fakeplugin

BackendFactory = Callable[[Engine], Dispatcher]


def flow(
    flow_id: str, steps: list[dict[str, Any]], trigger: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "id": flow_id,
        "name": flow_id,
        "version": 1,
        "trigger": trigger or {"type": "manual"},
        "steps": steps,
    }


def clock_for(engine: Engine, dispatcher: Dispatcher) -> Scheduler:
    """An embedded clock on the engine's parts, waking ``dispatcher``."""
    return Scheduler(engine.store, engine.registry, engine.connections, dispatcher)


def status(engine: Engine, run_id: str) -> str:
    run = engine.run(run_id)
    assert run is not None
    return run.status


async def exactly_once_fire(engine: Engine, dispatcher: Dispatcher, clock: FakeClock) -> None:
    """Two schedulers firing the same tick produce one run, whose step runs once."""
    engine.install_flow(
        flow(
            "tick",
            [{"id": "c", "action": "test.count"}],
            {"type": "schedule", "input": {"interval_seconds": 60}},
        )
    )
    one, other = clock_for(engine, dispatcher), clock_for(engine, dispatcher)
    tick = clock.now().replace(second=0, microsecond=0)
    first, second = one.fire("tick", tick), other.fire("tick", tick)
    assert first.created and not second.created and second.run_id == first.run_id
    await dispatcher.drain()
    await dispatcher.drain()
    assert status(engine, first.run_id) == "succeeded"
    assert {f"{first.run_id}:c": 1} == fakeplugin.EFFECTS


async def crash_resume(engine: Engine, dispatcher: Dispatcher, clock: FakeClock) -> None:
    """A run left claimed and running by a dead process resumes at its unfinished step."""
    engine.install_flow(
        flow(
            "resume",
            [
                {"id": "a", "action": "test.count"},
                {"id": "wait", "action": "core.delay", "input": {"seconds": 10}},
                {"id": "b", "action": "test.count"},
            ],
        )
    )
    run_id = engine.start("resume", {}).run_id
    await dispatcher.drain()
    assert status(engine, run_id) == "waiting"
    with engine.store.session() as session:  # as a killed node leaves it: claimed, mid-step
        session.execute(
            update(RunRecord)
            .where(col(RunRecord.id) == run_id)
            .values(
                status="running",
                claimed_by="dead-node",
                claimed_until=clock.now().replace(year=2100),
            )
        )
        session.commit()
    clock.advance(10)
    await dispatcher.start()
    try:
        await dispatcher.drain()
    finally:
        await dispatcher.stop(grace_seconds=5)
    assert status(engine, run_id) == "succeeded"
    assert {f"{run_id}:a": 1, f"{run_id}:b": 1} == fakeplugin.EFFECTS


async def durable_delay(engine: Engine, dispatcher: Dispatcher, clock: FakeClock) -> None:
    """A delay releases the worker and the run continues when the stored time comes."""
    engine.install_flow(
        flow(
            "later",
            [
                {"id": "wait", "action": "core.delay", "input": {"seconds": 60}},
                {"id": "c", "action": "test.count"},
            ],
        )
    )
    run_id = engine.start("later", {}).run_id
    await dispatcher.drain()
    assert status(engine, run_id) == "waiting" and not fakeplugin.EFFECTS
    clock.advance(59)
    await dispatcher.drain()
    assert status(engine, run_id) == "waiting" and not fakeplugin.EFFECTS
    clock.advance(1)
    await dispatcher.drain()
    assert status(engine, run_id) == "succeeded"
    assert {f"{run_id}:c": 1} == fakeplugin.EFFECTS


async def durable_retry(engine: Engine, dispatcher: Dispatcher, clock: FakeClock) -> None:
    """A retryable failure waits its retry_after (stored), then the step succeeds."""
    engine.install_flow(
        flow("retry", [{"id": "f", "action": "test.flaky", "input": {"failures": 2}}])
    )
    run_id = engine.start("retry", {}).run_id
    await dispatcher.drain()
    assert status(engine, run_id) == "waiting"
    clock.advance(29)
    await dispatcher.drain()
    assert fakeplugin.FLAKY[f"{run_id}:f"] == 1
    clock.advance(1)
    await dispatcher.drain()
    assert fakeplugin.FLAKY[f"{run_id}:f"] == 2 and status(engine, run_id) == "waiting"
    clock.advance(30)
    await dispatcher.drain()
    assert status(engine, run_id) == "succeeded"
    detail = engine.run(run_id)
    assert detail is not None and detail.output == {"count": 3}


CONTRACT = [exactly_once_fire, crash_resume, durable_delay, durable_retry]
