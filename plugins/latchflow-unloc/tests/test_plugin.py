"""The plugin as latchflow loads it: registrations, conformance, connection tests, secrets."""

from __future__ import annotations

import logging

import pytest

from latchflow import ConfigurationError, Connection
from latchflow.testing import assert_no_secret, conformance_problems, load_registry, make_connection
from latchflow_unloc.assumptions import SIM_CLIENT_SECRET
from latchflow_unloc.testing import Sim, v2_config
from latchflow_unloc.vendors import UNLOC


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LATCHFLOW_LOAD_PLUGINS", "unloc")
    return load_registry()


def test_registers_two_vendors_and_passes_conformance(registry) -> None:  # type: ignore[no-untyped-def]
    assert conformance_problems(registry, "unloc") == []
    info = next(p for p in registry.plugins if p.name == "unloc")
    assert info.vendors == ["unloc", "unloc_integrators"]
    assert set(info.actions) >= {
        "unloc.create_key", "unloc.create_keys", "unloc.revoke_key", "unloc.revoke_keys",
        "unloc.get_key", "unloc.list_keys", "unloc.list_locks", "unloc.get_job",
    }  # fmt: skip
    assert set(info.triggers) == {
        "unloc.key_state_changed",
        "unloc.key_expired",
        "unloc.lock_unlocked",
        "unloc_integrators.key_used",
    }
    for vendor in ("unloc", "unloc_integrators"):
        assert (
            registry.vendors[vendor].connection_schema["properties"]["client_secret"]["writeOnly"]
            is True
        )


async def test_connection_test_and_wrong_secret(
    sim: Sim, conn: Connection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    result = await UNLOC.test_connection(conn)
    assert result == {"ok": True, "project": "Demo project", "hasLocks": True}
    wrong = make_connection("unloc", {**v2_config(sim.url), "client_secret": "not-the-secret-123"})
    with pytest.raises(ConfigurationError, match="client id, client secret") as info:
        await UNLOC.test_connection(wrong)
    await wrong.http.aclose()
    assert_no_secret(str(info.value) + caplog.text, ["not-the-secret-123", SIM_CLIENT_SECRET])
