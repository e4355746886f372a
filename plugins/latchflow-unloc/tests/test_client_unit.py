"""The v2 client and actions against httpx.MockTransport: requests sent, errors raised."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from latchflow import ConfigurationError, FakeClock, FatalError, RateLimitedError, RetryableError
from latchflow.testing import make_connection, make_context
from latchflow_unloc.client import UnlocClient
from latchflow_unloc.create_key import CREATE_KEY
from latchflow_unloc.keys import key_input
from latchflow_unloc.revoke_actions import REVOKE_KEY, REVOKE_KEYS

ACTION = "unloc.some_action"  # what the user configured; errors name it

CONFIG = {
    "base_url": "https://unloc.test",
    "client_id": "cid",
    "client_secret": "s3cr3t-value",
    "project_id": "p1",
}
Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that answers tokens itself and records every request."""

    def __init__(self, answer: Handler | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.tokens = 0
        self.answer = answer

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/v2/auth/token/":
            self.tokens += 1
            return httpx.Response(
                200,
                json={
                    "access_token": f"tok{self.tokens}",
                    "token_type": "bearer",
                    "expires_in": 3600,
                },
            )
        if self.answer is None:
            return httpx.Response(500)
        return self.answer(request)

    def api_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path != "/v2/auth/token/"]


def connection(recorder: Recorder, clock: FakeClock | None = None) -> Any:
    return make_connection(
        "unloc", CONFIG, clock=clock or FakeClock(), transport=httpx.MockTransport(recorder)
    )


async def test_unfiltered_bulk_revoke_fails_validation_before_any_request() -> None:
    schema = Draft202012Validator(REVOKE_KEYS.input_schema)
    assert not schema.is_valid({})
    assert not schema.is_valid({"confirm_all": False})
    assert not schema.is_valid({"excludeSubprojectKeys": True})
    assert schema.is_valid({"lockId": "l1"})
    assert schema.is_valid({"appUserId": "+4799887766"})
    assert schema.is_valid({"confirm_all": True})

    recorder = Recorder(lambda r: httpx.Response(204))
    conn = connection(recorder)
    # Filters that rendered empty get past the schema but not past the action.
    for bad in ({}, {"appUserId": "", "lockId": ""}, {"confirm_all": False}):
        with pytest.raises(FatalError, match="would revoke EVERY key"):
            await REVOKE_KEYS.run(make_context(conn), bad)
    with pytest.raises(FatalError, match="confirm_all"):
        await UnlocClient(conn, ACTION).revoke_keys()
    assert recorder.requests == []

    result = await REVOKE_KEYS.run(make_context(conn), {"confirm_all": True})
    assert result["all"] is True
    [sent] = recorder.api_requests()
    assert (
        sent.method == "DELETE"
        and sent.url.path == "/v2/projects/p1/keys"
        and sent.url.query == b""
    )
    await conn.http.aclose()


async def test_bulk_revoke_sends_normalised_filters() -> None:
    recorder = Recorder(lambda r: httpx.Response(204))
    conn = connection(recorder)
    await REVOKE_KEYS.run(
        make_context(conn), {"appUserId": "998 87 766", "defaultRegion": "NO", "lockId": "l1"}
    )
    [sent] = recorder.api_requests()
    assert dict(sent.url.params) == {"appUserId": "+4799887766", "lockId": "l1"}
    await conn.http.aclose()


async def test_token_is_cached_and_fetched_again_after_expiry_or_401() -> None:
    clock = FakeClock()
    calls = {"n": 0}

    def answer(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 3:
            return httpx.Response(
                401, json={"error": "JsonWebTokenError", "errorDescription": "JWT expired"}
            )
        return httpx.Response(200, json={"key": {"id": "k1", "lockId": "l1", "state": "active"}})

    recorder = Recorder(answer)
    conn = connection(recorder, clock)
    client = UnlocClient(conn, ACTION)
    await client.get_key("k1")
    await client.get_key("k1")
    assert recorder.tokens == 1
    token_body = json.loads(recorder.requests[0].content)
    assert token_body == {
        "grant_type": "client_credentials",
        "client_id": "cid",
        "client_secret": "s3cr3t-value",
        "scope": "project.admin",
        "project_id": "p1",
    }
    await client.get_key("k1")  # 401 once: a new token, then the call succeeds
    assert recorder.tokens == 2
    assert recorder.requests[-1].headers["authorization"] == "Bearer tok2"
    clock.advance(3600)
    await client.get_key("k1")
    assert recorder.tokens == 3
    await conn.http.aclose()


@pytest.mark.parametrize(
    ("response", "error", "words"),
    [
        (
            httpx.Response(429, headers={"retry-after": "7"}, json={"message": "Slow down"}),
            RetryableError,
            "rate limiting this connection (HTTP 429 Too Many Requests: Slow down)",
        ),
        (
            httpx.Response(504, json={"message": "upstream timed out"}),
            RetryableError,
            "Unloc answered HTTP 504 Gateway Timeout: upstream timed out",
        ),
        (
            httpx.Response(403, json={"title": "Forbidden", "detail": "projectId must match"}),
            ConfigurationError,
            "HTTP 403 Forbidden: projectId must match",
        ),
        (
            httpx.Response(404, json={"title": "Not Found", "detail": "Key k1 not found"}),
            FatalError,
            "HTTP 404 Not Found: Key k1 not found",
        ),
    ],
)
async def test_http_errors_name_the_action_and_carry_unlocs_answer(
    response: httpx.Response, error: type[Exception], words: str
) -> None:
    conn = connection(Recorder(lambda r: response))
    with pytest.raises(error) as info:
        await UnlocClient(conn, ACTION).get_key("k1")
    message = str(info.value)
    assert message.startswith(f"{ACTION}: get key (GET /v2/projects/p1/keys/k1): ")
    assert words in message
    if response.status_code == 504:  # a gateway lost Unloc's answer
        assert isinstance(info.value, RetryableError) and info.value.maybe_applied is True
    if response.status_code == 429:
        assert isinstance(info.value, RateLimitedError) and info.value.retry_after == 7
    assert "s3cr3t-value" not in message
    await conn.http.aclose()


@pytest.mark.parametrize(
    ("failure", "words", "applied"),
    [
        (httpx.ReadTimeout, "no answer from Unloc within 4 s (ReadTimeout)", True),
        (httpx.ReadError, "reset or closed before Unloc answered", True),
        (httpx.RemoteProtocolError, "reset or closed before Unloc answered", True),
        (httpx.ConnectError, "could not reach Unloc", False),
        (httpx.ConnectTimeout, "no connection to Unloc within 4 s (ConnectTimeout)", False),
    ],
)
async def test_unanswered_calls_say_whether_unloc_may_have_applied_them(
    failure: type[httpx.TransportError], words: str, applied: bool
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.extensions["timeout"]["read"] == 4  # the connection's timeoutSeconds
        raise failure("cut", request=request)

    conn = make_connection(
        "unloc",
        {**CONFIG, "timeoutSeconds": 4},
        clock=FakeClock(),
        transport=httpx.MockTransport(Recorder(answer)),
    )
    with pytest.raises(RetryableError) as info:
        await UnlocClient(conn, ACTION).get_job("j1")
    message = str(info.value)
    assert message.startswith(f"{ACTION}: get job (GET /v2/projects/p1/jobs/j1): ")
    assert words in message and info.value.maybe_applied is applied
    assert ("timed out" in message or "within" in message) == ("Timeout" in failure.__name__)
    await conn.http.aclose()


async def test_bad_credentials_are_a_configuration_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401, json={"error": "invalid_client", "errorDescription": "Invalid client credentials"}
        )

    conn = make_connection("unloc", CONFIG, transport=httpx.MockTransport(handler))
    with pytest.raises(ConfigurationError, match="client id, client secret"):
        await UnlocClient(conn, ACTION).get_key("k1")
    await conn.http.aclose()


def test_key_input_omits_missing_times_and_normalises_the_phone() -> None:
    body = key_input({"lockId": "l1", "appUserId": "+47 998 87 766", "start": None, "end": ""})
    assert body == {"lockId": "l1", "appUserId": "+4799887766"}
    body = key_input(
        {
            "lockId": "l1",
            "appUserId": "99887766",
            "defaultRegion": "no",
            "start": "2026-03-01T15:00:00+01:00",
            "durationMinutes": 90,
        }
    )
    assert body == {
        "lockId": "l1",
        "appUserId": "+4799887766",
        "start": "2026-03-01T14:00:00.000Z",
        "durationMinutes": 90,
    }


@pytest.mark.parametrize(
    ("item", "words"),
    [
        ({"appUserId": "99887766"}, "defaultRegion"),
        ({"appUserId": "+47123"}, "not a valid phone number"),
        ({"start": "next tuesday"}, "input.start"),
        ({"start": "2026-03-02T00:00:00Z", "end": "2026-03-01T00:00:00Z"}, "must be after start"),
        ({"end": "2026-03-02T00:00:00Z", "durationMinutes": 5}, "either end or durationMinutes"),
        (
            {
                "recurrence": {
                    "mon": {"startHour": 18, "startMinute": 0, "endHour": 9, "endMinute": 0}
                }
            },
            "recurrence.mon",
        ),
        (
            {
                "recurrence": {
                    "monday": {"startHour": 9, "startMinute": 0, "endHour": 18, "endMinute": 0}
                }
            },
            "unknown day",
        ),
    ],
)
async def test_create_key_refuses_bad_input_before_any_request(
    item: dict[str, Any], words: str
) -> None:
    recorder = Recorder()
    conn = connection(recorder)
    with pytest.raises(FatalError, match=words):
        await CREATE_KEY.run(
            make_context(conn), {"lockId": "l1", "appUserId": "+4799887766", **item}
        )
    assert recorder.requests == []
    await conn.http.aclose()


async def test_pagination_follows_start_after_id() -> None:
    pages = {None: (["a", "b"], "b"), "b": (["c"], "")}

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.params["limit"] == "2500"
        ids, after = pages[request.url.params.get("startAfterId")]
        return httpx.Response(
            200,
            json={
                "keys": [{"id": i, "lockId": "l1", "state": "active"} for i in ids],
                "startAfterId": after,
            },
        )

    recorder = Recorder(answer)
    conn = connection(recorder)
    keys = await UnlocClient(conn, ACTION).all_keys(
        lock_id="l1", exclude_states=["revoked", "expired"]
    )
    assert [k["id"] for k in keys] == ["a", "b", "c"]
    assert recorder.api_requests()[0].url.params["excludeStates"] == "revoked,expired"
    await conn.http.aclose()


async def test_revoking_an_expired_key_reports_it_gone() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(
                409, json={"title": "Conflict", "detail": "May not revoke expired keys"}
            )
        return httpx.Response(200, json={"key": {"id": "k1", "lockId": "l1", "state": "expired"}})

    conn = connection(Recorder(answer))
    result = await REVOKE_KEY.run(make_context(conn), {"keyId": "k1"})
    assert result == {"keyId": "k1", "revoked": False, "state": "expired"}
    await conn.http.aclose()


async def test_a_conflict_on_a_live_key_is_not_taken_for_gone() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(409, json={"title": "Conflict", "detail": "Key is locked"})
        return httpx.Response(200, json={"key": {"id": "k1", "lockId": "l1", "state": "active"}})

    conn = connection(Recorder(answer))
    with pytest.raises(FatalError, match="HTTP 409 Conflict: Key is locked"):
        await REVOKE_KEY.run(make_context(conn), {"keyId": "k1"})
    await conn.http.aclose()


async def test_a_key_gone_by_the_retry_of_its_revoke_counts_as_revoked() -> None:
    gone = httpx.Response(404, json={"title": "Not Found", "detail": "Key k1 not found"})
    conn = connection(Recorder(lambda r: gone))
    with pytest.raises(FatalError, match="Key k1 not found"):  # a wrong id, on the first try
        await REVOKE_KEY.run(make_context(conn), {"keyId": "k1"})
    retried = await REVOKE_KEY.run(make_context(conn, attempt=2), {"keyId": "k1"})
    assert retried == {"keyId": "k1", "revoked": False, "state": None}
    await conn.http.aclose()
