"""Runs one flow run to completion in its own process, so a test can kill it mid-flight.

Usage: python crash_runner.py DATA_DIR start FLOW.json  (prints the run id, then runs it)
       python crash_runner.py DATA_DIR resume RUN_ID
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path

from latchflow.engine import Engine
from latchflow.plugin.host import load_registry
from latchflow.storage.database import Settings


def _acme() -> object:
    spec = importlib.util.spec_from_file_location(
        "acme_support", Path(__file__).with_name("support.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.AcmePlugin()


async def main(data_dir: str, command: str, argument: str) -> None:
    engine = Engine(Settings.from_environment(data_dir), registry=load_registry(extra=[_acme()]))
    if command == "start":
        record = engine.install_flow(json.loads(Path(argument).read_text()))
        run_id = engine.start(record.id, {}).run_id
        print(run_id, flush=True)
    else:
        engine.executor.release(argument)  # the killed process's claim (single node: it is dead)
        run_id = argument
    run = await engine.run_until_done(run_id)
    print(run.status, flush=True)
    await engine.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
