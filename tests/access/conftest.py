"""Access grants against the vendors' simulators over real HTTP: an engine on a fake clock,
one connection per simulator, places mapped to their resources."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Response

from latchflow.backends.base import Dispatcher
from latchflow.backends.choose import dispatcher as make_dispatcher
from latchflow.engine import Engine
from latchflow.plugin.clock import FakeClock
from latchflow.plugin.host import Registry, load_registry
from latchflow.plugin.types import JSON
from latchflow.storage.database import Settings
from latchflow.testing import serve_app

from ..server.pg import fresh_database

WEBHOOKS = FastAPI()


@WEBHOOKS.post("/hook")
async def take() -> Response:
    return Response(status_code=204)


SIMULATED = ("keyvox", "unloc", "livionkey_v2")


@dataclass
class Sandbox:
    engine: Engine
    dispatcher: Dispatcher
    clock: FakeClock
    sims: dict[str, httpx.AsyncClient]
    """A client on each simulator's base URL, by vendor key."""

    async def state(self, vendor: str) -> JSON:
        path = "/_sim/v2/state" if vendor == "livionkey_v2" else "/_sim/state"
        state: JSON = (await self.sims[vendor].get(path)).json()
        return state

    async def settle(self, horizon: float = 3600.0, rounds: int = 200) -> None:
        """Run every due run; then move the clock to the next due one (within ``horizon``
        seconds) and again, until nothing is due within it."""
        limit = self.clock.now().timestamp() + horizon
        for _ in range(rounds):
            await self.dispatcher.drain()
            soonest = self.engine.store.journal.next_due(self.clock.now())
            if soonest is None or soonest.timestamp() > limit:
                return
            if soonest > self.clock.now():
                self.clock.set(soonest)
            await asyncio.sleep(0.02)  # vendor jobs finish on the simulators' own time
        raise AssertionError("runs still due after many rounds")


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.delenv("LATCHFLOW_LOAD_PLUGINS", raising=False)
    monkeypatch.setenv("LATCHFLOW_REVOCATION_GRACE", "30")
    return load_registry()


@pytest.fixture
def served(registry: Registry) -> Iterator[dict[str, str]]:
    with ExitStack() as stack:
        urls = {"webhooks": stack.enter_context(serve_app(WEBHOOKS))}
        for key in SIMULATED:
            simulator = registry.vendors[key].simulator
            assert simulator is not None
            urls[key] = stack.enter_context(serve_app(simulator()))
        yield urls


@asynccontextmanager
async def open_sandbox(
    data_dir: Path, registry: Registry, served: dict[str, str], database_url: str | None = None
) -> AsyncIterator[Sandbox]:
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    settings = Settings.from_environment(data_dir, database_url)
    engine = Engine(settings, registry=registry, clock=clock)
    sims = {}
    for key in SIMULATED:
        vendor = registry.vendors[key]
        assert vendor.sandbox is not None
        config = await vendor.sandbox(served[key], f"{served['webhooks']}/hook")
        await engine.connections.save(key, key, key, config)
        sims[key] = httpx.AsyncClient(base_url=served[key], timeout=10.0)
    await sims["unloc"].post("/_sim/settings", json={"job_delay": 0.05})
    try:
        yield Sandbox(engine, make_dispatcher(engine.executor), clock, sims)
    finally:
        for client in sims.values():
            await client.aclose()
        await engine.close()


@pytest.fixture
async def sandbox(
    tmp_path: Path, registry: Registry, served: dict[str, str]
) -> AsyncIterator[Sandbox]:
    async with open_sandbox(tmp_path / "data", registry, served) as opened:
        yield opened


@pytest.fixture
async def pg_sandbox(
    tmp_path: Path, registry: Registry, served: dict[str, str]
) -> AsyncIterator[Sandbox]:
    """The same on the PostgreSQL backend (procrastinate dispatches the runs)."""
    with fresh_database() as url:
        async with open_sandbox(tmp_path / "data", registry, served, url) as opened:
            yield opened
