"""Limits before work: a request's head, its body and its JSON are refused before anything of it
is parsed, stored or authenticated past; the server goes on answering others."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from latchflow.engine import Engine
from latchflow.server.protocol import MAX_HEAD_BYTES, BoundedHttpToolsProtocol
from latchflow.testing import serve_app

from .conftest import webhook_flow
from .test_hooks import hook_url


@pytest.fixture
def server(app: FastAPI) -> Iterator[str]:
    with serve_app(app, http=BoundedHttpToolsProtocol) as base:
        yield base


def raw(base: str, request: bytes) -> bytes:
    """Send raw bytes and read the answer (its head and its Content-Length of body)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)  # a refusal may come before all of it was sent
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer) < answer_length(answer):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def answer_length(answer: bytes) -> int:
    head, _, _ = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + 4 + int(value)
    return len(answer) + 1  # no length: read to the end


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_a_huge_header_is_refused_with_431_before_it_is_parsed(server: str) -> None:
    big = b"x" * (1024 * 1024)
    answer = raw(server, b"GET /healthz HTTP/1.1\r\nhost: a\r\nx-big: " + big + b"\r\n\r\n")
    assert status_of(answer) == 431
    assert b"larger than %d bytes" % MAX_HEAD_BYTES in answer and b"connection: close" in answer
    assert httpx.get(f"{server}/healthz").status_code == 200  # the server goes on


def test_too_many_headers_and_a_too_long_target_are_refused(server: str) -> None:
    many = b"".join(b"x-%d: 1\r\n" % n for n in range(101))
    assert status_of(raw(server, b"GET /healthz HTTP/1.1\r\nhost: a\r\n" + many + b"\r\n")) == 431
    long = b"/healthz?q=" + b"a" * 9000
    assert status_of(raw(server, b"GET " + long + b" HTTP/1.1\r\nhost: a\r\n\r\n")) == 414


def test_a_huge_body_without_a_key_is_refused_before_it_is_read(server: str) -> None:
    head = (
        b"POST /api/flows HTTP/1.1\r\nhost: a\r\ncontent-type: application/json\r\n"
        b"content-length: 67108864\r\n\r\n"
    )
    answer = raw(server, head + b"[" * 1000)  # the rest never comes: the answer must not wait
    assert status_of(answer) == 401 and b"needs an API key" in answer


async def test_api_bodies_are_limited_and_strict_json_after_the_key(
    client: httpx.AsyncClient,
) -> None:
    too_big = await client.post("/api/flows", content=b" " * 5000)  # the app's limit: 4096
    assert too_big.status_code == 413 and too_big.json()["where"] == "body"
    for body, problem in (
        (b"[" * 40 + b"]" * 40, "nested more than"),
        (b'{"a": 1e999}', "too large"),
        (b'{"a": "\\ud800"}', "lone UTF-16 surrogate"),
        (b'{"a": NaN}', "NaN is not JSON"),
    ):
        refused = await client.post(
            "/api/flows", content=body, headers={"content-type": "application/json"}
        )
        assert refused.status_code == 400 and problem in refused.json()["error"], body


async def test_trigger_url_bodies_that_cannot_be_stored_safely_are_refused(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    engine.install_flow(webhook_flow())
    for body in (b"[" * 1000 + b"]" * 1000, b'{"a": 1e999}', b'{"s": "\\udfff!"}'):
        refused = await client.post(
            hook_url(engine), content=body, headers={"content-type": "application/json"}
        )
        assert refused.status_code == 400, body
    assert (await client.get("/api/events")).json() == []


async def test_listings_survive_text_kept_from_before_lone_surrogates_were_refused(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    engine.install_flow(webhook_flow())
    run_id = engine.start("hooked", {"body": {"name": "\ud800"}}).run_id  # as stored before
    for path in ("/api/events", f"/api/runs/{run_id}"):
        listed = await client.get(path)
        assert listed.status_code == 200 and "\\ud800" in listed.text


async def test_unknown_routes_and_methods_answer_in_the_error_format(
    client: httpx.AsyncClient,
) -> None:
    missing = await client.get("/api/nothing-here")
    assert missing.status_code == 404 and set(missing.json()) == {"error", "where", "hint"}
    wrong = await client.delete("/api/runs")
    assert wrong.status_code == 405 and "GET" in wrong.headers["allow"]
    invalid = await client.post("/api/runs/x/replay", json={"from_start": "not a boolean"})
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["path"] == "$.from_start"


def test_the_key_is_checked_before_anything_else_on_every_api_route(
    app: FastAPI, engine: Engine, server: str
) -> None:
    _, key = engine.store.api_keys.create("limits")
    operations = [
        (method, path)
        for path, item in app.openapi()["paths"].items()
        if path.startswith("/api/")
        for method in item
    ]
    assert len(operations) > 15
    for method, path in operations:
        target = path.replace("{", "").replace("}", "")  # any value will do
        answer = httpx.request(method, f"{server}{target}", content=b"{" * 100)
        assert answer.status_code == 401, (method, path)
    assert httpx.get(f"{server}/api/runs", headers={"authorization": f"Bearer {key}"}).is_success
