"""A run killed mid-flight resumes at its first unfinished step and repeats no finished one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from .support import EFFECTS_ENV, HANG_ENV, flow

RUNNER = Path(__file__).with_name("crash_runner.py")


def test_killed_after_step_2_resumes_with_steps_3_and_4_only(tmp_path: Path) -> None:
    effects = tmp_path / "effects.jsonl"
    document = flow(
        [{"id": f"s{i}", "action": "acme.record", "input": {"name": f"s{i}"}} for i in range(1, 5)]
    )
    (tmp_path / "flow.json").write_text(json.dumps(document))
    env = {**os.environ, "LATCHFLOW_LOAD_PLUGINS": "", EFFECTS_ENV: str(effects)}
    first = subprocess.Popen(
        [sys.executable, str(RUNNER), str(tmp_path / "data"), "start", str(tmp_path / "flow.json")],
        env={**env, HANG_ENV: "s3"},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert first.stdout is not None
    run_id = first.stdout.readline().strip()
    deadline = time.monotonic() + 60
    while not Path(f"{effects}.hanging").exists():
        assert time.monotonic() < deadline and first.poll() is None, "step 3 never started"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    first.stdout.close()
    assert [json.loads(line)["name"] for line in effects.read_text().splitlines()] == ["s1", "s2"]

    second = subprocess.run(
        [sys.executable, str(RUNNER), str(tmp_path / "data"), "resume", run_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.stdout.strip() == "succeeded", second.stderr
    calls = [json.loads(line) for line in effects.read_text().splitlines()]
    assert Counter(c["name"] for c in calls) == {"s1": 1, "s2": 1, "s3": 1, "s4": 1}
    assert {c["key"] for c in calls} == {f"{run_id}:s{i}" for i in range(1, 5)}
