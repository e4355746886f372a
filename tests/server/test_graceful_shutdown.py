"""SIGTERM while a slow step is in flight: the step finishes, the server exits 0, and after a
restart the run goes on from the next step (the slow effect happened once)."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from latchflow.testing import serve_app

from .processes import cli, running_server, wait_for, write_flow

pytestmark = pytest.mark.slow

SLOW_SECONDS = 1.5


class SlowReceiver:
    """Counts calls by Idempotency-Key; ``/slow`` takes SLOW_SECONDS to answer."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.slow_started = threading.Event()
        self.app = FastAPI()

        @self.app.post("/slow")
        async def slow(request: Request) -> dict[str, Any]:
            self.slow_started.set()
            await asyncio.sleep(SLOW_SECONDS)
            self.calls["slow " + request.headers["idempotency-key"]] += 1
            return {"done": True}

        @self.app.post("/quick")
        async def quick(request: Request) -> dict[str, Any]:
            self.calls["quick " + request.headers["idempotency-key"]] += 1
            return {"done": True}

    @contextmanager
    def serve(self) -> Iterator[str]:
        with serve_app(self.app) as base:
            yield base


def test_sigterm_finishes_the_step_in_flight_then_the_run_resumes_after_restart(
    tmp_path: Path,
) -> None:
    receiver = SlowReceiver()
    data = tmp_path / "data"
    key = cli("apikey", "create", data_dir=data)
    with receiver.serve() as base:
        flows = write_flow(
            tmp_path / "flows",
            {
                "id": "slow",
                "name": "Slow",
                "version": 1,
                "trigger": {"type": "webhook"},
                "steps": [
                    {"id": "slow", "action": "http.request", "input": {"url": f"{base}/slow"}},
                    {"id": "quick", "action": "http.request", "input": {"url": f"{base}/quick"}},
                ],
            },
        )
        with running_server(data, flows, workers=2) as first:
            url = httpx.get(
                f"{first.base}/api/flows/slow", headers={"authorization": f"Bearer {key}"}
            ).json()["trigger_url"]
            run_id = httpx.post(url, json={}).json()["run_id"]
            assert receiver.slow_started.wait(10), "the slow step never started"
            first.process.send_signal(signal.SIGTERM)
            assert first.process.wait(timeout=20) == 0
            log = first.log.read_text()
        assert "finish their current step" in log and "dispatcher stopped" in log, log
        # the slow step finished inside the grace period and was checkpointed; the next step
        # did not start during the shutdown
        assert receiver.calls == Counter({f"slow {run_id}:slow": 1})

        with (
            running_server(data, workers=2) as second,
            httpx.Client(base_url=second.base, headers={"authorization": f"Bearer {key}"}) as api,
        ):
            detail = wait_for(
                lambda: (d := api.get(f"/api/runs/{run_id}").json())["status"] == "succeeded" and d,
                20,
                "the run to succeed after the restart",
            )
    assert [s["attempts"] for s in detail["steps"]] == [1, 1]
    assert receiver.calls == Counter({f"slow {run_id}:slow": 1, f"quick {run_id}:quick": 1})
