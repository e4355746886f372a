"""Calling a plugin's parts directly in a test: connections, run contexts, a real server."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import uvicorn

from latchflow.plugin.clock import Clock, SystemClock
from latchflow.plugin.types import JSON, ASGIApp, Connection, RunContext


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
    started_at: datetime | None = None,
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
        started_at=started_at,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_app(app: ASGIApp | Any, port: int | None = None, **options: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a loopback port in a thread; yields its base URL.
    ``options`` are more ``uvicorn.Config`` options."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", **options
        )
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
