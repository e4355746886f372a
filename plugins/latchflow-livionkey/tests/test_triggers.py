"""Webhook deliveries from both simulators through the vendors' handlers, and V1 polling."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from latchflow import Connection, WebhookError, WebhookRequest
from latchflow.testing import load_registry
from latchflow_livionkey.triggers import poll_key_status

REGISTRY = load_registry()


async def events_of(connection: Connection, requests: list[WebhookRequest]) -> list[Any]:
    handler = REGISTRY.vendors[connection.vendor].webhook
    assert handler is not None
    found = []
    for request in requests:
        found += await handler(request, connection)
    for event in found:
        trigger = REGISTRY.triggers[event.trigger]
        assert trigger.connection == connection.vendor
        from jsonschema import Draft202012Validator

        Draft202012Validator(trigger.output_schema).validate(event.data)
    return found


async def test_v1_push_fetch_return_overdue_and_polling(
    v1: Connection, v1_url: str, receiver: Any, act: Any, simpost: Any
) -> None:
    clock = v1.clock
    now = clock.now()
    contract = await act(
        v1,
        "livionkey.create_contract",
        {
            "deviceId": "000111",
            "keyId": "apt-101",
            "contractId": "b-7",
            "person": "Ada",
            "contacts": [{"email": "a@example.com", "phoneNumber": "+358401234567"}],
            "start": (now + timedelta(minutes=1)).isoformat(),
            "end": (now + timedelta(hours=2)).isoformat(),
        },
    )
    first_poll = await poll_key_status("key-fetched", v1, {"deviceId": "000111"}, None)
    assert first_poll.events == []

    await simpost(v1_url, "/_sim/clock", {"advance": 120})
    opened = await simpost(
        v1_url, "/_sim/v1/enter-pincode", {"deviceId": "000111", "pincode": contract["pincode"]}
    )
    assert opened["opened"] is True
    await simpost(v1_url, "/_sim/clock", {"advance": 3 * 3600})  # contract ended, key still out

    events = await events_of(v1, receiver.requests)
    assert [e.trigger for e in events] == [
        "livionkey.contract_updated",
        "livionkey.key_fetched",
        "livionkey.key_not_returned",
    ]
    assert events[0].data["pincode"] == contract["pincode"]
    assert events[2].data["contractObjectId"] == contract["id"]
    # The shared header is checked.
    forged = WebhookRequest("POST", "x", {"x-api-key": "wrong"}, receiver.requests[1].body)
    with pytest.raises(WebhookError):
        await events_of(v1, [forged])

    clock.advance(3 * 3600 + 120)  # keep the client's token clock with the simulator
    second = await poll_key_status(
        "key-not-returned", v1, {"deviceId": "000111"}, first_poll.cursor
    )
    assert [e.id for e in second.events] == [events[2].id]  # same id as the push: deduped
    assert (
        await poll_key_status("key-not-returned", v1, {"deviceId": "000111"}, second.cursor)
    ).events == []

    await simpost(v1_url, "/_sim/v1/return-key", {"deviceId": "000111", "keyId": "apt-101"})
    returned = await poll_key_status(
        "key-returned", v1, {"deviceId": "000111", "keyId": "apt-101"}, second.cursor
    )
    assert [e.data["state"] for e in returned.events] == ["key-returned"]
    assert REGISTRY.triggers["livionkey.key_returned"].matches(
        {"keyId": "apt-101"}, returned.events[0].data
    )


async def test_v2_signed_webhooks_with_retries(
    v2: Connection, v2_url: str, receiver: Any, act: Any, simpost: Any
) -> None:
    import time

    receiver.fail = 1  # the first attempt is refused: the simulator retries, re-signed
    contract = await act(
        v2,
        "livionkey.create_iloq_contract",
        {
            "keyAutomatId": "000211",
            "numberOfKeys": 1,
            "accessRightIds": ["ar-sauna"],
            "start": time.time() - 60,
            "end": time.time() + 3600,
        },
    )
    assert receiver.refused == 1
    await simpost(
        v2_url, "/_sim/v2/enter-pincode", {"automatId": "000211", "pincode": contract["pincode"]}
    )
    await simpost(v2_url, "/_sim/v2/alarm", {"deviceId": "000211", "alarmType": "DEVICE_MOVED"})
    await simpost(v2_url, "/_sim/clock", {"advance": 7200})
    events = await events_of(v2, receiver.requests)
    assert [e.trigger for e in events] == [
        "livionkey.v2_contract_updated",
        "livionkey.v2_code_entered",
        "livionkey.v2_key_fetched",
        "livionkey.v2_device_alarm",
        "livionkey.v2_key_not_returned",
    ]
    assert events[0].data["pincode"] == contract["pincode"]
    assert events[2].data["contractId"] == contract["id"]
    assert events[2].id == receiver.requests[2].headers["webhook-id"]
    # A redelivery has the same webhook-id, so it becomes the same event id.
    assert (await events_of(v2, [receiver.requests[2]]))[0].id == events[2].id

    await simpost(
        v2_url, "/_sim/v2/return-key", {"automatId": "000211", "keyId": contract["keys"][0]["id"]}
    )
    last = (await events_of(v2, receiver.requests[-1:]))[0]
    assert last.trigger == "livionkey.v2_key_returned"

    tampered = WebhookRequest(
        "POST",
        "x",
        receiver.requests[0].headers,
        receiver.requests[0].body.replace(b"default", b"fetch"),
    )
    with pytest.raises(WebhookError) as info:
        await events_of(v2, [tampered])
    assert info.value.status_code == 401
