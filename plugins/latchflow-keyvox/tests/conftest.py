"""Fixtures: a simulator over real HTTP, a webhook receiver, connections and action runners."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from fastapi import FastAPI, Request

from latchflow import Connection
from latchflow.testing import Registry, build_registry, make_connection, plugin_manager, serve_app
from latchflow_keyvox.simulator import World, create_app
from latchflow_keyvox.testing import Receiver, Runner, Sim


@pytest.fixture(scope="session")
def registry() -> Registry:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LATCHFLOW_LOAD_PLUGINS", "keyvox")
        return build_registry(plugin_manager())


@pytest.fixture
def sim() -> Iterator[Sim]:
    world = World(seed=7)
    world.sim.webhook_retry_delay = 0.01
    with serve_app(create_app(world)) as url:
        yield Sim(url, world)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    app = FastAPI()
    lock = threading.Lock()
    got = Receiver(url="")

    @app.post("/hook")
    async def hook(request: Request) -> dict[str, bool]:
        raw = await request.body()
        with lock:
            got.raw.append(raw)
            got.bodies.append(await request.json())
        return {"ok": True}

    with serve_app(app) as url:
        got.url = url + "/hook"
        yield got


@pytest.fixture
async def conn(sim: Sim) -> AsyncIterator[Connection]:
    connection = make_connection("keyvox", sim.config)
    yield connection
    await connection.http.aclose()


@pytest.fixture
def run(registry: Registry, conn: Connection) -> Runner:
    return Runner(registry, conn)
