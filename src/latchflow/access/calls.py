"""The ``RunContext`` a provider is called with outside a run (explaining, listing resources)."""

from __future__ import annotations

import logging

from latchflow.plugin.clock import Clock
from latchflow.plugin.types import Connection, RunContext


def provider_context(connection: Connection, clock: Clock, key: str) -> RunContext:
    return RunContext(
        run_id=key,
        flow_id="",
        step_id=key,
        attempt=1,
        idempotency_key=key,
        connection=connection,
        http=connection.http,
        logger=logging.LoggerAdapter(logging.getLogger("latchflow.access"), {}),
        clock=clock,
    )
