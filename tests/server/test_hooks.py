"""Trigger URLs: accepted only after commit, deduplicated, signed, and every refusal stores nothing."""

from __future__ import annotations

import json
import logging
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import func, select

from latchflow.engine import Engine
from latchflow.plugin.host import load_registry
from latchflow.server import create_app, signing
from latchflow.server.auth import create_api_key
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


async def test_signed_delivery_is_accepted_once(client: httpx.AsyncClient, engine: Engine) -> None:
    engine.install_flow(webhook_flow())
    secret = (await client.put("/api/flows/hooked/signing-secret", json={})).json()["secret"]
    body = json.dumps({"n": 1}).encode()
    stamp = int(engine.clock.now().timestamp())
    ok = await client.post(
        hook_url(engine), content=body, headers=signed_headers(secret, body, "msg_1", stamp)
    )
    assert ok.status_code == 202, ok.text
    assert counts(engine) == (1, 1, 1)
    replay = await client.post(
        hook_url(engine), content=body, headers=signed_headers(secret, body, "msg_1", stamp)
    )
    assert replay.status_code == 409
    assert replay.json()["where"] == "header webhook-id"
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
        ("replayed id", 409, "header webhook-id"),
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
    if case == "replayed id":
        first = await client.post(url, content=body, headers=_signed(secret, body, now))
        assert first.status_code == 202
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
    _, key = create_api_key(engine.store, "proxied")
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
    _, key = create_api_key(engines[0].store, "nodes")
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
