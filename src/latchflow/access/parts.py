"""What the access layer's pieces share (``Part``), and the ``RunContext`` a provider is
called with outside a run."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from latchflow.access.notices import Notices
from latchflow.plugin.clock import Clock
from latchflow.plugin.host import Registry
from latchflow.plugin.types import Connection, RunContext
from latchflow.runs.connections import Connections
from latchflow.storage.access import AccessRecords
from latchflow.storage.store import Store


@dataclass
class Part:
    """The store, the plugins, the live connections, the clock and the notices."""

    store: Store
    registry: Registry
    connections: Connections
    clock: Clock
    notices: Notices

    @property
    def records(self) -> AccessRecords:
        return self.store.access


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
