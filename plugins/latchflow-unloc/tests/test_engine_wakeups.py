"""A create-key run spans several scheduler wake-ups while the worker pool serves other runs.

The engine (store, executor, EmbeddedDispatcher with two workers) shares the simulator's
clock, so advancing simulated time makes the waiting step due. The simulator's Create Keys job
takes 300 s; the step checks it every 60 s without holding a worker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from latchflow.backends.embedded.dispatcher import EmbeddedDispatcher
from latchflow.engine import Engine
from latchflow.storage.database import Settings
from latchflow.storage.models import StepRecord
from latchflow.testing import load_registry
from latchflow_unloc.testing import APARTMENT, Sim, v2_config

JOB_SECONDS = 300
POLL_SECONDS = 60
GUEST = "+358401234567"


def manual_flow(flow_id: str, action: str, step_input: dict[str, object]) -> dict[str, object]:
    return {
        "id": flow_id,
        "name": flow_id,
        "version": 1,
        "trigger": {"type": "manual"},
        "steps": [{"id": "call", "action": action, "connection": "sim", "input": step_input}],
    }


@pytest.fixture
async def engine(
    sim: Sim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Engine]:
    monkeypatch.setenv("LATCHFLOW_LOAD_PLUGINS", "unloc")
    engine = Engine(
        Settings.from_environment(tmp_path / "data"),
        registry=load_registry(),
        clock=sim.world.sim.clock,
    )
    engine.store.save_connection("sim", engine.registry.vendors["unloc"], "sim", v2_config(sim.url))
    engine.install_flow(
        manual_flow(
            "guest-key",
            "unloc.create_key",
            {"lockId": APARTMENT, "appUserId": GUEST, "pollInterval": POLL_SECONDS},
        )
    )
    engine.install_flow(manual_flow("list-locks", "unloc.list_locks", {}))
    yield engine
    await engine.close()


def finished_at(engine: Engine, run_id: str) -> datetime:
    run = engine.run(run_id)
    assert run is not None and run.status == "succeeded", run
    assert run.finished_at is not None
    return run.finished_at


async def test_create_key_waits_across_wake_ups_while_other_runs_finish(
    sim: Sim, engine: Engine
) -> None:
    await sim.control("/_sim/settings", {"job_delay": JOB_SECONDS})
    dispatcher = EmbeddedDispatcher(engine.executor, engine.clock, workers=2)
    key_run = engine.start("guest-key", {}).run_id
    others: list[str] = []
    wake_ups: list[datetime] = []
    for _ in range(20):
        others += [engine.start("list-locks", {"n": len(others) + n}).run_id for n in range(3)]
        await dispatcher.drain()
        run = engine.run(key_run)
        assert run is not None
        if run.status != "waiting":
            break
        assert run.due_at is not None
        # the key step is parked until its next check; the two workers served the other runs
        assert dispatcher.in_flight == 0
        for other in others:
            assert finished_at(engine, other) <= engine.clock.now()
        wake_ups.append(run.due_at)
        await sim.advance((run.due_at - engine.clock.now()).total_seconds())
    key_finished = finished_at(engine, key_run)

    assert len(wake_ups) >= JOB_SECONDS // POLL_SECONDS  # checked the job several times
    assert wake_ups == sorted(set(wake_ups))  # each wake-up set a later check
    finished_before = [r for r in others if finished_at(engine, r) < key_finished]
    assert len(finished_before) >= 3 * len(wake_ups)

    run = engine.run(key_run)
    assert run is not None and run.output is not None
    assert run.output["state"] in ("active", "scheduled") and run.output["appUserId"] == GUEST
    keys = [k for k in sim.world.keys.values() if k.app_user_id == GUEST]
    assert [k.id for k in keys] == [run.output["keyId"]]
    with engine.store.session() as session:
        record = session.get(StepRecord, (key_run, "call"))
        assert record is not None and record.attempts == 1  # job checks are not new attempts
