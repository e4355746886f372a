"""``latchflow serve``: one process with the HTTP API, the scheduler and the run workers.

``--flows DIR`` installs or refreshes every ``*.json`` flow there (problems are reported, not
fatal). ``--sandbox`` starts every installed vendor's simulator on a loopback port in this
process and saves a ``sandbox-<vendor>`` connection pointing at it. With SQLite on more than one
CPU, runs are advanced by a child process (``run_process``) unless ``--no-run-process``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from latchflow.backends.base import DEFAULT_WORKERS
from latchflow.backends.choose import run_processes
from latchflow.engine import Engine
from latchflow.flows.document import load_document
from latchflow.plugin.errors import LatchflowError, ValidationError
from latchflow.process import settle_heap
from latchflow.runs.connections import new_webhook_token
from latchflow.server import create_app
from latchflow.server.protocol import BoundedHttpToolsProtocol
from latchflow.server.state import DEFAULT_BODY_LIMIT
from latchflow.storage.database import Settings

log = logging.getLogger("latchflow.serve")


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path | None = None
    database_url: str | None = None
    flows: Path | None = None
    sandbox: bool = False
    workers: int = DEFAULT_WORKERS
    body_limit: int = DEFAULT_BODY_LIMIT
    access_log: bool = False
    run_process: bool | None = None
    """Advance runs in child processes; None: when the database and the machine allow it."""
    run_processes: int | None = None
    """How many (None: ``backends.choose.run_processes`` decides)."""


def install_flows(engine: Engine, directory: Path) -> list[str]:
    """Install every flow file in a directory; returns the problems, one line each."""
    problems: list[str] = []
    connection_ids = {c.id for c in engine.store.list_connections()}
    for path in sorted(directory.glob("*.json")):
        try:
            record = engine.install_flow(load_document(path))
        except ValidationError as exc:
            problems += [f"{path.name}: {detail}" for detail in exc.errors]
            continue
        flow = engine.flow(record.id)
        named = [("$.trigger.connection", flow.trigger_connection)] + [
            (f"$.steps[{i}].connection", s.connection) for i, s in enumerate(flow.steps)
        ]
        for where, connection_id in named:
            if connection_id is not None and connection_id not in connection_ids:
                problems.append(
                    f"{path.name}: {where}: connection {connection_id!r} does not exist; add it"
                    " (POST /api/connections) or start with --sandbox; runs fail until then"
                )
    return problems


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start_sandboxes(
    engine: Engine, public_base: str
) -> tuple[list[uvicorn.Server], list[str]]:
    """Run each vendor's simulator on loopback and save its ``sandbox-<vendor>`` connection,
    and a place for each resource it simulates (``Access.sync_places``)."""
    servers: list[uvicorn.Server] = []
    problems: list[str] = []
    for vendor in engine.registry.vendors.values():
        if vendor.simulator is None or vendor.sandbox is None:
            continue
        port = _free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                vendor.simulator(), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
            )
        )
        task = asyncio.create_task(server.serve(), name=f"simulator-{vendor.key}")
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if not server.started:
            problems.append(f"sandbox {vendor.key}: the simulator did not start")
            continue
        servers.append(server)
        connection_id = f"sandbox-{vendor.key}"
        token = new_webhook_token()  # a new URL for every start: the simulator is new too
        webhook_url = f"{public_base}/vendors/{vendor.key}/{connection_id}/{token}"
        try:
            config = await vendor.sandbox(f"http://127.0.0.1:{port}", webhook_url)
            await engine.connections.save(
                connection_id, vendor.key, f"{vendor.title} sandbox", config, webhook_token=token
            )
            await engine.access.sync_places(connection_id)
        except Exception as exc:  # one vendor's sandbox failing must not stop the server
            problems.append(f"sandbox {vendor.key}: {type(exc).__name__}: {exc}")
            continue
        log.info("sandbox %s: simulator at http://127.0.0.1:%d", vendor.key, port)
    return servers, problems


def exit_cleanly_on_signals() -> None:
    """Make SIGTERM/SIGINT end ``serve`` with exit code 0 after the graceful shutdown.

    uvicorn handles the signal (stop accepting, finish requests, run the lifespan shutdown:
    in-flight steps finish) and then raises it again for the handler that was there before it
    started; without one of ours that is the default, which kills the process.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(
            sig, lambda number, _frame: log.info("stopped on %s", signal.Signals(number).name)
        )


async def serve(options: ServeOptions) -> None:
    exit_cleanly_on_signals()
    engine = Engine(Settings.from_environment(options.data_dir, options.database_url))
    simulators: list[uvicorn.Server] = []
    problems: list[str] = []
    if options.sandbox:
        simulators, problems = await start_sandboxes(
            engine, f"http://{options.host}:{options.port}"
        )
    if options.flows is not None:
        problems += install_flows(engine, options.flows)
    for problem in problems:
        log.warning("%s", problem)
    app = create_app(
        engine,
        workers=options.workers,
        body_limit=options.body_limit,
        run_processes=run_processes(engine.settings, options.run_process, options.run_processes),
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=options.host,
            port=options.port,
            log_level="info",
            access_log=options.access_log,
            http=BoundedHttpToolsProtocol,
        )
    )
    settle_heap()
    try:
        await server.serve()
    finally:
        for simulator in simulators:
            simulator.should_exit = True
        await asyncio.sleep(0)
        with contextlib.suppress(LatchflowError):
            await engine.close()
