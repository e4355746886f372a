"""The API V2 simulator refuses what API V2 refuses, in NestJS's error shape, and reserves a key
only for the windows of its contracts."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from latchflow import Connection
from latchflow_livionkey.v2_client import V2Client, encode

HOUR = 3600


async def send(v2: Connection, method: str, path: str, body: Any = None) -> httpx.Response:
    client = V2Client(v2)
    url, raw = client.url(path), encode(body)
    headers = client.signed_headers(method, url, raw)
    return await v2.http.request(method, url, content=raw or None, headers=headers)


def at(offset: float) -> str:
    return datetime.fromtimestamp(time.time() + offset, UTC).isoformat()


def handover(start: float, end: float, **more: Any) -> dict[str, Any]:
    data = {
        "contractType": 1,
        "keyAutomatId": "000211",  # one key
        "numberOfKeys": 1,
        "accessRightIds": ["ar-sauna"],
        "start": at(start),
        "end": at(end),
        **more,
    }
    return {"input": data}


def nest(response: httpx.Response) -> tuple[int, Any, str]:
    body = response.json()
    assert set(body) == {"statusCode", "message", "error"}
    assert body["statusCode"] == response.status_code
    return response.status_code, body["message"], body["error"]


async def test_contract_create_refusals(v2: Connection) -> None:
    naive = datetime.fromtimestamp(time.time() + HOUR).strftime("%Y-%m-%dT%H:%M:%S")
    digits = "each value in pincodes must be a string of 6 digits"
    cases = [
        (
            {**handover(HOUR, 2 * HOUR), "extra": 1},
            ["property extra should not exist"],
        ),
        (handover(HOUR, 2 * HOUR, room="12"), ["input.property room should not exist"]),
        (
            handover(HOUR, 2 * HOUR, contact={"name": "Ada", "nickname": "A"}),
            ["input.contact.property nickname should not exist"],
        ),
        (handover(-2 * HOUR, -HOUR), "end must be in the future"),
        (
            {"input": {**handover(0, 2 * HOUR)["input"], "start": naive}},
            ["start must be a valid ISO 8601 date string with a time zone"],
        ),
        (handover(HOUR, 2 * HOUR, pincodes=["12ab56"]), [digits]),
        (handover(HOUR, 2 * HOUR, pincodes=["1234"]), [digits]),
    ]
    for body, message in cases:
        response = await send(v2, "POST", "/iloq/keycontracts", body)
        assert nest(response) == (400, message, "Bad Request"), body
    made = await send(v2, "POST", "/iloq/keycontracts", handover(HOUR, 2 * HOUR))
    assert made.status_code == 201, made.text

    pincode = await send(v2, "POST", "/automats/000211/sendPincode", {"pincode": "12ab56"})
    assert nest(pincode) == (400, [digits], "Bad Request")
    group = await send(v2, "POST", "/groups", {"name": "G", "type": 1, "colour": "red"})
    assert nest(group) == (400, ["property colour should not exist"], "Bad Request")


async def test_a_key_is_reserved_only_for_overlapping_windows(v2: Connection) -> None:
    first = await send(v2, "POST", "/iloq/keycontracts", handover(HOUR, 3 * HOUR))
    assert first.status_code == 201, first.text
    later = await send(v2, "POST", "/iloq/keycontracts", handover(4 * HOUR, 6 * HOUR))
    assert later.status_code == 201, later.text  # the same key, another stay
    assert later.json()["keys"][0]["id"] == first.json()["keys"][0]["id"]
    overlapping = await send(v2, "POST", "/iloq/keycontracts", handover(2 * HOUR, 5 * HOUR))
    assert nest(overlapping)[0] == 409

    # Moving the later stay onto the first one is refused as the overlap it is.
    moved = await send(
        v2, "PATCH", f"/iloq/keycontracts/{later.json()['id']}", {"start": at(2 * HOUR)}
    )
    assert nest(moved) == (409, "overlapping contract", "Conflict")
    extended = await send(
        v2, "PATCH", f"/iloq/keycontracts/{later.json()['id']}", {"end": at(8 * HOUR)}
    )
    assert extended.status_code == 200, extended.text


async def test_contract_update_refusals(v2: Connection) -> None:
    made = (await send(v2, "POST", "/iloq/keycontracts", handover(HOUR, 2 * HOUR))).json()
    path = f"/iloq/keycontracts/{made['id']}"
    naive = datetime.fromtimestamp(time.time() + 3 * HOUR).strftime("%Y-%m-%dT%H:%M:%S")
    for body, message in [
        ({"end": at(3 * HOUR), "keyIds": ["x"]}, ["property keyIds should not exist"]),
        ({"start": at(-3 * HOUR), "end": at(-HOUR)}, "end must be in the future"),
        ({"end": naive}, ["end must be a valid ISO 8601 date string with a time zone"]),
    ]:
        assert nest(await send(v2, "PATCH", path, body)) == (400, message, "Bad Request"), body
    unchanged = await send(v2, "GET", path)
    assert json.loads(unchanged.content)["end"] == made["end"]
