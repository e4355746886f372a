"""Scale-out ingest: webhooks accepted per second by 1, 2 and 3 nodes on one PostgreSQL database.

Each node count gets a fresh database; each node gets its own load generator (wrk, else the
asyncio client) with ``--concurrency`` connections, all running at once for ``--duration``
seconds; the figure is the sum of their 202s per second. Every 202 means the event, the run and
its procrastinate job were committed; the nodes' workers run the queued runs meanwhile, as in
production. All nodes share this machine's cores with PostgreSQL and the load generators, so on
a small machine this is a scaling check, not a capacity figure.

    .venv/bin/python bench/scale_out.py [--duration 10] [--concurrency 16] [--nodes 1,2,3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
from harness import Node, start_server, webhook_flow
from loadgen import LoadResult, run_load

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextlib.contextmanager
def fresh_database(admin: str) -> Iterator[str]:
    name = f"lf_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    base = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def measure(
    admin: str, count: int, concurrency: int, duration: float, tool: str
) -> tuple[str, str]:
    """Start ``count`` nodes on a fresh database, load them all at once; (figure, load tool)."""
    body = json.dumps({"booking": {"id": "b-1", "guest": "Ada"}, "n": 1}).encode()
    nodes: list[Node] = []
    with fresh_database(admin) as url:
        try:
            for _ in range(count):
                nodes.append(start_server(url, flows=[webhook_flow("ingest")]))
            urls = [node.hook_url("ingest") for node in nodes]
            for hook in urls:  # warm-up
                run_load(hook, body, concurrency=2, duration=1.0, tool=tool)

            def load(hook: str) -> LoadResult:
                return run_load(hook, body, concurrency=concurrency, duration=duration, tool=tool)

            with ThreadPoolExecutor(count) as pool:
                results = list(pool.map(load, urls))
        finally:
            for node in nodes:
                node.stop()
    rate = sum(r.expected / r.seconds for r in results if r.seconds)
    p99 = max(r.p99_ms for r in results)
    problems = sum(r.other + r.errors for r in results)
    noun = "node" if count == 1 else "nodes"
    extra = f", {problems} not 202" if problems else ""
    return f"{count} {noun} {rate:,.0f}/s (p99 {p99:.0f} ms{extra})", results[0].tool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per step")
    parser.add_argument("--concurrency", type=int, default=16, help="connections per node")
    parser.add_argument("--nodes", default="1,2,3", help="comma list of node counts")
    parser.add_argument("--tool", default="auto", choices=["auto", "wrk", "python"])
    parser.add_argument(
        "--postgres", default=ADMIN, help="a database on a server that may CREATE DATABASE"
    )
    args = parser.parse_args()
    measured = [
        measure(args.postgres, int(n), args.concurrency, args.duration, args.tool)
        for n in args.nodes.split(",")
    ]
    print(
        f"scale-out ingest on PostgreSQL [{measured[0][1]}, {args.duration:g} s, {args.concurrency}"
        " connections per node, all on one machine]: " + " | ".join(f for f, _ in measured)
    )


if __name__ == "__main__":
    main()
