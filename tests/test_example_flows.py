"""The example flows in flows/ validate against the installed plugins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

FLOWS = sorted(str(p) for p in (Path(__file__).parent.parent / "flows").glob("*.json"))


def test_latchflow_validate_flows_exits_0() -> None:
    env = {k: v for k, v in os.environ.items() if k != "LATCHFLOW_LOAD_PLUGINS"}
    result = subprocess.run(
        [sys.executable, "-m", "latchflow.cli", "validate", *FLOWS],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert len(FLOWS) >= 3
    assert result.returncode == 0, result.stderr
