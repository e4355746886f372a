"""With SQLite on more than one CPU, ``serve`` advances runs in child processes: they start with
the first run, end with the server (even a killed one), are replaced when they die, share the
runs without running one twice, and only one server's children advance a database's runs at a
time."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import httpx
import pytest

from latchflow.backends import choose
from latchflow.backends.embedded.run_processes import RunProcess
from latchflow.engine import Engine
from latchflow.storage.database import Settings

from .processes import Server, cli, running_server, wait_for, write_flow

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="the run process needs 2 CPUs"),
]

FLOW = {
    "id": "echo",
    "name": "Echo",
    "version": 1,
    "trigger": {"type": "webhook"},
    "steps": [
        {"id": "set", "action": "core.set", "input": {"values": {"n": "{{ trigger.body.n }}"}}}
    ],
}


def run_processes(pid: int) -> list[int]:
    """The run processes among a process's children."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    found = []
    for child in children:
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:  # it just exited
            continue
        if b"latchflow.process" in command:
            found.append(int(child))
    return found


def gone(pid: int) -> bool:
    """True once the process has exited (a zombie nobody reaped counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def trigger_url(server: Server, key: str) -> str:
    response = httpx.get(
        f"{server.base}/api/flows/echo", headers={"authorization": f"Bearer {key}"}
    )
    return str(response.json()["trigger_url"])


def run_to_the_end(url: str, n: int) -> None:
    response = httpx.post(f"{url}?wait=20", json={"n": n}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "succeeded"
    assert response.json()["output"] == {"n": n}


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, str]:
    data = tmp_path / "data"
    key = cli("apikey", "create", data_dir=data)
    return data, write_flow(tmp_path / "flows", FLOW), key


def test_the_run_process_starts_with_the_first_run_and_ends_with_a_killed_server(
    setup: tuple[Path, Path, str],
) -> None:
    data, flows, key = setup
    with running_server(data, flows) as server:
        assert run_processes(server.process.pid) == []  # nothing to run yet
        run_to_the_end(trigger_url(server, key), 1)
        children = run_processes(server.process.pid)
        default = choose.run_processes(Settings.from_environment(data), None)
        assert len(children) == default == 2  # one per CPU on this machine, at most 2
        server.kill()
        wait_for(
            lambda: all(gone(child) for child in children),
            20,
            "the run processes to end after their server was killed",
        )


def test_a_run_process_that_dies_is_replaced(setup: tuple[Path, Path, str]) -> None:
    data, flows, key = setup
    with running_server(data, flows) as server:
        url = trigger_url(server, key)
        run_to_the_end(url, 1)
        children = run_processes(server.process.pid)
        os.kill(children[0], signal.SIGKILL)
        wait_for(
            lambda: len(set(run_processes(server.process.pid)) - {children[0]}) == len(children),
            20,
            "a new run process",
        )
        run_to_the_end(url, 2)
    assert "exited with code -9; starting another" in server.log.read_text()


def test_run_processes_share_the_runs_and_run_each_step_once(
    setup: tuple[Path, Path, str],
) -> None:
    data, flows, key = setup
    with running_server(data, flows, options=["--run-processes", "2"]) as server:
        url = trigger_url(server, key)
        with httpx.Client(timeout=10) as client:
            runs = [client.post(url, json={"n": n}).json()["run_id"] for n in range(60)]
            headers = {"authorization": f"Bearer {key}"}

            def finished() -> bool:
                listing = client.get(f"{server.base}/api/runs?limit=100", headers=headers)
                return all(r["status"] == "succeeded" for r in listing.json())

            wait_for(finished, 30, "every run to succeed")
            for run_id in runs:
                detail = client.get(f"{server.base}/api/runs/{run_id}", headers=headers).json()
                assert [s["attempts"] for s in detail["steps"]] == [1]


def test_two_servers_on_one_database_advance_runs_in_one_process_at_a_time(
    setup: tuple[Path, Path, str],
) -> None:
    data, flows, key = setup
    with running_server(data, flows) as first, running_server(data) as second:
        run_to_the_end(trigger_url(first, key), 1)
        # the second server's run process waits; the first one's runs what the second accepts
        run_to_the_end(trigger_url(second, key), 2)
        wait_for(
            lambda: "waiting for the other process advancing runs" in second.log.read_text(),
            10,
            "the second run process to wait for the first",
        )
        first.stop()
        run_to_the_end(trigger_url(second, key), 3)


def test_no_run_process_runs_in_the_server_process(setup: tuple[Path, Path, str]) -> None:
    data, flows, key = setup
    with running_server(data, flows, options=["--no-run-process"]) as server:
        run_to_the_end(trigger_url(server, key), 1)
        assert run_processes(server.process.pid) == []


async def test_drain_waits_for_the_child_to_finish_what_is_due(tmp_path: Path) -> None:
    engine = Engine(Settings.from_environment(tmp_path))
    engine.install_flow(FLOW)
    dispatcher = RunProcess(engine.store, engine.clock, workers=2)
    await dispatcher.start()
    try:
        runs = [engine.start("echo", {"body": {"n": n}}).run_id for n in range(5)]
        await asyncio.wait_for(dispatcher.drain(), 30)
        assert [getattr(engine.run(r), "status", None) for r in runs] == ["succeeded"] * 5
    finally:
        await dispatcher.stop()
        await engine.close()
