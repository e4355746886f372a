"""What every benchmark shares: starting ``latchflow serve`` and simulators, flows, and figures.

``start_server`` runs ``latchflow serve`` as its own process on a free loopback port with a
temporary data directory (or a shared ``database_url``: several nodes on one PostgreSQL), waits
for ``/healthz`` and returns a ``Node`` with the base URL, the process and a management API
key. Every node started from one benchmark process shares one Fernet key, so nodes on one
database can read each other's connection secrets.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

SECRET_KEY = Fernet.generate_key().decode()
"""One Fernet key for every node this benchmark process starts."""
BASE_ENV = {
    "LATCHFLOW_SECRET_KEY": SECRET_KEY,
    "LATCHFLOW_HTTP_ALLOW_NETWORKS": "127.0.0.0/8",
    "PYTHONUNBUFFERED": "1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float) -> None:
    """Poll ``url`` until it answers 2xx; raise with the process log if it exits or times out."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited:\n{log.read_text()[-4000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).is_success:
                return
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"{url}: not up after {seconds:.0f} s:\n{log.read_text()[-4000:]}")
        time.sleep(0.1)


@dataclass
class Node:
    """A running process with an HTTP address (a latchflow node or a simulator)."""

    base: str
    process: subprocess.Popen[bytes]
    data_dir: Path
    log: Path
    database_url: str
    api_key: str = ""
    env: dict[str, str] = field(default_factory=dict)
    owns_data_dir: bool = True

    @property
    def pid(self) -> int:
        return self.process.pid

    def api(self) -> httpx.Client:
        """A management API client for this node."""
        return httpx.Client(
            base_url=self.base, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=30
        )

    def hook_url(self, flow_id: str) -> str:
        """The flow's trigger URL (``POST`` JSON to it)."""
        with self.api() as api:
            response = api.get(f"/api/flows/{flow_id}")
            response.raise_for_status()
            return str(response.json()["trigger_url"])

    def cli(self, *args: str) -> str:
        """Run ``latchflow ARGS`` against this node's data (same database, same key)."""
        return cli(*args, data_dir=self.data_dir, database_url=self.database_url, env=self.env)

    def stop(self, timeout: float = 20.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (the data directory stays)."""
        self.process.kill()
        self.process.wait(timeout=10)


def cli(
    *args: str,
    data_dir: Path,
    database_url: str | None = None,
    env: dict[str, str] | None = None,
) -> str:
    command = [sys.executable, "-m", "latchflow.cli", *args, "--data-dir", str(data_dir)]
    if database_url:
        command += ["--database-url", database_url]
    result = subprocess.run(
        command,
        env=os.environ | BASE_ENV | (env or {}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"latchflow {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout.strip()


def write_flows(directory: Path, flows: Sequence[dict[str, Any]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for flow in flows:
        (directory / f"{flow['id']}.json").write_text(json.dumps(flow))
    return directory


def start_server(
    database_url: str | None = None,
    extra_env: dict[str, str] | None = None,
    flows: Sequence[dict[str, Any]] = (),
    *,
    data_dir: Path | None = None,
    workers: int = 16,
    port: int | None = None,
    before_start: Sequence[Sequence[str]] = (),
    startup_seconds: float = 120.0,
    serve_options: Sequence[str] = (),
) -> Node:
    """Start ``latchflow serve`` on a free loopback port and wait for ``/healthz``.

    ``flows`` are flow documents installed at start-up (``--flows``); ``before_start`` are
    ``latchflow`` commands run first against the same data (e.g. ``connections add ...``);
    ``serve_options`` are more ``serve`` options. The node gets a management API key. Without ``database_url`` it uses SQLite in its data dir.
    """
    owns = data_dir is None
    directory = data_dir or Path(tempfile.mkdtemp(prefix="latchflow-bench-"))
    env = dict(extra_env or {})
    url = database_url or f"sqlite:///{directory / 'latchflow.db'}"
    for args in before_start:
        cli(*args, data_dir=directory, database_url=url, env=env)
    api_key = cli(
        "apikey", "create", "--name", "bench", data_dir=directory, database_url=url, env=env
    )
    chosen = port or free_port()
    command = [sys.executable, "-m", "latchflow.cli", "serve", "--port", str(chosen)]
    command += ["--data-dir", str(directory), "--database-url", url, "--workers", str(workers)]
    command += serve_options
    if flows:
        command += ["--flows", str(write_flows(directory / "flows", flows))]
    log = directory / f"serve-{chosen}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=os.environ | BASE_ENV | env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{chosen}"
    wait_until_up(f"{base}/healthz", process, log, startup_seconds)
    return Node(base, process, directory, log, url, api_key, env, owns)


@contextlib.contextmanager
def running_server(
    database_url: str | None = None,
    extra_env: dict[str, str] | None = None,
    flows: Sequence[dict[str, Any]] = (),
    **options: Any,
) -> Iterator[Node]:
    node = start_server(database_url, extra_env, flows, **options)
    try:
        yield node
    finally:
        node.stop()


def start_asgi(
    factory: str,
    *,
    ready_path: str = "/_sim/openapi.json",
    port: int | None = None,
    extra_args: Sequence[str] = (),
) -> Node:
    """Serve an ASGI app factory (``module:function``) with uvicorn in its own process."""
    chosen = port or free_port()
    directory = Path(tempfile.mkdtemp(prefix="latchflow-bench-sim-"))
    log = directory / "uvicorn.log"
    command = [sys.executable, "-m", "uvicorn", factory, "--factory", "--port", str(chosen)]
    command += ["--host", "127.0.0.1", "--log-level", "warning", "--no-access-log", *extra_args]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=os.environ | BASE_ENV, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{chosen}"
    wait_until_up(base + ready_path, process, log, 30)
    return Node(base, process, directory, log, "")


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """The options a benchmark passes on to the ``latchflow serve`` it starts."""
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    parser.add_argument(
        "--no-run-process", action="store_true", help="run the runs in the server's process"
    )
    parser.add_argument(
        "--serve-option",
        action="append",
        default=[],
        help="another latchflow serve option, e.g. --serve-option=--run-processes=1",
    )


def serve_options(args: argparse.Namespace) -> list[str]:
    """The ``serve`` options ``add_server_arguments`` collected."""
    return [*(["--no-run-process"] if args.no_run_process else []), *args.serve_option]


def webhook_flow(flow_id: str, steps: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A webhook flow; by default one cheap step (``core.set`` from the body)."""
    return {
        "id": flow_id,
        "name": f"bench {flow_id}",
        "version": 1,
        "trigger": {"type": "webhook", "input": {}},
        "steps": list(
            steps
            or [
                {
                    "id": "set",
                    "action": "core.set",
                    "input": {"values": {"n": "{{ trigger.body.n }}"}},
                }
            ]
        ),
    }


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` in 0..1); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def process_sample(pid: int) -> tuple[float, int]:
    """(CPU seconds used so far, resident bytes) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return cpu, rss
