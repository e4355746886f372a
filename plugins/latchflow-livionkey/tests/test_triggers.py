"""Webhook deliveries from both simulators through the vendors' handlers, and V1 polling."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from latchflow import (
    Connection,
    FakeClock,
    TriggerEvent,
    UnmappedEvent,
    WebhookError,
    WebhookRequest,
)
from latchflow.testing import load_registry, make_connection, serve_app
from latchflow_livionkey import sim_v2_routes, standard_webhooks
from latchflow_livionkey.assumptions import V2_WEBHOOK_ATTEMPTS
from latchflow_livionkey.connection import sandbox_v2
from latchflow_livionkey.triggers import poll_key_status

REGISTRY = load_registry()
SECRET = "whsec_bGl2aW9uLXRlc3Qtc2VjcmV0LTMyLWJ5dGVzLWxvbmchIQ=="


async def events_of(
    connection: Connection, requests: list[WebhookRequest]
) -> list[TriggerEvent | UnmappedEvent]:
    """What the vendor's handler makes of the requests; mapped events match their trigger."""
    handler = REGISTRY.vendors[connection.vendor].webhook
    assert handler is not None
    found = []
    for request in requests:
        found += await handler(request, connection)
    for event in found:
        if isinstance(event, TriggerEvent):
            trigger = REGISTRY.triggers[event.trigger]
            assert trigger.connection == connection.vendor
            Draft202012Validator(trigger.output_schema).validate(event.data)
    return found


def mapped(events: list[TriggerEvent | UnmappedEvent]) -> dict[str, TriggerEvent]:
    return {e.trigger: e for e in events if isinstance(e, TriggerEvent)}


def unmapped(events: list[TriggerEvent | UnmappedEvent]) -> list[str]:
    return sorted(e.vendor_type for e in events if isinstance(e, UnmappedEvent))


async def test_v1_push_fetch_return_overdue_and_polling(
    v1: Connection, v1_url: str, receiver: Any, act: Any, simpost: Any, settle: Any
) -> None:
    clock = v1.clock
    assert isinstance(clock, FakeClock)
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
    await settle(v1_url)

    events = await events_of(v1, receiver.requests)
    by_trigger = mapped(events)
    assert sorted(by_trigger) == [
        "livionkey.contract_updated",
        "livionkey.key_fetched",
        "livionkey.key_not_returned",
    ]
    assert unmapped(events) == ["code-entered"]  # no V1 trigger: kept as a dropped event
    assert by_trigger["livionkey.contract_updated"].data["pincode"] == contract["pincode"]
    overdue = by_trigger["livionkey.key_not_returned"]
    assert overdue.data["contractObjectId"] == contract["id"]
    # The shared header is checked.
    forged = WebhookRequest("POST", "x", {"x-api-key": "wrong"}, receiver.requests[1].body)
    with pytest.raises(WebhookError):
        await events_of(v1, [forged])

    clock.advance(3 * 3600 + 120)  # keep the client's token clock with the simulator
    second = await poll_key_status(
        "key-not-returned", v1, {"deviceId": "000111"}, first_poll.cursor
    )
    assert [e.id for e in second.events] == [overdue.id]  # same id as the push: deduped
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


async def test_v1_push_retried_on_5xx_and_429_only(
    v1: Connection, v1_url: str, receiver: Any, simpost: Any, settle: Any
) -> None:
    receiver.fail, receiver.fail_status = 1, 429
    await simpost(v1_url, "/_sim/v1/return-key", {"deviceId": "000111", "keyId": "apt-101"})
    await settle(v1_url)
    assert (receiver.refused, len(receiver.requests)) == (1, 1)  # retried after the 429

    receiver.fail, receiver.fail_status = 1, 400
    await simpost(v1_url, "/_sim/v1/return-key", {"deviceId": "000111", "keyId": "apt-102"})
    await settle(v1_url)
    assert (receiver.refused, len(receiver.requests)) == (2, 1)  # a 400 is not retried


async def test_v2_signed_webhooks_with_retries(
    v2: Connection, v2_url: str, receiver: Any, act: Any, simpost: Any, settle: Any
) -> None:
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
    await settle(v2_url)
    assert receiver.refused == 1 and len(receiver.requests) == 1
    await simpost(
        v2_url, "/_sim/v2/enter-pincode", {"automatId": "000211", "pincode": contract["pincode"]}
    )
    await simpost(v2_url, "/_sim/v2/alarm", {"deviceId": "000211", "alarmType": "DEVICE_MOVED"})
    await simpost(v2_url, "/_sim/clock", {"advance": 7200})
    await settle(v2_url)
    events = await events_of(v2, receiver.requests)
    by_trigger = mapped(events)
    assert sorted(by_trigger) == [
        "livionkey.v2_code_entered",
        "livionkey.v2_contract_updated",
        "livionkey.v2_device_alarm",
        "livionkey.v2_key_fetched",
        "livionkey.v2_key_not_returned",
    ]
    assert by_trigger["livionkey.v2_contract_updated"].data["pincode"] == contract["pincode"]
    fetched = by_trigger["livionkey.v2_key_fetched"]
    assert fetched.data["contractId"] == contract["id"]
    (fetched_request,) = [
        r for r in receiver.requests if r.headers["webhook-id"] == fetched.data["eventId"]
    ]
    assert fetched.id == fetched_request.headers["webhook-id"]
    # A redelivery has the same webhook-id, so it becomes the same event id.
    assert (await events_of(v2, [fetched_request]))[0].id == fetched.id

    await simpost(
        v2_url, "/_sim/v2/return-key", {"automatId": "000211", "keyId": contract["keys"][0]["id"]}
    )
    await settle(v2_url)
    last = (await events_of(v2, receiver.requests[-1:]))[0]
    assert isinstance(last, TriggerEvent) and last.trigger == "livionkey.v2_key_returned"

    tampered = WebhookRequest(
        "POST",
        "x",
        receiver.requests[0].headers,
        receiver.requests[0].body.replace(b"default", b"fetch"),
    )
    with pytest.raises(WebhookError) as info:
        await events_of(v2, [tampered])
    assert info.value.status_code == 401


async def test_v2_delivery_is_tried_as_often_as_livionkey_documents(receiver: Any) -> None:
    app = sim_v2_routes.create_app()
    app.state.sim.state.webhook_retry_delay = 0.0  # the attempts, without the waits
    receiver.fail = 1000
    with serve_app(app) as base:
        await sandbox_v2(base, receiver.url)
        async with httpx.AsyncClient(base_url=base) as http:
            await http.post("/_sim/v2/alarm", json={"deviceId": "000111"})
            (delivery,) = (await http.get("/_sim/webhooks?settle=true")).json()["deliveries"]
    assert delivery["attempts"] == V2_WEBHOOK_ATTEMPTS == receiver.refused
    assert delivery["status"] == 503


def v2_delivery(connection: Connection, kind: str, data: dict[str, Any]) -> WebhookRequest:
    body = json.dumps({"specVersion": "1", "type": kind, "data": data}).encode()
    stamp = int(connection.clock.now().timestamp())
    headers = {
        "webhook-id": f"msg_{kind}",
        "webhook-timestamp": str(stamp),
        "webhook-signature": standard_webhooks.sign(SECRET, f"msg_{kind}", stamp, body),
    }
    return WebhookRequest("POST", "x", headers, body)


async def test_v2_events_no_trigger_stands_for_are_kept_and_mapping_is_per_connection() -> None:
    default = make_connection("livionkey_v2", {"webhook_secret": SECRET})
    remapped = make_connection(
        "livionkey_v2",
        {
            "webhook_secret": SECRET,
            "eventTypes": {
                "device-alarm": "",
                "contract-signed": "livionkey.v2_contract_updated",
            },
        },
    )
    alarm = {"alarmType": "DEVICE_ERROR", "state": "activated", "deviceId": "000111"}
    signed = {"contractType": "default", "contractId": "c-1", "deviceId": "000111"}
    test_delivery = {"state": "key-fetched", "keyId": "k", "deviceId": "000000"}
    requests = [
        v2_delivery(default, "device-alarm", alarm),
        v2_delivery(default, "contract-signed", signed),
        v2_delivery(default, "key-status", {"state": "key-lost", "keyId": "k"}),
        v2_delivery(default, "key-status", test_delivery),
    ]
    events = await events_of(default, requests)
    assert list(mapped(events)) == ["livionkey.v2_device_alarm"]
    assert unmapped(events) == ["contract-signed", "key-status", "key-status:key-lost"]
    (test,) = [e for e in events if isinstance(e, UnmappedEvent) and e.reason]
    assert test.vendor_type == "key-status" and "test delivery" in test.reason
    events = await events_of(remapped, requests[:2])
    assert list(mapped(events)) == ["livionkey.v2_contract_updated"]
    assert unmapped(events) == ["device-alarm"]
    for connection in (default, remapped):
        await connection.http.aclose()


async def test_v1_mapping_is_per_connection() -> None:
    push = {"type": "key-status", "state": "key-not-fetched", "deviceId": "1", "keyId": "k"}
    code = {"type": "right-access-code", "code": "1234", "deviceId": "1"}
    request = WebhookRequest("POST", "x", {}, json.dumps([push, code, {"type": "new"}]).encode())
    default = make_connection("livionkey", {})
    events = await events_of(default, [request])
    assert list(mapped(events)) == ["livionkey.key_not_fetched"]
    assert unmapped(events) == ["code-entered", "new"]
    remapped = make_connection(
        "livionkey", {"eventTypes": {"key-status:key-not-fetched": "livionkey.key_not_returned"}}
    )
    assert list(mapped(await events_of(remapped, [request]))) == ["livionkey.key_not_returned"]
    for connection in (default, remapped):
        await connection.http.aclose()
