"""What the ``latchflow`` command's modules share: the database options, output, an engine."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from latchflow.engine import Engine
from latchflow.plugin.host import Registry
from latchflow.storage.database import Settings

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory [env LATCHFLOW_DATA_DIR]")
]
DatabaseUrl = Annotated[
    str | None, typer.Option("--database-url", help="Database URL [env LATCHFLOW_DATABASE_URL]")
]
console = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, soft_wrap=True)


def engine_for(
    data_dir: Path | None, database_url: str | None, registry: Registry | None = None
) -> Engine:
    return Engine(Settings.from_environment(data_dir, database_url), registry=registry)


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))
