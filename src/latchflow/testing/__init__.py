"""Helpers for testing latchflow plugins: conformance checks, contexts, a real server for ASGI apps."""

from __future__ import annotations

import base64
import contextlib
import logging
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn

from latchflow.plugin.clock import Clock, SystemClock
from latchflow.plugin.host import Registry
from latchflow.plugin.types import JSON, ASGIApp, Connection, RunContext

SECRET_WORDS = ("secret", "password", "private", "token", "pem")


def conformance_problems(registry: Registry, plugin_name: str) -> list[str]:
    """What a plugin's registrations lack, beyond what registration already refuses.

    Secret-looking connection fields must be ``writeOnly``; every top-level field of a
    connection or input schema needs a description; a plugin registers something.
    """
    info = next((p for p in registry.plugins if p.name == plugin_name), None)
    if info is None:
        return [f"plugin {plugin_name!r} is not loaded"]
    problems: list[str] = []
    if not (info.vendors or info.triggers or info.actions):
        problems.append(f"plugin {plugin_name!r} registers nothing")
    for key in info.vendors:
        schema = registry.vendors[key].connection_schema
        for name, prop in schema.get("properties", {}).items():
            if any(w in name.lower() for w in SECRET_WORDS) and not prop.get("writeOnly"):
                problems.append(
                    f"vendor {key!r}: connection field {name!r} looks secret but is not writeOnly"
                )
        problems += _undescribed(schema, f"vendor {key!r} connection_schema")
    for key in info.triggers:
        problems += _undescribed(
            registry.triggers[key].input_schema, f"trigger {key!r} input_schema"
        )
    for key in info.actions:
        problems += _undescribed(registry.actions[key].input_schema, f"action {key!r} input_schema")
    return problems


def _undescribed(schema: JSON, where: str) -> list[str]:
    return [
        f"{where}: property {name!r} has no description"
        for name, prop in schema.get("properties", {}).items()
        if not (isinstance(prop, dict) and prop.get("description"))
    ]


def secret_forms(secret: str) -> list[str]:
    """A secret as it could leak: raw, URL-encoded, Base64 and Base64url."""
    raw = secret.encode()
    return [
        secret,
        urllib.parse.quote(secret, safe=""),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ]


def assert_no_secret(text: str, secrets: list[str]) -> None:
    """Fail if any secret, raw or encoded, appears in ``text`` (logs, run history, API output)."""
    for secret in secrets:
        for form in secret_forms(secret):
            assert form not in text, f"a secret leaked (as {form[:4]}...)"


def make_connection(
    vendor: str,
    config: JSON,
    *,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    connection_id: str = "test",
) -> Connection:
    """A Connection for calling a plugin directly in a test (close ``.http`` when done)."""
    return Connection(
        id=connection_id,
        vendor=vendor,
        config=config,
        http=httpx.AsyncClient(transport=transport, timeout=10.0),
        clock=clock or SystemClock(),
    )


def make_context(
    connection: Connection | None = None,
    *,
    run_id: str = "run-test",
    step_id: str = "step",
    attempt: int = 1,
    state: JSON | None = None,
    clock: Clock | None = None,
) -> RunContext:
    """A RunContext for calling an action directly in a test."""
    clock = clock or (connection.clock if connection else SystemClock())
    http = connection.http if connection else httpx.AsyncClient()
    return RunContext(
        run_id=run_id,
        flow_id="flow-test",
        step_id=step_id,
        attempt=attempt,
        idempotency_key=f"{run_id}:{step_id}",
        connection=connection,
        http=http,
        logger=logging.LoggerAdapter(logging.getLogger("latchflow.test"), {}),
        clock=clock,
        state=state,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_app(app: ASGIApp | Any, port: int | None = None) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a loopback port in a thread; yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the app did not start on 127.0.0.1:{port}")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
