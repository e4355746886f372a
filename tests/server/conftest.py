"""Fixtures: an engine on a temporary SQLite database and its app, driven in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from latchflow.engine import Engine
from latchflow.plugin.clock import FakeClock
from latchflow.plugin.host import load_registry
from latchflow.server import create_app
from latchflow.server.state import ServerState
from latchflow.storage.database import Settings

from . import fakeplugin
from .pg import fresh_database


def webhook_flow(flow_id: str = "hooked", **trigger_input: Any) -> dict[str, Any]:
    return {
        "id": flow_id,
        "name": "Hooked",
        "version": 1,
        "trigger": {"type": "webhook", "input": trigger_input},
        "steps": [
            {"id": "echo", "action": "core.set", "input": {"values": {"got": "{{ trigger.body }}"}}}
        ],
    }


@pytest.fixture(autouse=True)
def _no_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATCHFLOW_LOAD_PLUGINS", "")
    fakeplugin.EFFECTS.clear()
    fakeplugin.FLAKY.clear()
    fakeplugin.FEED.clear()
    fakeplugin.POLL_LIMITS.clear()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def engine(tmp_path: Path, clock: FakeClock) -> Iterator[Engine]:
    engine = Engine(
        Settings.from_environment(tmp_path / "data"),
        registry=load_registry(extra=[fakeplugin]),
        clock=clock,
    )
    yield engine
    engine.store.engine.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database (skips, or fails under LATCHFLOW_REQUIRE_POSTGRES=1)."""
    with fresh_database() as url:
        yield url


@pytest.fixture
def pg_engine(tmp_path: Path, clock: FakeClock, pg_url: str) -> Iterator[Engine]:
    engine = Engine(
        Settings.from_environment(tmp_path / "data", pg_url),
        registry=load_registry(extra=[fakeplugin]),
        clock=clock,
    )
    yield engine
    engine.store.engine.dispose()


@pytest.fixture
def app(engine: Engine) -> FastAPI:
    return create_app(engine, background=False, body_limit=4096)


@pytest.fixture
def state(app: FastAPI) -> ServerState:
    result: ServerState = app.state.latchflow
    return result


@pytest.fixture
async def client(app: FastAPI, engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    _, key = engine.store.api_keys.create("tests")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"authorization": f"Bearer {key}"},
    ) as client:
        yield client
    await engine.connections.close()
