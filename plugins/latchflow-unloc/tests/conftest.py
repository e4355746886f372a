"""Fixtures: a simulator served over real HTTP and connections that talk to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from latchflow import Connection
from latchflow.testing import make_connection, serve_app
from latchflow_unloc.simulator import UnlocWorld, create_app
from latchflow_unloc.testing import Sim, integrators_config, v2_config


class Swap:
    """An ASGI app standing for another that each test replaces: one server for the whole
    session, a fresh simulator for each test."""

    def __init__(self) -> None:
        self.app: FastAPI | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None
        await self.app(scope, receive, send)


@pytest.fixture(scope="session")
def served() -> Iterator[tuple[str, Swap]]:
    swap = Swap()
    with serve_app(swap) as url:
        yield url, swap


@pytest.fixture
def sim_url(served: tuple[str, Swap]) -> tuple[str, UnlocWorld]:
    url, swap = served
    world = UnlocWorld()
    swap.app = create_app(world)
    return url, world


@pytest.fixture
async def sim(sim_url: tuple[str, UnlocWorld]) -> AsyncIterator[Sim]:
    url, world = sim_url
    async with httpx.AsyncClient(timeout=10.0) as http:
        yield Sim(url, world, http)


@pytest.fixture
async def conn(sim: Sim) -> AsyncIterator[Connection]:
    """An ``unloc`` connection whose clock is the simulator's, so waits follow simulated time."""
    connection = make_connection("unloc", v2_config(sim.url), clock=sim.world.sim.clock)
    yield connection
    await connection.http.aclose()


@pytest.fixture
async def iconn(sim: Sim) -> AsyncIterator[Connection]:
    connection = make_connection(
        "unloc_integrators", integrators_config(sim.url), clock=sim.world.sim.clock
    )
    yield connection
    await connection.http.aclose()
