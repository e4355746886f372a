"""``latchflow serve``: one process with the HTTP API, the scheduler and the run workers.

``--flows DIR`` installs or refreshes every ``*.json`` flow there (problems are reported, not
fatal). ``--sandbox`` starts every installed vendor's simulator on a loopback port in this
process and saves a ``sandbox-<vendor>`` connection pointing at it. With SQLite on more than one
CPU, runs are advanced by a child process (``run_process``) unless ``--no-run-process``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from latchflow.backends.embedded.dispatcher import DEFAULT_WORKERS
from latchflow.backends.embedded.run_processes import RunProcess, default_count, wanted
from latchflow.builtin.http_request import ALLOW_ENV
from latchflow.engine import Engine
from latchflow.flows.document import load_document
from latchflow.plugin.errors import LatchflowError, ValidationError
from latchflow.runs.connections import save_connection
from latchflow.server import create_app
from latchflow.server.state import DEFAULT_BODY_LIMIT
from latchflow.storage.store import Settings

log = logging.getLogger("latchflow.serve")
LOOPBACK = "127.0.0.0/8"


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
    """How many (None: ``run_process.default_count``)."""


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


def allow_loopback() -> None:
    """Let http.request reach the sandbox simulators and receivers on loopback."""
    current = [p for p in os.environ.get(ALLOW_ENV, "").split(",") if p.strip()]
    if LOOPBACK not in current:
        os.environ[ALLOW_ENV] = ",".join([*current, LOOPBACK])


async def start_sandboxes(
    engine: Engine, public_base: str
) -> tuple[list[uvicorn.Server], list[str]]:
    """Run each vendor's simulator on loopback and save its ``sandbox-<vendor>`` connection."""
    servers: list[uvicorn.Server] = []
    problems: list[str] = []
    allow_loopback()
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
        webhook_url = f"{public_base}/vendors/{vendor.key}/{connection_id}"
        try:
            config = await vendor.sandbox(f"http://127.0.0.1:{port}", webhook_url)
            await save_connection(
                engine, connection_id, vendor.key, f"{vendor.title} sandbox", config
            )
        except Exception as exc:  # one vendor's sandbox failing must not stop the server
            problems.append(f"sandbox {vendor.key}: {type(exc).__name__}: {exc}")
            continue
        log.info("sandbox %s: simulator at http://127.0.0.1:%d", vendor.key, port)
    return servers, problems


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop where it is installed (not on Windows), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


QUIET_LOGGERS = ("apscheduler", "procrastinate", "httpx")
"""Libraries that log every wake-up, job or HTTP request at INFO."""


def configure_logging(process: str = "") -> None:
    """INFO lines on stderr, tagged with ``process`` when it is not the server's."""
    tag = f" [{process}]" if process else ""
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s %(name)s{tag} %(message)s",
        stream=sys.stderr,
    )
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def settle_heap() -> None:
    """Collect garbage, then exempt every object alive now (modules, plugins, flows: they live
    as long as the process) from later collections. A full collection of the server's heap
    stopped the event loop for 80 to 215 ms, once or twice per 10 s of load; after this, 1 to 5 ms."""
    gc.collect()
    gc.freeze()


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
    dispatcher = (
        RunProcess(engine, options.workers, processes=options.run_processes or default_count())
        if wanted(engine.settings, options.run_process)
        else None
    )
    app = create_app(
        engine, workers=options.workers, body_limit=options.body_limit, dispatcher=dispatcher
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=options.host,
            port=options.port,
            log_level="info",
            access_log=options.access_log,
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
