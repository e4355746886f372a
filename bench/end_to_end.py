"""End to end: webhook → 3-step flow with a signed KEYVOX call over real HTTP → succeeded.

The KEYVOX simulator runs as its own uvicorn process; the flow's connection points at it and
every call is HMAC-signed by the plugin and verified by the simulator. Load is offered for
``--duration`` seconds, then the benchmark waits until every accepted run has finished and
reads the runs from the database. Prints one line: runs succeeded per second (from the first
accept to the last success) and accept→succeeded latency p50/p99.

    .venv/bin/python bench/end_to_end.py [--duration 10] [--concurrency 16] [--workers 64]
        [--no-run-process] [--serve-option=--run-processes=1]
"""

from __future__ import annotations

import argparse
import json
import time

import httpx
from harness import (
    add_server_arguments,
    percentile,
    running_server,
    serve_options,
    start_asgi,
    webhook_flow,
)
from loadgen import run_load
from sqlmodel import col, func, select

from latchflow.storage.database import make_engine
from latchflow.storage.models import RunRecord
from latchflow_keyvox import assumptions

SIMULATOR = "latchflow_keyvox.simulator:create_app"
CONNECTION = "bench-keyvox"


def flow(lock_id: str) -> dict[str, object]:
    return webhook_flow(
        "e2e",
        [
            {
                "id": "booking",
                "action": "core.set",
                "input": {"values": {"guest": "{{ trigger.body.guest }}", "lock": lock_id}},
            },
            {
                "id": "lock",
                "action": "keyvox.get_lock_status",
                "connection": CONNECTION,
                "input": {"lockId": "{{ steps.booking.lock }}"},
            },
            {
                "id": "report",
                "action": "core.set",
                "input": {
                    "values": {
                        "guest": "{{ steps.booking.guest }}",
                        "locked": "{{ steps.lock.status == '1' }}",
                    }
                },
            },
        ],
    )


def keyvox_connection(simulator_base: str) -> list[str]:
    """The ``latchflow`` command that adds the benchmarks' connection to a KEYVOX simulator."""
    add = ["connections", "add", CONNECTION, "--vendor", "keyvox"]
    add += ["--set", f"apiKey={assumptions.SIM_DEMO_API_KEY}"]
    add += ["--set", f"apiSecret={assumptions.SIM_DEMO_API_SECRET}"]
    return [*add, "--set", f"baseUrl={simulator_base}{assumptions.SIM_PREFIXES[1]}"]


def wait_for_runs(database_url: str, timeout: float) -> list[RunRecord]:
    engine = make_engine(database_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as connection:
                active = connection.execute(
                    select(func.count())
                    .select_from(RunRecord)
                    .where(col(RunRecord.status).in_(["queued", "running", "waiting"]))
                ).scalar_one()
            if not active or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        with engine.connect() as connection:
            rows = connection.execute(
                select(RunRecord.status, RunRecord.created_at, RunRecord.finished_at)
            ).all()
        return [RunRecord(status=s, created_at=c, finished_at=f) for s, c, f in rows]
    finally:
        engine.dispose()


def split_at_last_accept(runs: list[RunRecord], done: list[RunRecord]) -> tuple[float, float]:
    """Runs succeeded per second while webhooks were still being accepted, and after."""
    if not done:
        return 0.0, 0.0
    first = min(r.created_at for r in runs)
    last = max(r.created_at for r in runs)
    end = max(r.finished_at for r in done)  # type: ignore[type-var]
    during = sum(r.finished_at <= last for r in done)  # type: ignore[operator]
    accepting, draining = (last - first).total_seconds(), (end - last).total_seconds()
    return (
        during / accepting if accepting > 0 else 0.0,
        (len(done) - during) / draining if draining > 0 else 0.0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of offered load")
    parser.add_argument("--concurrency", type=int, default=16, help="webhook connections")
    parser.add_argument("--workers", type=int, default=64, help="latchflow serve --workers")
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    parser.add_argument("--tool", default="auto", choices=["auto", "wrk", "python"])
    add_server_arguments(parser)
    args = parser.parse_args()
    simulator = start_asgi(SIMULATOR)
    try:
        lock_id = httpx.get(f"{simulator.base}/_sim/state").json()["units"][0]["lockIds"]
        add = keyvox_connection(simulator.base)
        with running_server(
            args.database_url,
            flows=[flow(lock_id)],
            workers=args.workers,
            before_start=[add],
            serve_options=serve_options(args),
        ) as node:
            url = node.hook_url("e2e")
            body = json.dumps({"guest": "Ada Lovelace"}).encode()
            load = run_load(
                url, body, concurrency=args.concurrency, duration=args.duration, tool=args.tool
            )
            runs = wait_for_runs(node.database_url, args.drain_timeout)
    finally:
        simulator.stop()
    done = [r for r in runs if r.status == "succeeded" and r.finished_at is not None]
    unfinished = sum(r.status in ("queued", "running", "waiting") for r in runs)
    failed = len(runs) - len(done) - unfinished
    latencies = [(r.finished_at - r.created_at).total_seconds() * 1000 for r in done]  # type: ignore[operator]
    span = (
        (max(r.finished_at for r in done) - min(r.created_at for r in done)).total_seconds()  # type: ignore[type-var]
        if done
        else 0.0
    )
    rate = len(done) / span if span else 0.0
    during, after = split_at_last_accept(runs, done)
    print(
        f"end_to_end [{load.tool}, c={args.concurrency}, workers={args.workers},"
        f" {args.duration:g} s]: {load.rate:,.0f} 202/s accepted,"
        f" {rate:,.0f} runs succeeded/s ({during:,.0f}/s while accepting, {after:,.0f}/s after;"
        f" {len(done)} runs; {failed} failed, {unfinished}"
        f" unfinished after the {args.drain_timeout:g} s drain),"
        f" accept→succeeded p50 {percentile(latencies, 0.5):.0f} ms"
        f" p99 {percentile(latencies, 0.99):.0f} ms"
    )


if __name__ == "__main__":
    main()
