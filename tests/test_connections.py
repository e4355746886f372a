"""Connections: secrets encrypted at rest, never shown, redacted from run history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from httpx_aiohttp import AiohttpTransport

from latchflow.engine import Engine
from latchflow.plugin.errors import ConfigurationError, ValidationError
from latchflow.plugin.host import Registry
from latchflow.runs.connections import pooled_transport
from latchflow.runs.history import run_detail
from latchflow.storage.database import Settings
from latchflow.testing import assert_no_secret

from .support import flow

SECRET = "s3cr3t-acme-value-9f8e7d"


async def test_the_database_file_holds_no_plaintext_secret(engine: Engine, tmp_path: Path) -> None:
    shown = await engine.connections.save(
        "acme-main",
        "acme",
        "Acme",
        {"api_key": "acme-key", "api_secret": SECRET},
        test=True,
    )
    assert shown["config"] == {"api_key": "acme-key"}
    assert shown["test"] == {"ok": True}
    record = engine.install_flow(
        flow([{"id": "c", "action": "acme.connected", "input": {"name": "c"}}])
    )
    accepted = engine.start(record.id, {})
    assert await engine.executor.execute(accepted.run_id) == "succeeded"
    detail = json.dumps(run_detail(engine.store, accepted.run_id))
    assert_no_secret(detail, [SECRET])
    engine.store.engine.dispose()
    for path in (tmp_path / "data").iterdir():
        assert SECRET.encode() not in path.read_bytes(), path.name


async def test_secrets_survive_an_update_that_leaves_them_out(engine: Engine) -> None:
    await engine.connections.save(
        "acme-main", "acme", "Acme", {"api_key": "k", "api_secret": SECRET}
    )
    await engine.connections.save("acme-main", "acme", "Acme renamed", {"api_key": "acme-key"})
    _, config = engine.store.connection_config("acme-main")
    assert config == {"api_key": "acme-key", "api_secret": SECRET}


async def test_invalid_settings_name_their_path(engine: Engine) -> None:
    with pytest.raises(ValidationError) as caught:
        await engine.connections.save("x", "acme", "X", {"api_key": 5})
    assert [str(e) for e in caught.value.errors] == [
        "$.config.api_key: 5 is not of type 'string'",
        "$.config.api_secret: 'api_secret' is a required property",
    ]


async def test_keys_rotate_and_a_wrong_key_is_a_clear_error(
    tmp_path: Path, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("LATCHFLOW_SECRET_KEY", old)
    engine = Engine(Settings.from_environment(tmp_path), registry=registry)
    await engine.connections.save("a", "acme", "A", {"api_key": "k", "api_secret": SECRET})
    await engine.close()
    monkeypatch.setenv("LATCHFLOW_SECRET_KEY", f"{new},{old}")
    engine = Engine(Settings.from_environment(tmp_path), registry=registry)
    assert engine.store.rotate_secrets() == 1
    await engine.close()
    monkeypatch.setenv("LATCHFLOW_SECRET_KEY", new)
    engine = Engine(Settings.from_environment(tmp_path), registry=registry)
    assert engine.store.connection_config("a")[1]["api_secret"] == SECRET
    await engine.close()
    monkeypatch.setenv("LATCHFLOW_SECRET_KEY", old)
    engine = Engine(Settings.from_environment(tmp_path), registry=registry)
    with pytest.raises(ConfigurationError, match="LATCHFLOW_SECRET_KEY: cannot decrypt"):
        engine.store.connection_config("a")
    await engine.close()


def test_the_key_file_is_created_private(tmp_path: Path, registry: Registry) -> None:
    Engine(Settings.from_environment(tmp_path), registry=registry).store.engine.dispose()
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600


def test_vendor_calls_use_httpx_own_pool_where_the_environment_sets_a_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(pooled_transport(), AiohttpTransport)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert pooled_transport() is None  # httpx then routes through the proxy itself
