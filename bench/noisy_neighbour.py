"""Noisy neighbour: how long an unrelated run takes while other runs render hostile expressions.

An engine in this process (SQLite in a temporary directory, the embedded dispatcher with 16
workers) runs a one-step flow (``core.set`` of two fields) ``--runs`` times alone, then again
while ``--heavy`` runs of a flow whose step renders a worst-case expression (walks of a tree
of 2^20 leaves, under 4,000 characters) are due at the same time. Prints the unrelated run's
accept→succeeded p50 and max in both cases, and how the heavy runs ended.

    .venv/bin/python bench/noisy_neighbour.py [--runs 20] [--heavy 4]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
import time
from pathlib import Path

from harness import percentile

from latchflow.backends.embedded.dispatcher import EmbeddedDispatcher
from latchflow.engine import Engine
from latchflow.storage.database import Settings

TREE = "trigger.x" + " | [@, @]" * 20
HEAVY = TREE + " | [" + ", ".join(f"length(@{'[*]' * 20})" for _ in range(48)) + "]"


def flow(flow_id: str, value: str) -> dict[str, object]:
    return {
        "id": flow_id,
        "name": flow_id,
        "version": 1,
        "trigger": {"type": "manual"},
        "steps": [{"id": "s", "action": "core.set", "input": {"values": {"v": value}}}],
    }


async def light_latency(engine: Engine, dispatcher: EmbeddedDispatcher, heavy: int) -> float:
    """Seconds from accepting a light run to its success, with ``heavy`` heavy runs due too."""
    for n in range(heavy):
        engine.start("heavy", {"x": "x", "n": n})
    started = time.perf_counter()
    run_id = engine.start("light", {"x": "x"}).run_id
    dispatcher.notify()
    while (run := engine.run(run_id)) is None or run.status != "succeeded":  # noqa: ASYNC110 - polls the store
        await asyncio.sleep(0.001)
    return time.perf_counter() - started


async def main(runs: int, heavy: int) -> None:
    os.environ["LATCHFLOW_LOAD_PLUGINS"] = ""
    logging.getLogger("latchflow.run").setLevel(logging.ERROR)  # the heavy runs' failures
    engine = Engine(Settings.from_environment(Path(tempfile.mkdtemp()) / "data"))
    engine.install_flow(flow("light", "{{ trigger.x }}"))
    engine.install_flow(flow("heavy", "{{ " + HEAVY + " }}"))
    dispatcher = EmbeddedDispatcher(engine.executor, engine.clock, workers=16)
    await dispatcher.start()
    try:
        for label, count in (("alone", 0), (f"beside {heavy} heavy runs", heavy)):
            seconds = []
            for _ in range(runs):
                seconds.append(await light_latency(engine, dispatcher, count))
                await dispatcher.drain()
            print(
                f"unrelated run {label}: p50 {percentile(seconds, 0.5) * 1000:.1f} ms,"
                f" max {max(seconds) * 1000:.1f} ms ({runs} runs)"
            )
        failed = [r for r in _heavy_runs(engine) if r.status == "failed"]
        error = failed[0].error if failed else "none failed"
        print(f"heavy runs: {len(failed)} failed; e.g. {error[:160]}")
    finally:
        await dispatcher.stop()
        await engine.close()


def _heavy_runs(engine: Engine) -> list[object]:
    from latchflow.storage.runs import RunFilter

    return list(engine.store.history.runs(RunFilter(flow_id="heavy", limit=10000)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--heavy", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.heavy))
