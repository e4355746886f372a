"""Idle cost: CPU and memory of ``latchflow serve`` with 10,000 enabled schedules, none due.

The flows are daily cron schedules at a time of day 12 hours away, so none fires during the
measurement. They are installed straight through the store in one transaction (one flow is
validated, then 10,000 copies with their own ids are saved; 10,000 API calls would measure the
API instead). After start-up and ``--settle`` seconds, CPU time and RSS are sampled from /proc
every second for ``--duration`` seconds. Prints one line: CPU % of one core, RSS (max), the
start-up time.

    .venv/bin/python bench/idle.py [--flows 10000] [--duration 60] [--settle 5]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import BASE_ENV, process_sample, start_server

from latchflow.flows.document import validate_flow
from latchflow.plugin.host import load_registry
from latchflow.storage.database import Settings
from latchflow.storage.models import FlowRecord, FlowVersion
from latchflow.storage.runqueue import RunsTable
from latchflow.storage.store import Store


def schedule_flow(flow_id: str, cron: str) -> dict[str, object]:
    return {
        "id": flow_id,
        "name": f"nightly {flow_id}",
        "version": 1,
        "trigger": {"type": "schedule", "input": {"cron": cron, "timezone": "UTC"}},
        "steps": [{"id": "mark", "action": "core.set", "input": {"values": {"ok": True}}}],
    }


def install_schedules(data_dir: Path, count: int) -> str:
    """Save ``count`` schedule flows in one transaction; returns the cron used."""
    os.environ.update(BASE_ENV)
    later = datetime.now(UTC) + timedelta(hours=12)
    cron = f"{later.minute} {later.hour} * * *"
    flow = validate_flow(schedule_flow("idle-00000", cron), load_registry())
    store = Store(Settings(data_dir, f"sqlite:///{data_dir / 'latchflow.db'}"), RunsTable())
    with store.session() as session:
        for n in range(count):
            flow_id = f"idle-{n:05d}"
            document = {**flow.document, "id": flow_id, "name": f"nightly {flow_id}"}
            session.add(
                FlowRecord(
                    id=flow_id,
                    version=1,
                    name=document["name"],
                    trigger_type="schedule",
                    hook_token=secrets.token_urlsafe(24),
                )
            )
            session.add(FlowVersion(flow_id=flow_id, version=1, document=document))
        session.commit()
    store.engine.dispose()
    return cron


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flows", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds measured")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after start-up")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="latchflow-bench-idle-"))
    try:
        cron = install_schedules(data_dir, args.flows)
        started = time.monotonic()
        node = start_server(data_dir=data_dir, startup_seconds=600)
        startup = time.monotonic() - started
        try:
            time.sleep(args.settle)
            cpu_start, rss = process_sample(node.pid)
            clock_start = time.monotonic()
            peak = rss
            while time.monotonic() - clock_start < args.duration:
                time.sleep(1.0)
                _, rss = process_sample(node.pid)
                peak = max(peak, rss)
            cpu_end, rss = process_sample(node.pid)
            elapsed = time.monotonic() - clock_start
        finally:
            node.stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    cpu = 100 * (cpu_end - cpu_start) / elapsed
    print(
        f"idle [{args.flows:,} schedules '{cron}', {elapsed:.0f} s]: CPU {cpu:.1f}% of one core,"
        f" RSS {peak / 2**20:.0f} MB max ({rss / 2**20:.0f} MB at the end),"
        f" start-up {startup:.1f} s"
    )


if __name__ == "__main__":
    main()
