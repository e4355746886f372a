"""Fixtures: a simulator served over real HTTP and connections that talk to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from latchflow import Connection
from latchflow.testing import make_connection, serve_app
from latchflow_unloc.simulator import UnlocWorld, create_app
from latchflow_unloc.testing import Sim, integrators_config, v2_config


@pytest.fixture
def sim_url() -> Iterator[tuple[str, UnlocWorld]]:
    world = UnlocWorld()
    with serve_app(create_app(world)) as url:
        yield url, world


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
