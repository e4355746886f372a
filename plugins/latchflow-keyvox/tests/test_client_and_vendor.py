"""Client envelope handling (MockTransport), conformance, connection test and sandbox."""

from __future__ import annotations

import json
import logging
import re
import time

import httpx
import pytest

from latchflow import (
    ConfigurationError,
    FatalError,
    RateLimitedError,
    RetryableError,
    RetrySafety,
)
from latchflow.testing import Registry, assert_no_secret, conformance_problems, make_connection
from latchflow_keyvox import assumptions as A
from latchflow_keyvox.client import KeyvoxClient
from latchflow_keyvox.signing import body_digest, parse_authorization, signature
from latchflow_keyvox.testing import Runner, Sim

CONFIG = {
    "apiKey": "k1",
    "apiSecret": "very-secret-value",
    "baseUrl": "https://kv.example/api/eagle-pms/v1",
}


def answering(
    status: int, payload: object, headers: dict[str, str] | None = None
) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=payload, headers=headers)

    return httpx.MockTransport(handler)


async def call_with(transport: httpx.MockTransport) -> object:
    conn = make_connection("keyvox", CONFIG, transport=transport)
    try:
        return await KeyvoxClient(conn).call("unlock", {"lockId": "L1", "flag": "1"})
    finally:
        await conn.http.aclose()


async def test_requests_are_signed_for_the_configured_path() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"code": "0", "msg": "success", "data": {"x": 1}})

    assert await call_with(httpx.MockTransport(handler)) == {"x": 1}
    request = seen[0]
    assert request.method == "POST" and request.url.path == "/api/eagle-pms/v1/unlock"
    assert request.content == b'{"lockId":"L1","flag":"1"}'
    assert request.headers["digest"] == body_digest(request.content)
    assert request.headers["x-target-host"] == "default.pms"
    params = parse_authorization(request.headers["authorization"])
    assert params["signature"] == signature(
        "very-secret-value",
        request.headers["date"],
        "/api/eagle-pms/v1/unlock",
        request.headers["digest"],
    )


@pytest.mark.parametrize(
    ("status", "payload", "error", "text"),
    [
        (200, {"code": "E0005", "msg": "parameter error"}, FatalError, "parameter error"),
        (200, {"code": "E0043", "msg": "data does not exist"}, FatalError, "does not exist"),
        (200, {"code": "E1012", "msg": "cannot connect"}, RetryableError, "offline"),
        (200, {"code": "E2003", "msg": "insufficient permission"}, ConfigurationError, "API key"),
        (
            403,
            {"code": "E2001", "msg": "authentication failed"},
            ConfigurationError,
            "authentication",
        ),
        (403, {"message": "forbidden"}, ConfigurationError, "whitelisted"),
        (503, {"message": "down"}, RetryableError, "503"),
        (404, {"message": "nope"}, FatalError, "baseUrl"),
    ],
)
async def test_envelope_codes_map_to_engine_errors(
    status: int, payload: object, error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=text) as info:
        await call_with(answering(status, payload))
    if error is FatalError:
        assert not isinstance(info.value, ConfigurationError)
    assert_no_secret(str(info.value), [CONFIG["apiSecret"]])


async def test_rate_limit_and_timeouts_are_retryable() -> None:
    with pytest.raises(RateLimitedError) as info:
        await call_with(answering(429, {"message": "slow down"}, {"retry-after": "7"}))
    assert info.value.retry_after == 7 and info.value.maybe_applied is False
    assert "HTTP 429, message 'slow down'" in str(info.value)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(RetryableError, match="did not answer within 10 s") as info:
        await call_with(httpx.MockTransport(slow))
    assert info.value.maybe_applied is True


@pytest.mark.parametrize(
    ("error", "says", "maybe_applied"),
    [
        (httpx.ConnectError, "was not sent: could not reach", False),
        (httpx.ConnectTimeout, "was not sent: no connection within", False),
        (httpx.ReadError, "reset or closed", True),
        (httpx.RemoteProtocolError, "reset or closed", True),
    ],
)
async def test_transport_errors_say_whether_keyvox_may_have_applied_the_call(
    error: type[httpx.TransportError], says: str, maybe_applied: bool
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error("boom", request=request)

    with pytest.raises(RetryableError, match=says) as info:
        await call_with(httpx.MockTransport(fail))
    assert info.value.maybe_applied is maybe_applied
    assert "timed out" not in str(info.value)


async def test_errors_name_the_configured_action_and_carry_keyvox_s_answer(
    sim: Sim, run: Runner
) -> None:
    """The audit saw 'KEYVOX getUnitPinList: server error HTTP 503' for a create_lock_pin."""
    start, end = "2099-01-01T00:00:00Z", "2099-01-02T00:00:00Z"
    data = {"unitId": sim.room()["unitId"], "startTime": start, "endTime": end}
    sim.control("/_sim/faults", {"kind": "error", "status": 503})
    with pytest.raises(RetryableError) as info:
        await run("keyvox.create_lock_pin", data)
    assert str(info.value).startswith("keyvox.create_lock_pin: KEYVOX getUnitPinList")
    assert "HTTP 503, message 'Injected failure'" in str(info.value)
    assert info.value.maybe_applied is False  # a 503 refuses the call
    sim.control("/_sim/faults", {"kind": "rate_limit", "retry_after": 3})
    with pytest.raises(
        RateLimitedError, match=r"keyvox\.create_lock_pin: .* \(HTTP 429"
    ) as limited:
        await run("keyvox.create_lock_pin", data)
    assert limited.value.retry_after == 3
    with pytest.raises(FatalError) as refused:
        await run("keyvox.create_lock_pin", {**data, "endTime": start})
    assert "keyvox.create_lock_pin: KEYVOX createLockPin refused it" in str(refused.value)
    assert "code E0005, message 'eTime must be after sTime'" in str(refused.value)


@pytest.mark.parametrize("drop", [False, True], ids=["504", "connection-closed"])
async def test_a_lost_answer_may_have_been_applied(sim: Sim, run: Runner, drop: bool) -> None:
    sim.control("/_sim/faults", {"kind": "lost", "path": "/api/eagle-pms/v1/unlock", "drop": drop})
    with pytest.raises(RetryableError) as info:
        await run("keyvox.lock_door", {"lockId": sim.room()["lockIds"]})
    assert info.value.maybe_applied is True
    assert ("reset or closed" in str(info.value)) is drop
    assert sim.world.locks[sim.room()["lockIds"]].locked is True  # KEYVOX did lock it


async def test_per_call_timeout_is_set_per_connection(sim: Sim, registry: Registry) -> None:
    schema = registry.vendors["keyvox"].connection_schema["properties"]["timeoutSeconds"]
    assert schema["default"] < 20
    conn = make_connection("keyvox", {**sim.config, "timeoutSeconds": 0.2})
    sim.control(
        "/_sim/faults", {"kind": "slow", "delay": 1.0, "path": "/api/eagle-pms/v1/getUnits"}
    )
    try:
        started = time.monotonic()
        with pytest.raises(RetryableError, match=re.escape("did not answer within 0.2 s")) as info:
            await registry.vendors["keyvox"].test_connection(conn)
        assert time.monotonic() - started < 0.9 and info.value.maybe_applied is True
    finally:
        await conn.http.aclose()


async def test_missing_secret_is_a_configuration_error() -> None:
    conn = make_connection("keyvox", {"apiKey": "k"})
    with pytest.raises(ConfigurationError, match="apiSecret"):
        KeyvoxClient(conn)
    await conn.http.aclose()


def test_conformance(registry: Registry) -> None:
    assert conformance_problems(registry, "keyvox") == []
    vendor = registry.vendors["keyvox"]
    assert vendor.connection_schema["properties"]["apiSecret"]["writeOnly"] is True
    keys = {k for k in registry.actions if k.startswith("keyvox.")}
    # every operation of the seed page has an action (or a trigger for events)
    seed_ops = {
        "list_units", "list_unit_pins", "create_lock_pin", "change_lock_pin", "disable_lock_pin",
        "unlock_door", "lock_door", "get_lock_status", "get_lock_history", "search_lock_events",
        "list_lockers", "get_locker_status", "set_locker_status", "create_locker_pin",
        "change_locker_pin", "disable_locker_pin", "unlock_locker_box", "find_available_boxes",
        "set_box_color", "set_card", "update_card", "disable_card", "get_card_status",
        "list_lock_cards", "set_locker_card", "update_locker_card", "list_places",
        "list_room_plans", "find_available_rooms", "create_booking", "update_booking",
        "cancel_booking", "check_in_booking", "check_out_booking", "get_booking",
    }  # fmt: skip
    assert {f"keyvox.{op}" for op in seed_ops} <= keys
    safety = {key: registry.actions[key].retry_safety for key in keys}
    assert {key for key, value in safety.items() if value is RetrySafety.RECONCILE} == {
        "keyvox.create_lock_pin",
        "keyvox.issue_lock_key",
        "keyvox.create_locker_pin",
        "keyvox.create_booking",
    }
    assert {key for key, value in safety.items() if value is RetrySafety.MANUAL} == {
        "keyvox.set_locker_card"
    }


async def test_connection_test_sandbox_and_no_secret_in_logs(
    sim: Sim, registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    vendor = registry.vendors["keyvox"]
    assert vendor.sandbox is not None
    caplog.set_level(logging.DEBUG)
    config = await vendor.sandbox(sim.url, "http://127.0.0.1:1/vendors/keyvox/sandbox-keyvox")
    assert sim.world.sim.webhook_urls == ["http://127.0.0.1:1/vendors/keyvox/sandbox-keyvox"]
    conn = make_connection("keyvox", config)
    try:
        assert await vendor.test_connection(conn) == {"ok": True, "units": 3}
        bad = make_connection("keyvox", {**config, "apiSecret": "wrong-secret-123"})
        with pytest.raises(ConfigurationError) as info:
            await vendor.test_connection(bad)
        await bad.http.aclose()
        assert_no_secret(str(info.value) + caplog.text, [config["apiSecret"], "wrong-secret-123"])
    finally:
        await conn.http.aclose()


async def test_injected_faults_become_retryable_errors(sim: Sim, registry: Registry) -> None:
    conn = make_connection("keyvox", sim.config)
    try:
        for fault in ({"kind": "error", "status": 502}, {"kind": "rate_limit", "retry_after": 3}):
            sim.control("/_sim/faults", fault)
            with pytest.raises(RetryableError):
                await registry.vendors["keyvox"].test_connection(conn)
        assert (await registry.vendors["keyvox"].test_connection(conn))["ok"] is True
    finally:
        await conn.http.aclose()


def test_simulator_factory_gives_a_fresh_app(registry: Registry) -> None:
    factory = registry.vendors["keyvox"].simulator
    assert factory is not None
    first, second = factory(), factory()
    assert first is not second and first.state.world is not second.state.world
    assert json.dumps(first.state.world.summary()["apiKey"]) == json.dumps(A.SIM_DEMO_API_KEY)
