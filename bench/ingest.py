"""Durable webhook ingest: POSTs to a trigger URL of a flow with one cheap step.

Every 202 means the event and its run were committed. Prints one line: accepted (202) per
second, p50/p99 latency and the server process's CPU time per request (a figure that other
load on the machine disturbs less) at each concurrency. The queued runs are run at the same
time, as they would be in production (by the run process, or by the server's own workers with
``--no-run-process``).

    .venv/bin/python bench/ingest.py [--duration 10] [--concurrency 1,16,64] [--tool auto|wrk|python]
        [--no-run-process] [--serve-option=--run-processes=1]
"""

from __future__ import annotations

import argparse
import json

from harness import (
    add_server_arguments,
    process_sample,
    running_server,
    serve_options,
    webhook_flow,
)
from loadgen import run_load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per concurrency")
    parser.add_argument("--concurrency", default="1,16,64", help="comma list of connections")
    parser.add_argument("--tool", default="auto", choices=["auto", "wrk", "python"])
    add_server_arguments(parser)
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    body = json.dumps({"booking": {"id": "b-1", "guest": "Ada"}, "n": 1}).encode()
    figures = []
    with running_server(
        args.database_url, flows=[webhook_flow("ingest")], serve_options=serve_options(args)
    ) as node:
        url = node.hook_url("ingest")
        run_load(url, body, concurrency=4, duration=1.0, tool=args.tool)  # warm-up
        for level in levels:
            cpu_before, _ = process_sample(node.pid)
            result = run_load(url, body, concurrency=level, duration=args.duration, tool=args.tool)
            cpu = process_sample(node.pid)[0] - cpu_before
            per_request = 1000 * cpu / result.requests if result.requests else 0.0
            problems = (
                f" ({result.other} not 202, {result.errors} errors)"
                if (result.other or result.errors)
                else ""
            )
            figures.append(
                f"c={level}: {result.rate:,.0f} 202/s p50 {result.p50_ms:.1f} ms"
                f" p99 {result.p99_ms:.1f} ms, server CPU {per_request:.2f} ms/req{problems}"
            )
    print(f"ingest [{result.tool}, {args.duration:g} s each]: " + " | ".join(figures))


if __name__ == "__main__":
    main()
