"""latchflow's processes: how each one starts, and the run process's entry point.

``serve`` and every run process set up logging, an event loop and their heap the same way.
A run process (``python -m latchflow.process``, started by ``backends.embedded.run_processes``)
builds its own engine on the server's database and advances runs until the server goes.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys

from latchflow.backends.base import DEFAULT_WORKERS
from latchflow.backends.embedded.run_processes import run_child, worker_id
from latchflow.engine import Engine
from latchflow.storage.database import Settings

QUIET_LOGGERS = ("apscheduler", "procrastinate", "httpx")
"""Libraries that log every wake-up, job or HTTP request at INFO."""


def configure_logging(process: str = "") -> None:
    """INFO lines on stderr, tagged with ``process`` when it is not the server's."""
    tag = f" [{process}]" if process else ""
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s %(name)s{tag} %(message)s",
        stream=sys.stderr,
    )
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop where it is installed (not on Windows), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def settle_heap() -> None:
    """Collect garbage, then exempt every object alive now (modules, plugins, flows: they live
    as long as the process) from later collections. A full collection of a busy server's heap
    stops the event loop for tens of milliseconds; the frozen part is never scanned again."""
    gc.collect()
    gc.freeze()


async def advance_runs(
    settings: Settings, workers: int, grace_seconds: float, index: int, processes: int
) -> None:
    """Run process ``index`` of ``processes`` on the database of ``settings``."""
    engine = Engine(settings, worker_id=worker_id(index))
    try:
        await run_child(
            engine.executor, workers, grace_seconds, index, processes, started=settle_heap
        )
    finally:
        await engine.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Advance runs for a latchflow server.")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--grace", type=float, default=10.0)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args(argv)
    configure_logging(worker_id(args.index))
    settings = Settings.from_environment(args.data_dir, args.database_url)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(advance_runs(settings, args.workers, args.grace, args.index, args.processes))


if __name__ == "__main__":
    main()
