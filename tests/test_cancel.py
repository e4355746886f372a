"""Cancel means stop: a run cancelled (or whose flow is deleted) while a step is in flight starts
no further step, keeps the step that finished, and ends cancelled with the reason."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from latchflow import JSON, Action, RunContext, hookimpl
from latchflow.backends.embedded.dispatcher import EmbeddedDispatcher
from latchflow.engine import Engine
from latchflow.plugin.clock import FakeClock
from latchflow.runs.history import cancel_run, run_detail
from latchflow.storage.database import Settings
from latchflow.testing import load_registry

RUNS = 50
SCHEMA: JSON = {"type": "object", "properties": {}}


class Gate:
    """Actions for the test: ``gate.hold`` waits until the gate opens, ``gate.after`` counts."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.holding = 0
        self.after: list[str] = []

    @hookimpl
    def register_actions(self, register: Callable[[Action], None]) -> None:
        async def hold(ctx: RunContext, data: JSON) -> JSON:
            self.holding += 1
            await self.open.wait()
            return {}

        async def after(ctx: RunContext, data: JSON) -> JSON:
            self.after.append(ctx.run_id)
            return {}

        for key, run in (("gate.hold", hold), ("gate.after", after)):
            register(Action(key, key, key, SCHEMA, SCHEMA, {}, run))


FLOW = {
    "id": "gated",
    "name": "gated",
    "version": 1,
    "trigger": {"type": "manual"},
    "steps": [{"id": "hold", "action": "gate.hold"}, {"id": "after", "action": "gate.after"}],
}


@pytest.fixture
async def gate_engine(tmp_path: Path) -> AsyncIterator[tuple[Engine, Gate]]:
    gate = Gate()
    engine = Engine(
        Settings.from_environment(tmp_path / "data"),
        registry=load_registry(extra=[gate]),
        clock=FakeClock(),
    )
    engine.install_flow(FLOW)
    yield engine, gate
    await engine.close()


async def in_flight(gate: Gate, count: int) -> None:
    for _ in range(1000):
        if gate.holding == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{gate.holding} of {count} steps started")


REASONS = {"cancel": "cancelled", "delete": "flow deleted", "disable": "flow disabled"}


@pytest.mark.parametrize("how", list(REASONS))
async def test_runs_cancelled_mid_step_start_no_further_step(
    gate_engine: tuple[Engine, Gate], how: str
) -> None:
    engine, gate = gate_engine
    dispatcher = EmbeddedDispatcher(engine.executor, engine.clock, workers=RUNS)
    run_ids = [engine.start("gated", {"n": n}).run_id for n in range(RUNS)]
    draining = asyncio.create_task(dispatcher.drain())
    await in_flight(gate, RUNS)
    now = engine.clock.now()
    if how == "cancel":
        assert all(cancel_run(engine.store, run_id, now) for run_id in run_ids)
    elif how == "delete":
        engine.store.delete_flow("gated", now)
    else:  # POST /api/flows/{id}/disable?cancel_runs=true
        assert engine.store.history.cancel_flow("gated", now, "flow disabled") == RUNS
    gate.open.set()
    await draining
    await dispatcher.drain()
    assert gate.after == []  # 0 later steps executed
    for run_id in run_ids:
        detail = run_detail(engine.store, run_id)
        assert detail["status"] == "cancelled"
        assert detail["error"] == REASONS[how]
        assert [(s["id"], s["status"]) for s in detail["steps"]] == [("hold", "succeeded")]
