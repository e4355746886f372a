"""The API V1 simulator refuses what API V1 refuses, with V1's plain-text 400s."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from latchflow import Connection
from latchflow_livionkey.v1_client import V1Client


async def send(v1: Connection, method: str, path: str, body: Any) -> httpx.Response:
    token = await V1Client(v1).token()
    return await v1.http.request(
        method,
        f"{v1.config['base_url']}{path}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )


def refused(response: httpx.Response) -> tuple[int, str, str]:
    return response.status_code, response.headers["content-type"].split(";")[0], response.text


async def test_contract_rules(v1: Connection) -> None:
    now = v1.clock.now()
    valid = {
        "contractId": "rules-1",
        "devices": [{"id": "000111", "keyId": "apt-101"}],
        "start": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "end": (now + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "person": "Ada",
        "contacts": [{"email": "ada@example.com", "phoneNumber": "+358401234567"}],
    }
    naive = (now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"perm": True}, "End time should be null for permanent contracts"),
        ({"type": "weekly"}, "Invalid contract type"),
        ({"start": naive}, "Invalid date format"),
        ({"end": naive}, "Invalid date format"),
        ({"pincode": "abc"}, "Invalid pincode"),
        ({"pincode": "12"}, "Invalid pincode"),
        ({"pincode": 123456}, "Invalid pincode"),
    ]
    for change, message in cases:
        response = await send(v1, "POST", "/contracts", {**valid, **change})
        assert refused(response) == (400, "text/plain", message), change

    made = await send(v1, "POST", "/contracts", {**valid, "pincode": "123456", "type": "fetch"})
    assert made.status_code == 200, made.text
    contract_id = made.json()["id"]
    updates: list[tuple[dict[str, Any], str]] = [
        ({"perm": True, "end": valid["end"]}, "End time should be null for permanent contracts"),
        ({"end": naive}, "Invalid date format"),
        ({"pincode": "12a456"}, "Invalid pincode"),
    ]
    for change, message in updates:
        body = {"devices": valid["devices"], **change}
        response = await send(v1, "POST", f"/contracts/{contract_id}", body)
        assert refused(response) == (400, "text/plain", message), change


async def test_key_and_locker_rules(v1: Connection) -> None:
    for body, message in [
        ({"deviceId": "000111", "keyId": "k-9"}, "keyName is required"),
        ({"deviceId": "000111", "keyId": "k-9", "keyName": "K", "lockerIndex": "abc"}, None),
    ]:
        response = await send(v1, "POST", "/keys", body)
        assert refused(response) == (400, "text/plain", message or "malformed locker index")
    update = await send(v1, "POST", "/keys/apt-101", {"deviceId": "000111", "lockerIndex": "x1"})
    assert refused(update) == (400, "text/plain", "malformed locker index")
    door = await send(v1, "POST", "/devices/000111/opendoor", {"lockerIndex": "first"})
    assert refused(door) == (400, "text/plain", "malformed locker index")
    opened = await send(v1, "POST", "/devices/000111/opendoor", {"lockerIndex": "2"})
    assert (opened.status_code, opened.text) == (200, "Command sent successfully")
