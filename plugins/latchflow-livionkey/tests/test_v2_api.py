"""API V2 against its simulator over real HTTP: signatures, every operation, business rules."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from latchflow import Connection, FatalError
from latchflow_livionkey.v2_client import V2Client


async def send_raw(
    client: V2Client, method: str, url: str, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    return await client.connection.http.request(method, url, content=body or None, headers=headers)


async def test_simulator_rejects_tampered_url_body_and_timestamp(v2: Connection, act: Any) -> None:
    client = V2Client(v2)
    body = b'{"name":"Lobby","type":1}'
    url = client.url("/groups")
    good = client.signed_headers("POST", url, body)
    assert (await send_raw(client, "POST", url, body, good)).status_code == 201

    list_url = client.url("/automats", {"limit": 5})
    signed = client.signed_headers("GET", list_url, b"")
    tampered_url = await send_raw(client, "GET", client.url("/automats", {"limit": 6}), b"", signed)
    assert tampered_url.status_code == 401
    assert tampered_url.json()["message"] == "invalid signature"

    signed = client.signed_headers("POST", url, body)
    tampered_body = await send_raw(client, "POST", url, body.replace(b"Lobby", b"Lobbx"), signed)
    assert tampered_body.status_code == 401

    signed = client.signed_headers("POST", url, body)
    later = {**signed, "x-timestamp": str(int(signed["x-timestamp"]) + 1)}
    assert (await send_raw(client, "POST", url, body, later)).status_code == 401

    # A correctly signed but 10-minute-old request is refused too.
    from latchflow_livionkey import v2_signing

    key = v2_signing.load_private_key(v2.config["private_key_pem"])
    old = v2_signing.signature_headers(
        key, client.account_id, int(time.time() * 1000) - 600_000, "GET", list_url, b""
    )
    stale = await send_raw(client, "GET", list_url, b"", old)
    assert stale.status_code == 401
    assert "window" in stale.json()["message"]

    # The client reports a refused signature as a configuration problem.
    v2.config["service_account_id"] = "not-an-account"
    with pytest.raises(FatalError, match="service account id"):
        await act(v2, "livionkey.list_automats", {})


async def test_handover_by_group_returns_pincode_and_409_names_location(
    v2: Connection, act: Any
) -> None:
    rights = await act(v2, "livionkey.list_access_rights", {"search": "door"})
    assert [r["id"] for r in rights["accessRights"]] == ["ar-main-door"]
    contract = await act(
        v2,
        "livionkey.create_iloq_contract",
        {
            "contractType": "default",
            "groupId": "grp-helsinki",
            "numberOfKeys": 2,
            "accessRightIds": ["ar-main-door"],
            "start": time.time() + 3600,
            "end": "2099-01-02T11:00:00Z",
            "contact": {"name": "Ada", "email": "ada@example.com", "sendEmail": True},
        },
    )
    assert contract["contractType"] == 1
    assert len(contract["pincodes"]) == 2 and all(len(p) == 6 for p in contract["pincodes"])
    assert contract["pincode"] == contract["keys"][0]["storageInfo"]["pincode"]
    assert contract["deviceId"] == "000111"
    notes = contract["contact"]["notifications"]
    assert notes["contractCreated"] == {"sms": False, "email": True}
    assert notes["contractStartReminder"] == {"sms": False, "email": False}
    # Kamppi has 2 keys left and Kallio 2; asking for 3 finds no automat in the group.
    with pytest.raises(FatalError, match="automat group 'grp-helsinki' with 3 key"):
        await act(
            v2,
            "livionkey.create_iloq_contract",
            {
                "groupId": "grp-helsinki",
                "numberOfKeys": 3,
                "accessRightIds": ["ar-main-door"],
                "start": time.time() + 60,
                "end": time.time() + 7200,
            },
        )


async def test_contract_types_explicit_notifications_and_lifecycle(
    v2: Connection, act: Any
) -> None:
    start = time.time() - 60
    fetch = await act(
        v2,
        "livionkey.create_iloq_contract",
        {
            "contractType": "fetch",
            "keyAutomatId": "000211",
            "numberOfKeys": 1,
            "accessRightIds": ["ar-apt-12"],
            "pincodes": ["246810"],
            "start": start,
            "contact": {
                "name": "Bo",
                "phoneNumber": "+358401234567",
                "sendSms": True,
                "notifications": {"contractKeysNotReturned": {"sms": True}},
            },
        },
    )
    assert fetch["end"] is None and fetch["pincode"] == "246810"
    notes = fetch["contact"]["notifications"]
    assert notes["contractKeysNotReturned"] == {"sms": True, "email": False}
    assert notes["contractCreated"] == {"sms": False, "email": False}  # overrides sendSms

    returned = await act(
        v2,
        "livionkey.create_iloq_contract",
        {"contractType": "return", "keyIds": ["ext-9"], "keyAutomatId": "000112"},
    )
    assert returned["contractType"] == 3 and returned["deviceId"] == "000112"

    by_key = await act(
        v2,
        "livionkey.create_iloq_contract",
        {
            "keyIds": ["iloq-0005"],
            "accessRightIds": ["ar-sauna"],
            "start": start,
            "end": time.time() + 3600,
            "contact": {"name": "Cy", "sendSms": True, "reminders": True},
        },
    )
    assert by_key["keys"][0]["id"] == "iloq-0005"
    assert by_key["contact"]["notifications"]["contractEndReminder"]["sms"] is True

    ongoing = await act(v2, "livionkey.list_iloq_contracts", {"ongoing": True})
    assert {c["id"] for c in ongoing["contracts"]} == {fetch["id"], returned["id"], by_key["id"]}
    assert (await act(v2, "livionkey.list_iloq_contracts", {"future": True}))["count"] == 0

    got = await act(v2, "livionkey.get_iloq_contract", {"id": by_key["id"]})
    assert got["pincodes"] == by_key["pincodes"]
    updated = await act(
        v2, "livionkey.update_iloq_contract", {"id": by_key["id"], "end": "2099-06-01T10:00:00Z"}
    )
    assert updated["end"] == "2099-06-01T10:00:00.000Z"

    # send_pincode opens the locker: the key is fetched, and a default contract cannot be deleted.
    sent = await act(
        v2, "livionkey.send_pincode", {"automatId": "000112", "pincode": by_key["pincode"]}
    )
    assert sent == {"success": True, "reason": None}
    with pytest.raises(FatalError, match="will not delete"):
        await act(v2, "livionkey.delete_iloq_contract", {"id": by_key["id"]})
    wrong = await act(v2, "livionkey.send_pincode", {"automatId": "000112", "pincode": "000001"})
    assert wrong["success"] is False
    assert (
        await act(
            v2,
            "livionkey.send_pincode",
            {"automatId": "000112", "pincode": "135791", "proximityCheck": True},
        )
    )["success"]

    assert (await act(v2, "livionkey.delete_iloq_contract", {"id": fetch["id"]}))["deleted"]
    assert (await act(v2, "livionkey.delete_iloq_contract", {"id": fetch["id"]}))[
        "deleted"
    ]  # gone = deleted


async def test_client_side_checks_per_contract_type(v2: Connection, act: Any) -> None:
    cases = [
        (
            {
                "groupId": "grp-espoo",
                "keyAutomatId": "000211",
                "numberOfKeys": 1,
                "accessRightIds": ["ar-sauna"],
                "start": 1,
                "end": 2,
            },
            "exactly one pick-up location",
        ),
        (
            {"groupId": "grp-espoo", "accessRightIds": ["ar-sauna"], "start": 1, "end": 2},
            "numberOfKeys",
        ),
        (
            {
                "contractType": "default",
                "keyAutomatId": "000211",
                "numberOfKeys": 1,
                "accessRightIds": ["ar-sauna"],
                "start": 1,
            },
            "end time",
        ),
        ({"contractType": "return", "keyAutomatId": "000211"}, "keyIds"),
        (
            {"contractType": "fetch", "keyAutomatId": "000211", "numberOfKeys": 1, "start": 1},
            "accessRightIds",
        ),
    ]
    for data, message in cases:
        with pytest.raises(FatalError, match=message):
            await act(v2, "livionkey.create_iloq_contract", data)


async def test_automats_groups_and_pagination(v2: Connection, act: Any) -> None:
    automats = await act(v2, "livionkey.list_automats", {})
    assert automats["count"] == 4
    active = await act(v2, "livionkey.list_automats", {"activeOnly": True})
    assert {a["id"] for a in active["automats"]} == {"000111", "000112", "000211"}
    group = await act(v2, "livionkey.create_group", {"name": "Airport", "customerId": "cust-demo"})
    renamed = await act(v2, "livionkey.update_group", {"id": group["id"], "name": "Airport T2"})
    assert renamed["name"] == "Airport T2"
    moved = await act(
        v2, "livionkey.update_automat", {"id": "000211", "groups": [group["id"]], "label": "T2"}
    )
    assert moved["groups"] == [{"id": group["id"], "name": "Airport T2"}]
    groups = await act(v2, "livionkey.list_groups", {"search": "airport"})
    assert groups["groups"][0]["members"] == [{"id": "000211", "name": "Espoo automat"}]
    automat = await act(v2, "livionkey.get_automat", {"id": "000111"})
    assert sum(locker["isKeyInside"] for locker in automat["lockers"]) == 4

    # Pages of 100 are walked until hasNext is false.
    for n in range(102):
        await V2Client(v2).request("POST", "/groups", json_body={"name": f"g{n}", "type": 2})
    assert (await act(v2, "livionkey.list_groups", {}))["count"] == 105
    with pytest.raises(FatalError, match="limit"):
        await V2Client(v2).request("GET", "/groups", params={"limit": 101})


async def test_rate_limit_and_server_errors_are_retryable(
    v2: Connection, v2_url: str, act: Any, simpost: Any
) -> None:
    from latchflow import RetryableError

    await simpost(
        v2_url, "/_sim/faults", {"kind": "rate_limit", "retry_after": 3, "path": "/v2/automats"}
    )
    with pytest.raises(RetryableError) as info:
        await act(v2, "livionkey.list_automats", {})
    assert info.value.retry_after == 3
    await simpost(v2_url, "/_sim/faults", {"kind": "error", "status": 502})
    with pytest.raises(RetryableError):
        await act(v2, "livionkey.get_automat", {"id": "000111"})
    assert (await act(v2, "livionkey.get_automat", {"id": "000111"}))["id"] == "000111"
