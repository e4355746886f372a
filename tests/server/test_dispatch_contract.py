"""The dispatch contract, run against every backend (the embedded one; PostgreSQL comes later)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from latchflow.backends.base import Dispatcher
from latchflow.backends.embedded.dispatcher import EmbeddedDispatcher
from latchflow.backends.postgres.dispatcher import ProcrastinateDispatcher
from latchflow.engine import Engine
from latchflow.plugin.clock import FakeClock

from .contract import CONTRACT

BACKENDS: dict[str, tuple[str, Callable[[Engine], Dispatcher]]] = {
    "embedded": ("engine", lambda e: EmbeddedDispatcher(e.executor, e.clock, workers=4)),
    "postgresql": (
        "pg_engine",
        lambda e: ProcrastinateDispatcher(e.executor, workers=4, name="contract"),
    ),
}
"""Each backend: the fixture giving its engine (SQLite or PostgreSQL), and its dispatcher."""


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("check", CONTRACT, ids=lambda c: c.__name__)
async def test_contract(
    backend: str,
    check: Callable[[Engine, Dispatcher, FakeClock], Awaitable[None]],
    clock: FakeClock,
    request: pytest.FixtureRequest,
) -> None:
    fixture, make = BACKENDS[backend]
    engine: Engine = request.getfixturevalue(fixture)
    dispatcher = make(engine)
    try:
        await check(engine, dispatcher, clock)
    finally:
        await dispatcher.stop(grace_seconds=5)


async def test_embedded_runs_at_most_workers_at_once(engine: Engine) -> None:
    engine.install_flow(
        {
            "id": "many",
            "name": "many",
            "version": 1,
            "trigger": {"type": "manual"},
            "steps": [{"id": "c", "action": "test.count"}],
        }
    )
    runs = [engine.start("many", {"n": n}).run_id for n in range(10)]
    dispatcher = EmbeddedDispatcher(engine.executor, engine.clock, workers=3)
    dispatcher._launch_due()
    assert dispatcher.in_flight == 3
    await dispatcher.drain()
    assert all(engine.run(r).status == "succeeded" for r in runs)  # type: ignore[union-attr]
