"""Side by side: latchflow's trigger URL against Node-RED's http-in, same load, same machine.

Node-RED (``npm install -g node-red``) gets a flow http-in → function → http response (202),
nothing stored; latchflow gets its ingest flow (every 202 committed). n8n is not driven: its
webhook workflows need an owner account and activation through its UI or REST API; the issue's
reference figures for it (webhook → Set, SQLite) are printed for comparison instead. A tool
that is not installed is skipped with a message saying so.

    .venv/bin/python bench/compare.py [--duration 10] [--concurrency 1,16,64]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness import free_port, running_server, wait_until_up, webhook_flow
from loadgen import run_load

NODE_RED_FLOW = [
    {"id": "tab", "type": "tab", "label": "bench"},
    {
        "id": "in",
        "type": "http in",
        "z": "tab",
        "url": "/hook",
        "method": "post",
        "wires": [["fn"]],
    },
    {
        "id": "fn",
        "type": "function",
        "z": "tab",
        "func": "msg.payload = {accepted: true, n: msg.payload.n};\nmsg.statusCode = 202;\nreturn msg;",
        "outputs": 1,
        "wires": [["out"]],
    },
    {"id": "out", "type": "http response", "z": "tab", "statusCode": "202", "wires": []},
]
N8N_REFERENCE = "n8n 2.8.4 (issue's reference, webhook → Set, SQLite): ~50 req/s at c=1/16/64"


def measure(url: str, levels: list[int], duration: float) -> str:
    body = json.dumps({"booking": {"id": "b-1"}, "n": 1}).encode()
    run_load(url, body, concurrency=4, duration=1.0)
    parts = []
    for level in levels:
        result = run_load(url, body, concurrency=level, duration=duration)
        parts.append(f"c={level} {result.rate:,.0f}/s p99 {result.p99_ms:.0f} ms")
    return ", ".join(parts)


def node_red(levels: list[int], duration: float) -> str:
    binary = shutil.which("node-red")
    if binary is None:
        return "Node-RED: skipped (not installed; `npm install -g node-red` to include it)"
    user_dir = Path(tempfile.mkdtemp(prefix="bench-node-red-"))
    (user_dir / "flows.json").write_text(json.dumps(NODE_RED_FLOW))
    port = free_port()
    log = user_dir / "node-red.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "--userDir", str(user_dir), "--port", str(port), "flows.json"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/", process, log, 60)
        return f"Node-RED (nothing stored): {measure(f'http://127.0.0.1:{port}/hook', levels, duration)}"
    finally:
        process.terminate()
        process.wait(timeout=20)
        shutil.rmtree(user_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", default="1,16,64")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    lines = [node_red(levels, args.duration)]
    with running_server(flows=[webhook_flow("ingest")]) as node:
        figures = measure(node.hook_url("ingest"), levels, args.duration)
        lines.append(f"latchflow (every 202 committed): {figures}")
    n8n = "n8n: not driven (see this script's docstring); " + N8N_REFERENCE
    if shutil.which("n8n") is None:
        n8n = "n8n: skipped (not installed); " + N8N_REFERENCE
    print(" | ".join([*lines, n8n]))


if __name__ == "__main__":
    main()
