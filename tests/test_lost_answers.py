"""Every action that makes something at a vendor stays exactly-once when the vendor applies a
call and its answer is lost (a 504 from a gateway, or the connection closing mid-answer): the
run succeeds with one object at the vendor, or, for an action that cannot look its object up,
stops as ``needs_attention`` with one object and nothing tried again."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Response

from latchflow.engine import Engine
from latchflow.plugin.clock import FakeClock
from latchflow.plugin.host import Registry, load_registry
from latchflow.plugin.types import RetrySafety
from latchflow.storage.database import Settings
from latchflow.testing import serve_app

from . import lost_answer
from .lost_answer import LostAnswerCase, Simulated

CASES: list[LostAnswerCase] = [
    case
    for module in pkgutil.iter_modules(lost_answer.__path__)
    for case in importlib.import_module(f"{lost_answer.__name__}.{module.name}").CASES
]


WEBHOOKS = FastAPI()
"""Where the simulators' webhooks go: taken and dropped (no flow listens here)."""


@WEBHOOKS.post("/hook")
async def take() -> Response:
    return Response(status_code=204)


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.delenv("LATCHFLOW_LOAD_PLUGINS")
    return load_registry()


@pytest.fixture
async def engine(tmp_path: Path, plugins: Registry) -> AsyncIterator[Engine]:
    clock = FakeClock(datetime.now(UTC))
    engine = Engine(Settings.from_environment(tmp_path / "data"), registry=plugins, clock=clock)
    yield engine
    await engine.close()


def test_every_action_that_is_not_idempotent_has_a_case(plugins: Registry) -> None:
    makers = {
        key
        for key, action in plugins.actions.items()
        if action.retry_safety is not RetrySafety.IDEMPOTENT and not key.startswith("http.")
    }
    assert makers - {case.action for case in CASES} == set()


def test_every_action_declares_its_retry_safety(plugins: Registry) -> None:
    assert [key for key, action in plugins.actions.items() if action.retry_safety is None] == []


@pytest.mark.parametrize("drop", [False, True], ids=["504", "connection-closed"])
@pytest.mark.parametrize("case", CASES, ids=[case.action for case in CASES])
async def test_a_lost_answer_makes_one_object(
    case: LostAnswerCase, drop: bool, engine: Engine, plugins: Registry
) -> None:
    vendor = plugins.vendors[case.connection_vendor]
    assert vendor.simulator is not None and vendor.sandbox is not None
    with serve_app(vendor.simulator()) as url, serve_app(WEBHOOKS) as webhooks:
        config = await vendor.sandbox(url, f"{webhooks}/hook")
        async with httpx.AsyncClient(base_url=url) as sim_http:
            sim = Simulated(url, config, sim_http)
            data = await case.prepare(sim)
            await engine.connections.save("vendor", vendor.key, "Sandbox", config)
            engine.install_flow(
                {
                    "id": "make",
                    "name": "Make one",
                    "version": 1,
                    "trigger": {"type": "manual"},
                    "steps": [
                        {"id": "make", "action": case.action, "connection": "vendor", "input": data}
                    ],
                }
            )
            fault = {"kind": "lost", "path": case.path, "drop": drop}
            (await sim_http.post("/_sim/faults", json=fault)).raise_for_status()
            accepted = engine.start("make", {})
            run = await engine.run_until_done(accepted.run_id, wait=_advance(engine))
            assert (await sim_http.get("/_sim/faults")).json()["pending"] == 0, "never called"
            made = await case.count(sim, data)
            await sim_http.get("/_sim/webhooks", params={"settle": "true"})  # none left going
    action = plugins.actions[case.action]
    expected = "succeeded" if action.safe_to_retry else "needs_attention"
    assert (run.status, made) == (expected, 1), run.error


def _advance(engine: Engine) -> Callable[[float], Awaitable[None]]:
    """Waits that move the engine's clock instead of sleeping."""

    async def wait(seconds: float) -> None:
        assert isinstance(engine.clock, FakeClock)
        engine.clock.advance(seconds)

    return wait
