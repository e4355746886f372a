"""Helpers for tests that run ``latchflow serve`` as a real process."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request

from latchflow.testing import free_port, serve_app

ENV = {"LATCHFLOW_LOAD_PLUGINS": "", "LATCHFLOW_HTTP_ALLOW_NETWORKS": "127.0.0.0/8"}


def cli(*args: str, data_dir: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "latchflow.cli", *args, "--data-dir", str(data_dir)],
        env=os.environ | ENV,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


def write_flow(directory: Path, document: dict[str, Any]) -> Path:
    """Write a flow document as ``<id>.json`` for ``serve --flows``; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{document['id']}.json").write_text(json.dumps(document))
    return directory


def wait_for(check: Any, timeout: float, what: str) -> Any:
    """Call ``check`` until it returns something truthy (returned) or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


class Server:
    """``latchflow serve`` in a subprocess; ``sandbox`` loads the installed vendor plugins and
    starts their simulators (other servers load the ``plugins`` named, by default none).
    ``options`` are more ``serve`` options."""

    def __init__(
        self,
        data_dir: Path,
        flows: Path | None,
        workers: int,
        port: int,
        sandbox: bool = False,
        options: Sequence[str] = (),
        plugins: str = "",
    ) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        args = [sys.executable, "-m", "latchflow.cli", "serve", "--port", str(port)]
        args += ["--data-dir", str(data_dir), "--workers", str(workers), *options]
        if flows is not None:
            args += ["--flows", str(flows)]
        env = os.environ | ENV | {"LATCHFLOW_LOAD_PLUGINS": plugins}
        if sandbox:
            args.append("--sandbox")
            env.pop("LATCHFLOW_LOAD_PLUGINS")
        self.log = data_dir.parent / f"serve-{port}-{time.monotonic_ns()}.log"
        self._log_file = self.log.open("w")
        self.process = subprocess.Popen(
            args, env=env, stdout=self._log_file, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"latchflow serve exited:\n{self.log.read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"latchflow serve did not start:\n{self.log.read_text()}")
            time.sleep(0.1)

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no shutdown code runs
        self.process.wait(timeout=10)
        self._log_file.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()


@contextmanager
def running_server(
    data_dir: Path,
    flows: Path | None = None,
    workers: int = 16,
    port: int | None = None,
    sandbox: bool = False,
    options: Sequence[str] = (),
) -> Iterator[Server]:
    server = Server(data_dir, flows, workers, port or free_port(), sandbox, options)
    try:
        yield server
    finally:
        server.stop()


class Receiver:
    """A local HTTP endpoint that counts effects by Idempotency-Key, like an idempotent vendor."""

    def __init__(self) -> None:
        self.deliveries: Counter[str] = Counter()
        self.bodies: list[Any] = []
        self.lock = threading.Lock()
        self.app = FastAPI()

        @self.app.post("/effect")
        async def effect(request: Request) -> dict[str, Any]:
            key = request.headers.get("idempotency-key", "")
            body = await request.json()
            with self.lock:
                self.deliveries[key] += 1
                self.bodies.append(body)
                first = self.deliveries[key] == 1
            return {"key": key, "applied": first}

    @property
    def effects(self) -> set[str]:
        with self.lock:
            return set(self.deliveries)

    @contextmanager
    def serve(self) -> Iterator[str]:
        with serve_app(self.app) as base:
            yield base
