"""API V1 against its simulator over real HTTP: token lifecycle, every operation, business 400s."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from latchflow import ConfigurationError, Connection, FakeClock, FatalError, RetryableError
from latchflow.testing import make_connection
from latchflow_livionkey.v1_client import V1Client


async def stats(base: str) -> dict[str, int]:
    async with httpx.AsyncClient() as http:
        result: dict[str, int] = (await http.get(f"{base}/_sim/v1/stats")).json()
        return result


async def test_token_refreshed_before_expiry_and_one_relogin_after_401(
    v1: Connection, v1_url: str, simpost: Any
) -> None:
    client = V1Client(v1)
    clock = v1.clock
    assert isinstance(clock, FakeClock)
    await client.request("GET", "/devices")
    await client.request("GET", "/devices/000111")
    assert await stats(v1_url) == {"logins": 1, "unauthorized": 0}

    # 54 minutes later the cached token still has 6 minutes: reused.
    clock.advance(54 * 60)
    await simpost(v1_url, "/_sim/clock", {"advance": 54 * 60})
    await client.request("GET", "/devices")
    assert (await stats(v1_url))["logins"] == 1

    # 56 minutes: under 5 minutes left, so the client logs in before the server would refuse.
    clock.advance(2 * 60)
    await simpost(v1_url, "/_sim/clock", {"advance": 2 * 60})
    await client.request("GET", "/devices")
    assert await stats(v1_url) == {"logins": 2, "unauthorized": 0}

    # The server drops every token: one 401, exactly one re-login, and the call succeeds.
    await simpost(v1_url, "/_sim/v1/revoke-tokens", {})
    devices = await client.request("GET", "/devices")
    assert {d["deviceId"] for d in devices} == {"000111", "000222"}
    assert await stats(v1_url) == {"logins": 3, "unauthorized": 1}


async def test_expired_token_from_a_wrong_clock_recovers_with_one_relogin(
    v1: Connection, v1_url: str, simpost: Any
) -> None:
    await V1Client(v1).request("GET", "/devices")
    await simpost(v1_url, "/_sim/clock", {"advance": 2 * 3600})  # the client's clock lags
    await V1Client(v1).request("GET", "/devices")
    assert await stats(v1_url) == {"logins": 2, "unauthorized": 1}


async def test_bad_credentials_and_login_throttle(v1_url: str, simpost: Any) -> None:
    bad = make_connection(
        "livionkey", {"base_url": v1_url, "email": "demo@livionkey.example", "password": "nope"}
    )
    with pytest.raises(ConfigurationError, match="invalid-login-credentials"):
        await V1Client(bad).login()
    for _ in range(9):  # 10 attempts a minute are allowed (the first one above included)
        with pytest.raises(ConfigurationError):
            await V1Client(bad).login()
    with pytest.raises(RetryableError) as info:
        await V1Client(bad).login()
    assert info.value.retry_after == 60
    await bad.http.aclose()


async def test_missing_bearer_is_a_configuration_error(v1: Connection) -> None:
    response = await v1.http.get(
        f"{v1.config['base_url']}/devices", headers={"Authorization": "token"}
    )
    assert response.status_code == 403
    assert response.json() == {"success": False, "message": "No token provided."}


async def test_devices_keys_and_lockers(v1: Connection, act: Any) -> None:
    devices = await act(v1, "livionkey.list_devices", {})
    assert devices["count"] == 2
    with_lockers = await act(v1, "livionkey.list_devices", {"includeLockers": True})
    assert len(with_lockers["devices"][0]["lockers"]) == 30
    device = await act(v1, "livionkey.get_device", {"deviceId": "000111", "includeLockers": True})
    assert device["lockers"][0]["state"] == "lockerWithKey"
    keys = await act(v1, "livionkey.list_device_keys", {"deviceId": "000111"})
    assert {k["keyId"] for k in keys["keys"]} == {"apt-101", "apt-102", "sauna"}
    lockers = await act(v1, "livionkey.list_device_lockers", {"deviceId": "000222"})
    assert lockers["lockers"][0]["key"] == {"id": "office-1", "name": "Office"}
    opened = await act(v1, "livionkey.open_locker_door", {"deviceId": "000111", "lockerIndex": 2})
    assert opened["message"] == "Command sent successfully"
    with pytest.raises(FatalError, match="Locker index is too big"):
        await act(v1, "livionkey.open_locker_door", {"deviceId": "000222", "lockerIndex": 5})

    created = await act(
        v1,
        "livionkey.create_key",
        {"deviceId": "000111", "keyId": "apt-104", "keyName": "Apartment 104"},
    )
    assert created["lockerIndex"] == 3
    with pytest.raises(FatalError, match="keyId must be unique"):
        await act(
            v1,
            "livionkey.create_key",
            {"deviceId": "000111", "keyId": "apt-104", "keyName": "again"},
        )
    await act(
        v1,
        "livionkey.update_key",
        {"deviceId": "000111", "keyId": "apt-104", "keyName": "Apt 104", "shared": True},
    )
    key = await act(
        v1, "livionkey.get_key", {"keyId": "apt-104", "deviceId": "000111", "includeStatus": True}
    )
    assert key["keyName"] == "Apt 104" and key["shared"] is True
    status = await act(v1, "livionkey.get_key_status", {"deviceId": "000111", "keyId": "apt-104"})
    assert status["status"] == "key-added"
    codes = await act(
        v1, "livionkey.renew_key_backup_codes", {"deviceId": "000111", "keyId": "apt-104"}
    )
    assert codes["backupCodes"] != key["backupCodes"]
    assert (await act(v1, "livionkey.delete_key", {"deviceId": "000111", "keyId": "apt-104"}))[
        "deleted"
    ]
    again = await act(v1, "livionkey.delete_key", {"deviceId": "000111", "keyId": "apt-104"})
    assert "already" in again["message"]


async def test_contract_lifecycle_and_business_errors(v1: Connection, act: Any) -> None:
    now = v1.clock.now()
    contact = {
        "email": "ada@example.com",
        "phoneNumber": "+358401234567",
        "sendSms": True,
        "language": "en-gb",
    }
    base = {"deviceId": "000111", "keyId": "apt-101", "person": "Ada", "contacts": [contact]}
    first = await act(
        v1,
        "livionkey.create_contract",
        {
            **base,
            "contractId": "b-1",
            "start": (now + timedelta(hours=1)).isoformat(),
            "end": (now + timedelta(days=2)).isoformat(),
        },
    )
    assert len(first["pincode"]) == 6 and len(first["id"]) == 24

    cases = [
        (
            {
                "contractId": "b-2",
                "start": (now + timedelta(hours=5)).isoformat(),
                "end": (now + timedelta(days=1)).isoformat(),
            },
            "overlaps an existing contract|already has a contract",
        ),
        (
            {
                "contractId": "b-2",
                "start": (now - timedelta(hours=1)).isoformat(),
                "end": (now + timedelta(hours=1)).isoformat(),
                "keyId": "apt-102",
            },
            "start is in the past",
        ),
        (
            {
                "contractId": "b-1",
                "start": (now + timedelta(days=9)).isoformat(),
                "end": (now + timedelta(days=10)).isoformat(),
                "keyId": "apt-102",
            },
            "contractId must be unique",
        ),
        (
            {
                "contractId": "b-3",
                "start": (now + timedelta(days=9)).isoformat(),
                "end": (now + timedelta(days=10)).isoformat(),
                "keyId": "apt-102",
                "pincode": first["pincode"],
            },
            "another contract already uses this pincode",
        ),
    ]
    for data, message in cases:
        with pytest.raises(FatalError, match=message):
            await act(v1, "livionkey.create_contract", {**base, **data})

    # A shared key allows overlapping contracts; permanent contracts have no end.
    await act(
        v1,
        "livionkey.create_contract",
        {
            **base,
            "keyId": "sauna",
            "contractId": "s-1",
            "start": (now + timedelta(hours=1)).isoformat(),
            "permanent": True,
        },
    )
    await act(
        v1,
        "livionkey.create_contract",
        {
            **base,
            "keyId": "sauna",
            "contractId": "s-2",
            "start": (now + timedelta(hours=2)).isoformat(),
            "end": (now + timedelta(hours=3)).isoformat(),
        },
    )

    got = await act(v1, "livionkey.get_contract", {"id": first["id"]})
    assert got["contractId"] == "b-1" and got["devices"] == [{"id": "000111", "keyId": "apt-101"}]
    updated = await act(
        v1,
        "livionkey.update_contract",
        {"id": first["id"], "end": (now + timedelta(days=3)).isoformat(), "person": "Ada L."},
    )
    assert updated["person"] == "Ada L." and updated["end"].startswith(
        (now + timedelta(days=3)).strftime("%Y-%m-%d")
    )
    renewed = await act(v1, "livionkey.update_contract_pincode", {"id": first["id"]})
    assert renewed["pincode"] != first["pincode"]
    listed = await act(v1, "livionkey.list_device_contracts", {"deviceId": "000111"})
    assert listed["count"] == 3
    everywhere = await act(v1, "livionkey.list_contracts", {"contractId": "b-1"})
    assert [c["id"] for c in everywhere["contracts"]] == [first["id"]]
    assert (
        await act(v1, "livionkey.delete_contract", {"id": first["id"], "sendCancellation": True})
    )["deleted"]
    again = await act(v1, "livionkey.delete_contract", {"id": first["id"]})
    assert again == {"deleted": True, "message": "the contract did not exist (already deleted)"}


async def test_create_contract_retry_finds_its_own_contract(v1: Connection, act: Any) -> None:
    now = v1.clock.now()
    data = {
        "deviceId": "000222",
        "keyId": "office-1",
        "person": "Bo",
        "contacts": [{"email": "bo@example.com", "phoneNumber": "+358401111111"}],
        "start": (now + timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(hours=9)).isoformat(),
    }
    first = await act(v1, "livionkey.create_contract", data, step="step")
    again = await act(v1, "livionkey.create_contract", data, step="step")  # same idempotency key
    assert again["id"] == first["id"] and again["pincode"] == first["pincode"]
    assert first["contractId"] == "run-test:step"
