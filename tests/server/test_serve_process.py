"""``latchflow serve`` as a real process: trigger URL to finished run, and kill -9 mid-flight."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from .processes import Receiver, cli, running_server, wait_for, write_flow

pytestmark = pytest.mark.slow


def test_trigger_url_to_succeeded_run(tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = cli("apikey", "create", "--name", "e2e", data_dir=data)
    flows = write_flow(
        tmp_path / "flows",
        {
            "id": "greet",
            "name": "Greet",
            "version": 1,
            "trigger": {"type": "webhook"},
            "steps": [
                {
                    "id": "hello",
                    "action": "core.set",
                    "input": {"values": {"greeting": "{{ format('hi {name}', trigger.body) }}"}},
                }
            ],
        },
    )
    with (
        running_server(data, flows) as server,
        httpx.Client(base_url=server.base, headers={"authorization": f"Bearer {key}"}) as api,
    ):
        assert httpx.get(f"{server.base}/api/flows").status_code == 401
        (flow,) = api.get("/api/flows").json()
        response = httpx.post(flow["trigger_url"], json={"name": "Ada"})
        assert response.status_code == 202
        run_id = response.json()["run_id"]
        # committed before the 202: the run exists the moment the answer arrives
        first_look = api.get(f"/api/runs/{run_id}")
        assert first_look.status_code == 200
        assert first_look.json()["status"] in ("queued", "running", "succeeded")
        detail = wait_for(
            lambda: (d := api.get(f"/api/runs/{run_id}").json())["status"] == "succeeded" and d,
            20,
            "the run to succeed",
        )
        assert detail["output"] == {"greeting": "hi Ada"}
        assert detail["steps"][0]["status"] == "succeeded"


def test_kill_9_with_200_runs_in_flight_then_all_succeed_once(tmp_path: Path) -> None:
    receiver = Receiver()
    data = tmp_path / "data"
    key = cli("apikey", "create", data_dir=data)
    with receiver.serve() as receiver_base:
        effect = {"url": f"{receiver_base}/effect", "json": {"run": "{{ run.id }}"}}
        flows = write_flow(
            tmp_path / "flows",
            {
                "id": "durable",
                "name": "Durable",
                "version": 1,
                "trigger": {"type": "webhook"},
                "steps": [
                    {"id": "before", "action": "http.request", "input": effect},
                    {"id": "wait", "action": "core.delay", "input": {"seconds": 2}},
                    {"id": "after", "action": "http.request", "input": effect},
                ],
            },
        )
        with running_server(data, flows, workers=8) as first:
            with httpx.Client(
                base_url=first.base, headers={"authorization": f"Bearer {key}"}
            ) as api:
                url = api.get("/api/flows").json()[0]["trigger_url"]
            run_ids = []
            with httpx.Client(timeout=10) as poster:
                for n in range(200):
                    response = poster.post(url, json={"n": n})
                    assert response.status_code == 202
                    run_ids.append(response.json()["run_id"])
            wait_for(lambda: len(receiver.effects) >= 100, 30, "some effects before the kill")
            first.kill()
        before_kill = len(receiver.effects)
        assert before_kill < 400, "every run finished before the kill; nothing was in flight"
        with (
            running_server(data, workers=8) as second,
            httpx.Client(base_url=second.base, headers={"authorization": f"Bearer {key}"}) as api,
        ):
            wait_for(
                lambda: (
                    len(api.get("/api/runs", params={"status": "succeeded", "limit": 1000}).json())
                    == 200
                ),
                60,
                "all 200 runs to succeed after the restart",
            )
            failed = api.get("/api/runs", params={"status": "failed"}).json()
            assert failed == []
    expected = {f"{run_id}:{step}" for run_id in run_ids for step in ("before", "after")}
    assert receiver.effects == expected  # every step's effect happened, exactly once per key
    repeats = sum(count - 1 for count in receiver.deliveries.values())
    # only a step in flight at the kill may be delivered again (same key; the receiver ignores it)
    assert repeats <= 8
