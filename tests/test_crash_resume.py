"""A run killed mid-flight resumes at its first unfinished step and repeats no finished one; a
step in flight that is not safe to retry leaves the run for a person."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .support import EFFECTS_ENV, HANG_ENV, flow

RUNNER = Path(__file__).with_name("crash_runner.py")


def killed_during(tmp_path: Path, steps: list[dict[str, Any]], hang_at: str) -> str:
    """Start a run of ``steps`` in its own process and kill it while step ``hang_at`` is in its
    action; the run's id. The steps' effects are in ``tmp_path / "effects.jsonl"``."""
    effects = tmp_path / "effects.jsonl"
    (tmp_path / "flow.json").write_text(json.dumps(flow(steps)))
    first = subprocess.Popen(
        [sys.executable, str(RUNNER), str(tmp_path / "data"), "start", str(tmp_path / "flow.json")],
        env={**environment(tmp_path), HANG_ENV: hang_at},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert first.stdout is not None
    run_id = first.stdout.readline().strip()
    deadline = time.monotonic() + 60
    while not Path(f"{effects}.hanging").exists():
        assert time.monotonic() < deadline and first.poll() is None, f"{hang_at} never started"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    first.stdout.close()
    return run_id


def resumed(tmp_path: Path, run_id: str) -> str:
    """Resume the run in a new process; the status it ends in."""
    second = subprocess.run(
        [sys.executable, str(RUNNER), str(tmp_path / "data"), "resume", run_id],
        env=environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 0, second.stderr
    return second.stdout.strip()


def environment(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "LATCHFLOW_LOAD_PLUGINS": "",
        EFFECTS_ENV: str(tmp_path / "effects.jsonl"),
    }


def effects(tmp_path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in (tmp_path / "effects.jsonl").read_text().splitlines()]


def test_killed_after_step_2_resumes_with_steps_3_and_4_only(tmp_path: Path) -> None:
    steps = [
        {"id": f"s{i}", "action": "acme.record", "input": {"name": f"s{i}"}} for i in range(1, 5)
    ]
    run_id = killed_during(tmp_path, steps, "s3")
    assert [e["name"] for e in effects(tmp_path)] == ["s1", "s2"]

    assert resumed(tmp_path, run_id) == "succeeded"
    calls = effects(tmp_path)
    assert Counter(c["name"] for c in calls) == {"s1": 1, "s2": 1, "s3": 1, "s4": 1}
    assert {c["key"] for c in calls} == {f"{run_id}:s{i}" for i in range(1, 5)}


def test_a_step_not_safe_to_retry_that_was_in_flight_leaves_the_run_for_a_person(
    tmp_path: Path,
) -> None:
    steps = [
        {"id": "s1", "action": "acme.record", "input": {"name": "s1"}},
        {"id": "s2", "action": "acme.once", "input": {"name": "s2"}},
        {"id": "s3", "action": "acme.record", "input": {"name": "s3"}},
    ]
    run_id = killed_during(tmp_path, steps, "s2")
    assert resumed(tmp_path, run_id) == "needs_attention"
    assert [e["name"] for e in effects(tmp_path)] == ["s1"]  # neither step 2 again nor step 3
