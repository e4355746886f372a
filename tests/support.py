"""A throwaway plugin for engine tests: a vendor 'acme' and actions that record their calls."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from latchflow import (
    JSON,
    Action,
    Connection,
    FatalError,
    Pending,
    RetryableError,
    RetrySafety,
    RunContext,
    Vendor,
    hookimpl,
)

EFFECTS_ENV = "ACME_EFFECTS_FILE"
HANG_ENV = "ACME_HANG_AT"


async def _test_connection(connection: Connection) -> JSON:
    return {"ok": connection.config.get("api_key") == "acme-key"}


def record_effect(name: str, ctx: RunContext) -> None:
    path = os.environ.get(EFFECTS_ENV)
    if path:
        with Path(path).open("a") as handle:
            handle.write(json.dumps({"name": name, "key": ctx.idempotency_key}) + "\n")


class AcmePlugin:
    """Register with ``load_registry(extra=[AcmePlugin()])``; ``calls`` lists every action call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, JSON]] = []
        self.failures: dict[str, list[Exception]] = {}

    @hookimpl
    def register_vendors(self, register: Callable[[Vendor], None]) -> None:
        register(
            Vendor(
                key="acme",
                title="Acme Locks",
                description="A pretend vendor for tests",
                connection_schema={
                    "type": "object",
                    "required": ["api_key", "api_secret"],
                    "properties": {
                        "api_key": {"type": "string", "description": "Key"},
                        "api_secret": {
                            "type": "string",
                            "writeOnly": True,
                            "description": "Secret",
                        },
                    },
                },
                test_connection=_test_connection,
            )
        )

    @hookimpl
    def register_actions(self, register: Callable[[Action], None]) -> None:
        schema: JSON = {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "description": "What to record"},
                "value": {"description": "Anything"},
            },
        }
        out: JSON = {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}},
        }

        async def record(ctx: RunContext, data: JSON) -> JSON:
            if os.environ.get(HANG_ENV) == data["name"]:
                Path(os.environ[EFFECTS_ENV] + ".hanging").write_text(data["name"])
                time.sleep(3600)  # the test kills the process here
            failures = self.failures.get(data["name"])
            if failures:
                raise failures.pop(0)
            self.calls.append((data["name"], {"key": ctx.idempotency_key, **data}))
            record_effect(data["name"], ctx)
            return {"name": data["name"], "value": data.get("value")}

        async def connected(ctx: RunContext, data: JSON) -> JSON:
            assert ctx.connection is not None
            failures = self.failures.get(data["name"])
            if failures:
                raise failures.pop(0)
            self.calls.append((data["name"], {"connection": ctx.connection.id}))
            return {"name": data["name"], "token": ctx.connection.config["api_secret"]}

        async def job(ctx: RunContext, data: JSON) -> JSON | Pending:
            checks = (ctx.state or {}).get("checks", 0)
            self.calls.append((data["name"], {"checks": checks}))
            if checks < 2:
                return Pending(ctx.clock.now() + timedelta(seconds=10), {"checks": checks + 1})
            return {"name": data["name"]}

        for key, run, connection, safety in (
            ("acme.record", record, None, RetrySafety.IDEMPOTENCY_KEY),
            ("acme.connected", connected, "acme", RetrySafety.IDEMPOTENCY_KEY),
            ("acme.job", job, None, RetrySafety.IDEMPOTENCY_KEY),
            ("acme.once", record, None, RetrySafety.MANUAL),  # no way to find what it made
            ("acme.once_connected", connected, "acme", RetrySafety.MANUAL),
        ):
            register(
                Action(
                    key=key,
                    title=key,
                    description=f"Test action {key}",
                    input_schema=schema,
                    output_schema=out,
                    sample={"name": "sample"},
                    run=run,
                    connection=connection,
                    retry_safety=safety,
                )
            )

    def fail_next(self, name: str, *errors: Exception) -> None:
        self.failures[name] = list(errors)


def flow(steps: list[JSON], trigger: JSON | None = None, **extra: Any) -> JSON:
    """A flow document with the given steps (manual trigger unless given)."""
    return {
        "id": extra.pop("id", "test-flow"),
        "name": "Test flow",
        "version": extra.pop("version", 1),
        "trigger": trigger or {"type": "manual"},
        "steps": steps,
        **extra,
    }


__all__ = ["AcmePlugin", "FatalError", "RetryableError", "flow", "record_effect"]
