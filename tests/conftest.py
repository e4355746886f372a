from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from latchflow.engine import Engine
from latchflow.plugin.clock import FakeClock
from latchflow.plugin.host import Registry, load_registry
from latchflow.storage.database import Settings

from .support import AcmePlugin


@pytest.fixture(autouse=True)
def _only_builtin_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Engine tests see the built-ins and the test plugin, not the installed vendor plugins."""
    monkeypatch.setenv("LATCHFLOW_LOAD_PLUGINS", "")
    monkeypatch.delenv("LATCHFLOW_SECRET_KEY", raising=False)
    yield


@pytest.fixture
def acme() -> AcmePlugin:
    return AcmePlugin()


@pytest.fixture
def registry(acme: AcmePlugin) -> Registry:
    return load_registry(extra=[acme])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def engine(tmp_path: Path, registry: Registry, clock: FakeClock) -> AsyncIterator[Engine]:
    engine = Engine(Settings.from_environment(tmp_path / "data"), registry=registry, clock=clock)
    yield engine
    await engine.close()
