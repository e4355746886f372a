"""A create answered 504 that Unloc carries out later, after the retry made another: the step
finds the copy when it checks again and revokes it (or, where Unloc cannot delete, fails
naming it). Runs through the engine on the simulator's clock, with the ``late`` fault."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from latchflow.engine import Engine
from latchflow.storage.database import Settings
from latchflow.storage.models import RunRecord, StepRecord
from latchflow.testing import load_registry
from latchflow_unloc.assumptions import SIM_LOCK_HOLDER_ID, SIM_PROJECT_ID
from latchflow_unloc.testing import APARTMENT, FRONT_DOOR, Sim, integrators_config, v2_config

LATE_SECONDS = 0.3
"""Real seconds after its 504 that the simulator carries the request out: by then the retry
has made its own object, and the step's later check has yet to come."""


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
    vendors = engine.registry.vendors
    engine.store.save_connection("v2", vendors["unloc"], "v2", v2_config(sim.url))
    engine.store.save_connection(
        "holder", vendors["unloc_integrators"], "holder", integrators_config(sim.url)
    )
    admin = {**integrators_config(sim.url), "lock_holder_ids": []}
    engine.store.save_connection("admin", vendors["unloc_integrators"], "admin", admin)
    yield engine
    await engine.close()


async def run_late(
    sim: Sim, engine: Engine, action: str, connection: str, path: str, input: dict[str, Any]
) -> RunRecord:
    """Run ``action`` once, with its first call to ``path`` carried out late."""
    engine.install_flow(
        {
            "id": "make",
            "name": "Make one",
            "version": 1,
            "trigger": {"type": "manual"},
            "steps": [{"id": "make", "action": action, "connection": connection, "input": input}],
        }
    )
    await sim.control("/_sim/settings", {"job_delay": 0})
    await sim.control("/_sim/faults", {"kind": "late", "path": path, "delay": LATE_SECONDS})
    run_id = engine.start("make", {}).run_id
    return await engine.run_until_done(run_id, wait=waits(sim, engine, run_id))


def waits(sim: Sim, engine: Engine, run_id: str) -> Callable[[float], Awaitable[None]]:
    """Waits that move the simulator's clock; once the retry has made its own object, the
    late request lands before the wait ends."""

    async def wait(seconds: float) -> None:
        with engine.store.session() as session:
            record = session.get(StepRecord, (run_id, "make"))
            retried = record is not None and record.attempts > 1 and record.state is not None
        if retried:
            await sim.settle()
        await sim.advance(seconds)

    return wait


def live_keys(sim: Sim, phone: str) -> list[str]:
    now, zone = sim.world.now(), sim.world.zone
    return [
        k.id
        for k in sim.world.keys.values()
        if k.app_user_id == phone and k.state(now, zone) != "revoked"
    ]


async def test_a_key_made_late_is_revoked_by_the_later_check(sim: Sim, engine: Engine) -> None:
    phone = "+4799000001"
    input = {"lockId": FRONT_DOOR, "appUserId": phone, "pollInterval": 1, "verifyDelay": 45}
    path = f"/v2/projects/{SIM_PROJECT_ID}/keys"
    run = await run_late(sim, engine, "unloc.create_key", "v2", path, input)
    assert run.status == "succeeded", run.error
    assert run.output is not None
    assert len(sim.world.keys) == 2  # the retry's key and the one carried out late
    [late] = set(sim.world.keys) - {run.output["keyId"]}
    assert run.output["duplicatesRemoved"] == [late]
    assert live_keys(sim, phone) == [run.output["keyId"]]


async def test_a_batch_made_late_is_revoked_by_the_later_check(sim: Sim, engine: Engine) -> None:
    phones = ["+4799000002", "+4799000003"]
    keys = [
        {"lockId": FRONT_DOOR, "appUserId": phones[0]},
        {"lockId": APARTMENT, "appUserId": phones[1]},
    ]
    input = {"keys": keys, "pollInterval": 1, "verifyDelay": 45}
    path = f"/v2/projects/{SIM_PROJECT_ID}/keys"
    run = await run_late(sim, engine, "unloc.create_keys", "v2", path, input)
    assert run.status == "succeeded", run.error
    assert run.output is not None
    kept = [k["keyId"] for k in run.output["keys"]]
    assert sorted(run.output["duplicatesRemoved"]) == sorted(set(sim.world.keys) - set(kept))
    assert len(run.output["duplicatesRemoved"]) == 2
    assert [live_keys(sim, p) for p in phones] == [[kept[0]], [kept[1]]]


async def test_an_integrators_key_made_late_fails_the_step_naming_it(
    sim: Sim, engine: Engine
) -> None:
    phone = "+4799000004"
    path = f"/integrators/v1/lock-holders/{SIM_LOCK_HOLDER_ID}/locks/{APARTMENT}/keys/"
    input = {"lockId": APARTMENT, "appUserId": phone, "verifyDelay": 45}
    run = await run_late(sim, engine, "unloc_integrators.create_key", "holder", path, input)
    first, late = sorted(sim.world.keys.values(), key=lambda k: k.created)
    assert run.status == "failed"
    assert run.error is not None and f"the extra key {late.id} must be removed" in run.error
    assert f"this step returned {first.id}" in run.error and "Unloc Control Center" in run.error


async def test_a_lock_holder_made_late_fails_the_step_naming_it(sim: Sim, engine: Engine) -> None:
    input = {"name": "Acme Housing", "countryIso": "NO", "organizationId": "998877665"}
    path = "/integrators/v1/lock-holders/"
    run = await run_late(sim, engine, "unloc_integrators.create_lock_holder", "admin", path, input)
    made = [h["id"] for h in sim.world.lock_holders.values() if h["name"] == "Acme Housing"]
    assert run.status == "failed" and len(made) == 2
    assert run.error is not None and "extra lock holder" in run.error
    assert sum(holder in run.error for holder in made) == 2
