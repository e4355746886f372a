"""Registration, conformance, connection tests and the seed pages' operations."""

from __future__ import annotations

from typing import Any

import pytest

from latchflow import ConfigurationError, Connection
from latchflow.testing import (
    assert_no_secret,
    conformance_problems,
    load_registry,
    make_connection,
    validate_flow,
)

# Every operation the two seed pages name, and what makes it reachable in a flow.
SEED_OPERATIONS = {
    # API V1 workflow page
    "GET /devices": "livionkey.list_devices",
    "GET /devices/{deviceId}": "livionkey.get_device",
    "GET /devices/{deviceId}/keys": "livionkey.list_device_keys",
    "GET /devices/{deviceId}/contracts": "livionkey.list_device_contracts",
    "POST /keys": "livionkey.create_key",
    "POST /keys/{keyId}": "livionkey.update_key",
    "DELETE /keys/{keyId}": "livionkey.delete_key",
    "GET /key/{keyId}": "livionkey.get_key",
    "GET /key/{keyId}/status": "livionkey.get_key_status",
    "POST /contracts": "livionkey.create_contract",
    "POST /contracts/{contractId}": "livionkey.update_contract",
    "POST /contracts/{contractId}/pincode": "livionkey.update_contract_pincode",
    "DELETE /contracts/{contractId}": "livionkey.delete_contract",
    "GET /contracts/{contractId}": "livionkey.get_contract",
    "GET /contracts": "livionkey.list_contracts",
    "key status key-fetched": "livionkey.key_fetched",
    "key status key-returned": "livionkey.key_returned",
    "key status key-not-returned": "livionkey.key_not_returned",
    # API V2 page
    "handover by key automat group": "livionkey.create_iloq_contract",
    "handover at a specific automat (list automats)": "livionkey.list_automats",
    "handover by key id": "livionkey.create_iloq_contract",
    "groups are customizable via the API": "livionkey.create_group",
    "update a group": "livionkey.update_group",
    "list groups": "livionkey.list_groups",
    "put an automat in a group": "livionkey.update_automat",
    "default / fetch / return contracts": "livionkey.create_iloq_contract",
    "pick-up / return notifications": "livionkey.v2_key_fetched",
    "key returned": "livionkey.v2_key_returned",
}


def test_registers_both_vendors_and_passes_conformance() -> None:
    registry = load_registry()
    assert conformance_problems(registry, "livionkey") == []
    assert {"livionkey", "livionkey_v2"} <= set(registry.vendors)
    for key, target in SEED_OPERATIONS.items():
        assert target in registry.actions or target in registry.triggers, key
    v2_triggers = [t for t in registry.triggers.values() if t.connection == "livionkey_v2"]
    assert v2_triggers and all(t.key.startswith("livionkey.v2_") for t in v2_triggers)


async def test_connection_tests_and_secrets(v1: Connection, v2: Connection) -> None:
    registry = load_registry()
    assert (await registry.vendors["livionkey"].test_connection(v1))["devices"] == 2
    assert (await registry.vendors["livionkey_v2"].test_connection(v2))["ok"] is True
    secrets = [v1.config["password"], v1.config["webhook_secret"], v2.config["webhook_secret"]]
    assert_no_secret(repr(v1.cache) + repr(v2.cache), secrets)
    wrong = make_connection("livionkey", {**v1.config, "password": "wrong"})
    with pytest.raises(ConfigurationError, match="check the email and password"):
        await registry.vendors["livionkey"].test_connection(wrong)
    await wrong.http.aclose()
    bad_key = make_connection("livionkey_v2", {**v2.config, "private_key_pem": "not a key"})
    with pytest.raises(ConfigurationError, match="private_key_pem"):
        await registry.vendors["livionkey_v2"].test_connection(bad_key)
    await bad_key.http.aclose()


def test_example_flows_name_registered_components() -> None:
    import json
    from pathlib import Path

    registry = load_registry()
    flows = sorted((Path(__file__).parents[3] / "flows").glob("livionkey-*.json"))
    assert len(flows) == 6
    for path in flows:
        flow: dict[str, Any] = json.loads(path.read_text())
        validate_flow(flow, registry)
        assert flow["trigger"]["type"] in registry.triggers, path.name
        for step in flow["steps"]:
            assert step["action"] in registry.actions, (path.name, step["action"])
            action = registry.actions[step["action"]]
            if action.connection and action.connection_required:
                assert step["connection"] == f"sandbox-{action.connection}"
