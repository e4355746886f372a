"""Trigger URLs: accepted only after commit, deduplicated, signed, and every refusal stores nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import socket
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import func, select

from latchflow.engine import Engine
from latchflow.plugin.clock import FakeClock
from latchflow.plugin.host import load_registry
from latchflow.server import create_app, signing
from latchflow.server.state import ServerState
from latchflow.storage.database import Settings
from latchflow.storage.models import EventRecord, RunRecord, WebhookReceipt
from latchflow.testing import serve_app

from .conftest import webhook_flow


def counts(engine: Engine) -> tuple[int, int, int]:
    with engine.store.session() as session:
        return (
            session.exec(select(func.count()).select_from(EventRecord)).one(),
            session.exec(select(func.count()).select_from(RunRecord)).one(),
            session.exec(select(func.count()).select_from(WebhookReceipt)).one(),
        )


def hook_url(engine: Engine, flow_id: str = "hooked") -> str:
    record = engine.store.get_flow(flow_id)
    assert record is not None
    return f"/hooks/{flow_id}/{record.hook_token}"


async def test_accepted_event_is_committed_before_202_and_runs(
    client: httpx.AsyncClient, engine: Engine, state: ServerState
) -> None:
    engine.install_flow(webhook_flow())
    response = await client.post(hook_url(engine), json={"booking": {"id": "b-1"}})
    assert response.status_code == 202
    body = response.json()
    assert body["status_url"].endswith(f"/api/runs/{body['run_id']}")
    run = engine.run(body["run_id"])
    assert run is not None and run.status == "queued"
    await state.dispatcher.drain()
    detail = (await client.get(body["status_url"])).json()
    assert detail["status"] == "succeeded"
    assert detail["output"] == {"got": {"booking": {"id": "b-1"}}}
    assert detail["event"]["data"]["headers"]["content-type"] == "application/json"


async def test_idempotency_key_header_returns_first_run_with_200(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    engine.install_flow(webhook_flow())
    first = await client.post(hook_url(engine), json={"a": 1}, headers={"Idempotency-Key": "k1"})
    again = await client.post(hook_url(engine), json={"a": 2}, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["run_id"] == first.json()["run_id"] and again.json()["duplicate"]
    events = (await client.get("/api/events", params={"status": "duplicate"})).json()
    assert len(events) == 1 and "k1" in events[0]["reason"]
    assert counts(engine)[1] == 1


async def test_idempotency_key_path_in_body(client: httpx.AsyncClient, engine: Engine) -> None:
    engine.install_flow(webhook_flow(idempotency_key_path="booking.id"))
    first = await client.post(hook_url(engine), json={"booking": {"id": "b-7"}})
    again = await client.post(hook_url(engine), json={"booking": {"id": "b-7", "v": 2}})
    other = await client.post(hook_url(engine), json={"booking": {"id": "b-8"}})
    assert (first.status_code, again.status_code, other.status_code) == (202, 200, 202)
    assert again.json()["run_id"] == first.json()["run_id"] != other.json()["run_id"]


async def test_wait_returns_the_output_when_the_run_finishes_in_time(
    client: httpx.AsyncClient, engine: Engine, state: ServerState
) -> None:
    engine.install_flow(webhook_flow())
    await state.dispatcher.start()
    try:
        response = await client.post(hook_url(engine) + "?wait=5", json={"x": 1})
    finally:
        await state.dispatcher.stop()
    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"
    assert response.json()["output"] == {"got": {"x": 1}}


def signed_headers(secret: str, body: bytes, webhook_id: str, stamp: int) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": signing.sign(secret, webhook_id, stamp, body),
    }


async def test_a_signed_delivery_sent_again_gets_200_with_its_first_run(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock
) -> None:
    engine.install_flow(webhook_flow())
    secret = (await client.put("/api/flows/hooked/signing-secret", json={})).json()["secret"]
    body = json.dumps({"n": 1}).encode()
    first = signed_headers(secret, body, "msg_1", int(clock.now().timestamp()))
    ok = await client.post(hook_url(engine), content=body, headers=first)
    assert ok.status_code == 202, ok.text
    assert counts(engine) == (1, 1, 1)
    clock.advance(90)  # the sender retries later: same webhook-id, new timestamp and signature
    retry = signed_headers(secret, body, "msg_1", int(clock.now().timestamp()))
    assert retry["webhook-signature"] != first["webhook-signature"]
    again = await client.post(hook_url(engine), content=body, headers=retry)
    assert again.status_code == 200, again.text
    assert again.json()["run_id"] == ok.json()["run_id"] and again.json()["duplicate"] is True
    assert again.json()["status_url"] == ok.json()["status_url"]
    assert counts(engine) == (2, 1, 1)  # a duplicate event, as for a repeated Idempotency-Key
    duplicates = (await client.get("/api/events", params={"status": "duplicate"})).json()
    assert len(duplicates) == 1 and "webhook-id 'msg_1'" in duplicates[0]["reason"]
    with engine.store.session() as session:
        receipt = session.get(WebhookReceipt, ("hooked", "msg_1"))
    assert receipt is not None and receipt.run_id == ok.json()["run_id"]


async def test_a_captured_delivery_sent_after_the_window_is_refused(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock
) -> None:
    engine.install_flow(webhook_flow())
    secret = (await client.put("/api/flows/hooked/signing-secret", json={})).json()["secret"]
    body = b'{"n": 1}'
    captured = signed_headers(secret, body, "msg_1", int(clock.now().timestamp()))
    assert (await client.post(hook_url(engine), content=body, headers=captured)).status_code == 202
    clock.advance(signing.TOLERANCE_SECONDS + 1)
    replay = await client.post(hook_url(engine), content=body, headers=captured)
    assert replay.status_code == 401
    assert replay.json()["where"] == "header webhook-timestamp"
    assert counts(engine) == (1, 1, 1)


def _signed(secret: str, body: bytes, stamp: int, **change: str) -> dict[str, str]:
    headers = signed_headers(secret, body, "msg_x", stamp)
    headers.update(change)
    return headers


@pytest.mark.parametrize(
    ("case", "status", "where"),
    [
        ("wrong token", 404, "path"),
        ("unknown flow", 404, "path"),
        ("no content type", 415, "header content-type"),
        ("form content type", 415, "header content-type"),
        ("not json", 400, "body"),
        ("nan is not json", 400, "body"),
        ("oversized body", 413, "body"),
        ("missing signature", 401, "header webhook-signature"),
        ("bad signature", 401, "header webhook-signature"),
        ("stale timestamp", 401, "header webhook-timestamp"),
        ("future timestamp", 401, "header webhook-timestamp"),
        ("superscript timestamp", 400, "header webhook-timestamp"),
        ("5,000-digit timestamp", 400, "header webhook-timestamp"),
        ("millisecond timestamp", 400, "header webhook-timestamp"),
    ],
)
async def test_rejections_are_clear_and_store_nothing(
    client: httpx.AsyncClient, engine: Engine, case: str, status: int, where: str
) -> None:
    engine.install_flow(webhook_flow())
    secret = (await client.put("/api/flows/hooked/signing-secret", json={})).json()["secret"]
    url = hook_url(engine)
    now = int(engine.clock.now().timestamp())
    body = b'{"ok": true}'
    before = counts(engine)
    kwargs: dict[str, Any] = {"content": body, "headers": _signed(secret, body, now)}
    if case == "wrong token":
        url = url[:-3] + "abc"
    elif case == "unknown flow":
        url = url.replace("/hooked/", "/nope/")
    elif case == "no content type":
        kwargs["headers"].pop("content-type")
    elif case == "form content type":
        kwargs["headers"]["content-type"] = "application/x-www-form-urlencoded"
    elif case in ("not json", "nan is not json"):
        raw = b"{not json" if case == "not json" else b'{"x": NaN}'
        kwargs = {"content": raw, "headers": _signed(secret, raw, now)}
    elif case == "oversized body":
        raw = json.dumps({"pad": "x" * 5000}).encode()
        kwargs = {"content": raw, "headers": _signed(secret, raw, now)}
    elif case == "missing signature":
        kwargs["headers"].pop("webhook-signature")
    elif case == "bad signature":
        kwargs["headers"] = _signed(signing.new_secret(), body, now)
    elif case == "stale timestamp":
        kwargs["headers"] = _signed(secret, body, now - 301)
    elif case == "future timestamp":
        kwargs["headers"] = _signed(secret, body, now + 400)
    elif case == "superscript timestamp":  # "²".isdigit(), but int("²") fails
        kwargs["headers"]["webhook-timestamp"] = "²".encode("latin-1")
    elif case == "5,000-digit timestamp":  # longer than int() reads
        kwargs["headers"]["webhook-timestamp"] = "9" * 5000
    elif case == "millisecond timestamp":
        kwargs["headers"]["webhook-timestamp"] = str(now * 1000)
    response = await client.post(url, **kwargs)
    assert response.status_code == status, response.text
    problem = response.json()
    assert problem["error"] and problem["where"] == where
    assert counts(engine) == before


async def test_disabled_flow_and_rotated_token_are_refused(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    engine.install_flow(webhook_flow())
    old = hook_url(engine)
    new_url = (await client.post("/api/flows/hooked/rotate-token")).json()["trigger_url"]
    assert (await client.post(old, json={})).status_code == 404
    assert (await client.post(new_url, json={})).status_code == 202
    await client.post("/api/flows/hooked/disable")
    refused = await client.post(new_url, json={})
    assert refused.status_code == 409 and "disabled" in refused.json()["error"]


async def test_a_malformed_timestamp_says_what_to_send(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    engine.install_flow(webhook_flow())
    secret = (await client.put("/api/flows/hooked/signing-secret", json={})).json()["secret"]
    body = b"{}"
    headers: dict[str, Any] = signed_headers(secret, body, "msg_1", 0)
    headers["webhook-timestamp"] = "12²".encode("latin-1")
    response = await client.post(hook_url(engine), content=body, headers=headers)
    assert response.status_code == 400
    problem = response.json()
    assert "webhook-timestamp" in problem["error"] and "digits" in problem["error"]
    assert "seconds since 1970" in problem["hint"]


def reference_signature(key: bytes, webhook_id: str, stamp: int, body: bytes) -> str:
    """A signature made as a sender's library makes it, from the raw key."""
    digest = hmac.new(key, f"{webhook_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@pytest.mark.parametrize("padded", [True, False])
async def test_secrets_with_and_without_base64_padding_verify(
    client: httpx.AsyncClient, engine: Engine, padded: bool
) -> None:
    key = bytes(range(100, 120))  # 20 bytes: base64 ends in "="
    encoded = base64.b64encode(key).decode()
    assert encoded.endswith("=")
    secret = "whsec_" + (encoded if padded else encoded.rstrip("="))
    assert signing.secret_key(secret) == key
    engine.install_flow(webhook_flow())
    saved = await client.put("/api/flows/hooked/signing-secret", json={"secret": secret})
    assert saved.status_code == 200, saved.text
    body = b'{"n": 1}'
    stamp = int(engine.clock.now().timestamp())
    headers = signed_headers(secret, body, "msg_1", stamp)
    headers["webhook-signature"] = reference_signature(key, "msg_1", stamp, body)
    response = await client.post(hook_url(engine), content=body, headers=headers)
    assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("whsec_" + base64.b64encode(bytes(15)).decode(), "too short"),
        ("whsec_" + base64.b64encode(bytes(15)).decode().rstrip("="), "too short"),
        ("whsec_" + "A" * 25, "not standard base64"),
        ("whsec_abc-def_ghijklmnopqrstuv", "not standard base64"),
        (base64.b64encode(bytes(24)).decode(), "starts with 'whsec_'"),
    ],
)
async def test_unusable_secrets_are_refused(
    client: httpx.AsyncClient, engine: Engine, secret: str, message: str
) -> None:
    engine.install_flow(webhook_flow())
    response = await client.put("/api/flows/hooked/signing-secret", json={"secret": secret})
    assert response.status_code == 400
    assert message in response.json()["error"] and response.json()["where"] == "secret"


async def signed_with(
    client: httpx.AsyncClient, engine: Engine, secret: str, webhook_id: str
) -> int:
    """The status of a delivery signed with ``secret`` at the engine's current time."""
    body = json.dumps({"id": webhook_id}).encode()
    stamp = int(engine.clock.now().timestamp())
    headers = signed_headers(secret, body, webhook_id, stamp)
    return (await client.post(hook_url(engine), content=body, headers=headers)).status_code


async def test_a_replaced_secret_works_until_its_grace_period_ends(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock
) -> None:
    engine.install_flow(webhook_flow())
    url = "/api/flows/hooked/signing-secret"
    old = (await client.put(url, json={})).json()["secret"]
    assert (await client.get("/api/flows/hooked")).json()["previous_secret_until"] is None
    new = (await client.put(url, json={"grace_seconds": 3600})).json()["secret"]
    until = clock.now() + timedelta(seconds=3600)
    shown = (await client.get("/api/flows/hooked")).json()["previous_secret_until"]
    assert datetime.fromisoformat(shown) == until
    assert await signed_with(client, engine, old, "msg_1") == 202
    assert await signed_with(client, engine, new, "msg_2") == 202
    clock.advance(3599)
    assert await signed_with(client, engine, old, "msg_3") == 202
    clock.advance(1)
    assert await signed_with(client, engine, old, "msg_4") == 401
    assert await signed_with(client, engine, new, "msg_5") == 202
    assert (await client.get("/api/flows/hooked")).json()["previous_secret_until"] is None


async def test_the_default_grace_period_is_a_day(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock
) -> None:
    engine.install_flow(webhook_flow())
    url = "/api/flows/hooked/signing-secret"
    old = (await client.put(url, json={})).json()["secret"]
    await client.put(url, json={})
    clock.advance(24 * 3600 - 1)
    assert await signed_with(client, engine, old, "msg_1") == 202
    clock.advance(1)
    assert await signed_with(client, engine, old, "msg_2") == 401


async def test_grace_0_stops_the_old_secret_at_once_and_delete_clears_both(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    engine.install_flow(webhook_flow())
    url = "/api/flows/hooked/signing-secret"
    first = (await client.put(url, json={})).json()["secret"]
    second = (await client.put(url, json={"grace_seconds": 0})).json()["secret"]
    assert await signed_with(client, engine, first, "msg_1") == 401
    assert await signed_with(client, engine, second, "msg_2") == 202
    await client.put(url, json={"grace_seconds": 600})
    assert await signed_with(client, engine, second, "msg_3") == 202
    cleared = await client.delete(url)
    assert cleared.json()["signed"] is False and cleared.json()["previous_secret_until"] is None
    record = engine.store.get_flow("hooked")
    assert record is not None
    assert (record.previous_signing_secret, record.previous_secret_until) == (None, None)
    assert (await client.post(hook_url(engine), json={})).status_code == 202


@pytest.mark.parametrize("grace", [-1, 7 * 24 * 3600 + 1, "a day"])
async def test_a_grace_period_outside_0_to_7_days_is_refused(
    client: httpx.AsyncClient, engine: Engine, grace: object
) -> None:
    engine.install_flow(webhook_flow())
    url = "/api/flows/hooked/signing-secret"
    response = await client.put(url, json={"grace_seconds": grace})
    assert response.status_code == 422, response.text
    assert "grace_seconds" in response.text
    record = engine.store.get_flow("hooked")
    assert record is not None and record.signing_secret is None


def test_signature_matches_the_standard_webhooks_example() -> None:
    # the example from the Standard Webhooks specification's reference libraries
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    signature = signing.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert signing.signature_matches(
        secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, "v1,bogus " + signature
    )


def test_a_client_dropping_mid_body_is_refused_quietly(
    app: FastAPI, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    engine.install_flow(webhook_flow())
    errors = logging.getLogger("uvicorn.error")
    with serve_app(app) as base:
        errors.addHandler(caplog.handler)  # uvicorn's loggers do not propagate to the root
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                f"POST {hook_url(engine)} HTTP/1.1\r\nHost: {host}\r\n"
                "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                '{"half": '.encode()
            )
            time.sleep(0.2)  # the server reads the headers and half the body, then the close
        # the server is still healthy and answers the next delivery
        assert httpx.post(base + hook_url(engine), json={"n": 1}).status_code == 202
    errors.removeHandler(caplog.handler)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert counts(engine) == (1, 1, 0)


def test_a_failure_while_storing_is_a_logged_json_500_that_stores_nothing(
    app: FastAPI, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    engine.install_flow(webhook_flow())
    errors = logging.getLogger("uvicorn.error")

    def rename_runs(old: str, new: str) -> None:
        with engine.store.engine.begin() as db:
            db.exec_driver_sql(f"ALTER TABLE {old} RENAME TO {new}")

    with serve_app(app) as base:
        errors.addHandler(caplog.handler)  # uvicorn's loggers do not propagate to the root
        rename_runs("runs", "runs_elsewhere")  # the database fails every write of a run
        failed = httpx.post(base + hook_url(engine), json={"n": 1})
        rename_runs("runs_elsewhere", "runs")
        again = httpx.post(base + hook_url(engine), json={"n": 2})
    errors.removeHandler(caplog.handler)
    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/json"
    assert set(failed.json()) == {"error", "where", "hint"}
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(logged) == 1 and "no such table: runs" in str(logged[0].exc_info)
    assert again.status_code == 202
    assert counts(engine) == (1, 1, 0)


async def test_behind_a_root_path_the_status_url_keeps_it(app: FastAPI, engine: Engine) -> None:
    engine.install_flow(webhook_flow())
    _, key = engine.store.api_keys.create("proxied")
    transport = httpx.ASGITransport(app=app, root_path="/latchflow")
    async with httpx.AsyncClient(
        transport=transport,
        base_url="https://automation.example",
        headers={"authorization": f"Bearer {key}"},
    ) as client:
        response = await client.post("/latchflow" + hook_url(engine), json={"n": 1})
        assert response.status_code == 202
        body = response.json()
        status_url = body["status_url"]
        assert status_url == f"https://automation.example/latchflow/api/runs/{body['run_id']}"
        assert (await client.get(status_url)).json()["status"] == "queued"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_changes_made_through_another_node_count_at_once(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    settings = Settings.from_environment(tmp_path / "data", url)
    engines = [Engine(settings, registry=load_registry()) for _ in range(2)]
    engines[0].install_flow(webhook_flow())
    _, key = engines[0].store.api_keys.create("nodes")
    hooks_node, api_node = (
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(engine, background=False)),
            base_url="http://testserver",
            headers={"authorization": f"Bearer {key}"},
        )
        for engine in engines
    )
    try:
        old = hook_url(engines[0])
        assert (await hooks_node.post(old, json={})).status_code == 202
        rotated = await api_node.post("/api/flows/hooked/rotate-token")
        new = rotated.json()["trigger_url"].removeprefix("http://testserver")
        assert (await hooks_node.post(old, json={})).status_code == 404
        assert (await hooks_node.post(new, json={})).status_code == 202
        await api_node.post("/api/flows/hooked/disable")
        assert (await hooks_node.post(new, json={})).status_code == 409
        await api_node.post("/api/flows/hooked/enable")
        assert (await hooks_node.post(new, json={})).status_code == 202
        await api_node.delete("/api/flows/hooked")
        assert (await hooks_node.post(new, json={})).status_code == 404
    finally:
        for client in (hooks_node, api_node):
            await client.aclose()
        for engine in engines:
            engine.store.engine.dispose()


async def test_trigger_urls_work_again_after_the_database_dropped_its_connections(
    pg_engine: Engine,
) -> None:
    pg_engine.install_flow(webhook_flow())
    transport = httpx.ASGITransport(app=create_app(pg_engine, background=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.post(hook_url(pg_engine), json={"n": 1})).status_code == 202
        with pg_engine.store.engine.connect() as db:  # as a restarted server would drop them
            db.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        assert (await client.post(hook_url(pg_engine), json={"n": 2})).status_code == 202
    assert counts(pg_engine)[1] == 2
