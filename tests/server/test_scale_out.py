"""Scale-out: several ``latchflow serve`` processes on one PostgreSQL database.

Each test makes its own database and starts real server processes on loopback ports; a local
receiver counts every step's effect by its idempotency key.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import Request
from sqlalchemy import create_engine, text
from sqlmodel import select

from latchflow.backends.postgres.dispatcher import ProcrastinateDispatcher
from latchflow.engine import Engine
from latchflow.plugin.clock import FakeClock
from latchflow.storage.database import Settings
from latchflow.storage.models import EventRecord, RunRecord
from latchflow.testing import free_port, load_registry

from . import fakeplugin
from .processes import Receiver, Server, cli, wait_for, write_flow

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

RECOVERY_BOUND = 40.0
"""Seconds within which a surviving node finishes a killed node's runs: the killed node's
heartbeat must age STALLED_SECONDS (10), the stalled-job check runs every 2 s, then the work."""


class Cluster:
    """Nodes sharing one database (LATCHFLOW_DATABASE_URL), one secret key and one API key."""

    def __init__(
        self, tmp_path: Path, database_url: str, flows: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.tmp_path = tmp_path
        self.database_url = database_url
        self.flows = flows
        monkeypatch.setenv("LATCHFLOW_DATABASE_URL", database_url)  # the processes inherit it
        monkeypatch.setenv("LATCHFLOW_SECRET_KEY", Fernet.generate_key().decode())
        self.key = cli("apikey", "create", data_dir=tmp_path / "cli")

    @contextmanager
    def nodes(self, count: int, workers: int = 16) -> Iterator[list[Server]]:
        """Start ``count`` nodes side by side (each waits for its /healthz); stop them after."""

        def start(n: int) -> Server:
            return Server(self.tmp_path / f"node{n}", self.flows, workers, free_port())

        with ThreadPoolExecutor(count) as pool:
            started = [pool.submit(start, n) for n in range(count)]
            try:
                servers = [future.result() for future in started]
                yield servers
            finally:
                stops = [pool.submit(f.result().stop) for f in started if not f.exception()]
                for stop in stops:
                    stop.result()

    def api(self, server: Server) -> httpx.Client:
        return httpx.Client(
            base_url=server.base, headers={"authorization": f"Bearer {self.key}"}, timeout=10
        )

    def query(self, sql: str) -> list[Any]:
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                return list(connection.execute(text(sql)))
        finally:
            engine.dispose()


def effect(base: str, path: str = "/effect") -> dict[str, Any]:
    return {"url": f"{base}{path}", "json": {"run": "{{ run.id }}"}, "timeout": 30}


def calls_flow(
    tmp_path: Path, flow_id: str, trigger: dict[str, Any], **calls: dict[str, Any]
) -> Path:
    """A flows directory with one flow whose steps are ``http.request`` calls, in order."""
    steps = [{"id": k, "action": "http.request", "input": v} for k, v in calls.items()]
    document = {"id": flow_id, "name": flow_id, "version": 1, "trigger": trigger, "steps": steps}
    return write_flow(tmp_path / "flows", document)


def succeeded(api: httpx.Client, flow_id: str) -> int:
    params: dict[str, str | int] = {"status": "succeeded", "flow_id": flow_id, "limit": 1000}
    return len(api.get("/api/runs", params=params).json())


async def post_alternately(urls: list[str], count: int, parallel: int = 16) -> list[str]:
    """POST ``count`` webhooks, the n-th to ``urls[n % len(urls)]``; the run ids, in order."""
    limit = asyncio.Semaphore(parallel)
    async with httpx.AsyncClient(timeout=30) as client:

        async def post(n: int) -> str:
            async with limit:
                response = await client.post(urls[n % len(urls)], json={"n": n})
            assert response.status_code == 202, response.text
            run_id: str = response.json()["run_id"]
            return run_id

        return list(await asyncio.gather(*(post(n) for n in range(count))))


def trigger_urls(cluster: Cluster, nodes: list[Server], flow_id: str) -> list[str]:
    urls = []
    for node in nodes:
        with cluster.api(node) as api:
            url = api.get(f"/api/flows/{flow_id}").json()["trigger_url"]
        urls.append(url.replace(url.split("/hooks/")[0], node.base))
    return urls


def test_two_nodes_run_1000_webhooks_each_effect_once(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = Receiver()
    with receiver.serve() as base:
        flows = calls_flow(tmp_path, "hooked", {"type": "webhook"}, call=effect(base))
        cluster = Cluster(tmp_path, pg_url, flows, monkeypatch)
        with cluster.nodes(2) as nodes, cluster.api(nodes[0]) as api:
            shown = api.get("/api/nodes").json()
            assert len(shown) == 2 and all(n["alive"] for n in shown)
            assert {n["backend"] for n in shown} == {"procrastinate"}
            run_ids = asyncio.run(post_alternately(trigger_urls(cluster, nodes, "hooked"), 1000))
            wait_for(lambda: succeeded(api, "hooked") == 1000, 90, "1000 runs to succeed")
    assert len(set(run_ids)) == 1000
    assert receiver.effects == {f"{run_id}:call" for run_id in run_ids}
    assert set(receiver.deliveries.values()) == {1}  # no node died: not even a repeat


def test_two_nodes_fire_a_per_second_schedule_once_per_tick(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real nodes' periodic tick: every fire once, no tick missed (the injected-clock test
    below covers thirty ticks with both nodes ticking at the same moment)."""
    receiver = Receiver()
    with receiver.serve() as base:
        flows = calls_flow(
            tmp_path,
            "tick",
            {"type": "schedule", "input": {"interval_seconds": 1}},
            call=effect(base),
        )
        cluster = Cluster(tmp_path, pg_url, flows, monkeypatch)
        with cluster.nodes(2):
            wait_for(lambda: len(accepted_ticks(cluster)) >= 4, 30, "four fires")
        # the runs of the last ticks may still be queued when the nodes stop: count the fires
        ticks = accepted_ticks(cluster)
        (runs,) = cluster.query("SELECT count(*) FROM runs WHERE flow_id = 'tick'")
    gaps = {(later - earlier).total_seconds() for earlier, later in itertools.pairwise(ticks)}
    assert gaps == {1.0}, f"ticks missing or doubled: gaps {sorted(gaps)}"
    assert runs == (len(ticks),)  # one run per tick (a repeated fire is recorded, never run)
    assert len(receiver.effects) >= len(ticks) - 2
    assert set(receiver.deliveries.values()) == {1}


def accepted_ticks(cluster: Cluster) -> list[datetime]:
    rows = cluster.query("SELECT data FROM events WHERE flow_id = 'tick' AND status = 'accepted'")
    return sorted(datetime.fromisoformat(row[0]["scheduled_for"]) for row in rows)


def test_two_nodes_ticking_at_the_same_moment_fire_each_tick_once(
    tmp_path: Path, pg_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LATCHFLOW_SECRET_KEY", Fernet.generate_key().decode())
    nodes = [
        Engine(
            Settings.from_environment(tmp_path / f"node{n}", pg_url),
            registry=load_registry(extra=[fakeplugin]),
            clock=clock,
        )
        for n in range(2)
    ]
    schedule = {"type": "schedule", "input": {"interval_seconds": 1}}
    steps = [{"id": "c", "action": "test.count"}]
    nodes[0].install_flow(
        {"id": "tick", "name": "tick", "version": 1, "trigger": schedule, "steps": steps}
    )
    dispatchers = [
        ProcrastinateDispatcher(node.executor, name=f"node{n}") for n, node in enumerate(nodes)
    ]
    try:
        together = threading.Barrier(2)  # both nodes tick at the same moment

        def tick(dispatcher: ProcrastinateDispatcher) -> None:
            together.wait()
            asyncio.run(dispatcher.cron_tick(0))

        with ThreadPoolExecutor(2) as pool:
            for _ in range(31):
                list(pool.map(tick, dispatchers))
                clock.advance(1)
        with nodes[0].store.session() as session:
            events = session.exec(select(EventRecord).where(EventRecord.flow_id == "tick")).all()
            runs = session.exec(select(RunRecord).where(RunRecord.flow_id == "tick")).all()
    finally:
        for node in nodes:
            node.store.engine.dispose()
    accepted = [e for e in events if e.status == "accepted"]  # the others: recorded duplicates
    ticks = sorted(datetime.fromisoformat(e.data["scheduled_for"]) for e in accepted)
    assert len(ticks) == 30  # the first tick started the schedule's cursor
    gaps = {(later - earlier).total_seconds() for earlier, later in itertools.pairwise(ticks)}
    assert gaps == {1.0}, f"ticks missing or doubled: gaps {sorted(gaps)}"
    assert len(runs) == len(ticks)


@pytest.fixture
def slow_receiver() -> Receiver:
    receiver = Receiver()

    @receiver.app.post("/slow")
    async def slow(request: Request) -> dict[str, Any]:
        key = request.headers.get("idempotency-key", "")
        with receiver.lock:
            receiver.deliveries[key] += 1
        await asyncio.sleep(1.0)
        return {"key": key}

    return receiver


def test_kill_9_one_node_the_other_finishes_its_runs(
    tmp_path: Path, pg_url: str, slow_receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = slow_receiver
    RUNS = 60
    with receiver.serve() as base:
        flows = calls_flow(
            tmp_path,
            "slow",
            {"type": "webhook"},
            before=effect(base),
            slow=effect(base, "/slow"),
            after=effect(base),
        )
        cluster = Cluster(tmp_path, pg_url, flows, monkeypatch)
        with cluster.nodes(2, workers=8) as (victim, survivor), cluster.api(survivor) as api:
            run_ids = asyncio.run(
                post_alternately(trigger_urls(cluster, [victim, survivor], "slow"), RUNS)
            )
            wait_for(lambda: len(receiver.effects) >= RUNS, 30, "some effects before the kill")
            victim.kill()
            killed_at = time.monotonic()
            finished = {  # checkpoints committed before the kill: these steps must not run again
                f"{run_id}:{step_id}"
                for run_id, step_id in cluster.query(
                    "SELECT run_id, step_id FROM steps WHERE status = 'succeeded'"
                )
            }
            assert succeeded(api, "slow") < RUNS, "every run finished before the kill"
            try:
                wait_for(lambda: succeeded(api, "slow") == RUNS, RECOVERY_BOUND, "the survivor")
            except AssertionError as exc:  # say where the runs and their jobs are
                runs = cluster.query("SELECT status, step_index, count(*) FROM runs GROUP BY 1, 2")
                jobs = cluster.query(
                    "SELECT task_name, status, count(*) FROM procrastinate_jobs GROUP BY 1, 2"
                )
                workers = cluster.query("SELECT id, last_heartbeat FROM procrastinate_workers")
                raise AssertionError(
                    f"{exc}: runs {runs}, jobs {jobs}, workers {workers}"
                ) from None
            recovered_in = time.monotonic() - killed_at
            assert api.get("/api/runs", params={"status": "failed"}).json() == []
            nodes = wait_for(
                lambda: [n for n in api.get("/api/nodes").json() if not n["alive"]], 20, "death"
            )
            assert [n["id"] for n in nodes] != []
    expected = {f"{r}:{s}" for r in run_ids for s in ("before", "slow", "after")}
    assert receiver.effects == expected
    assert all(receiver.deliveries[key] == 1 for key in finished)
    repeated = [key for key, count in receiver.deliveries.items() if count > 1]
    assert len(repeated) <= 8, repeated  # at most the victim's in-flight steps, same key
    print(f"recovered {len(run_ids)} runs {recovered_in:.1f} s after kill -9")
