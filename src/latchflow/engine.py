"""The engine assembled: settings, store, plugins, connections, intake and executor in one object."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from latchflow.access import Access
from latchflow.backends.choose import run_queue
from latchflow.flows.document import Flow, validate_flow
from latchflow.intake.routing import Intake
from latchflow.plugin.clock import Clock, SystemClock
from latchflow.plugin.host import Registry, load_registry
from latchflow.plugin.types import JSON
from latchflow.runs.connections import Connections, TransportFactory
from latchflow.runs.executor import Executor
from latchflow.storage.database import Settings
from latchflow.storage.events import Accepted
from latchflow.storage.models import FlowRecord, RunRecord
from latchflow.storage.status import FINISHED
from latchflow.storage.store import Store


class Engine:
    """Everything needed to accept events and run flows in this process."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry | None = None,
        clock: Clock | None = None,
        transport: TransportFactory | None = None,
        worker_id: str = "local",
    ) -> None:
        self.settings = settings
        self.registry = registry or load_registry()
        self.clock = clock or SystemClock()
        self.store = Store(settings, run_queue(settings, self.clock))
        self.connections = Connections(self.store, self.registry, self.clock, transport)
        self.intake = Intake(self.store, self.registry, self.clock)
        self.executor = Executor(self.store, self.registry, self.connections, self.clock, worker_id)
        self.access = Access(self.store, self.registry, self.connections, self.clock)

    def install_flow(self, document: Any, expected_version: int | None = None) -> FlowRecord:
        """Validate a flow document and save it (a new version if it changed); see
        ``Store.save_flow`` for ``expected_version``."""
        return self.store.save_flow(validate_flow(document, self.registry), expected_version)

    def start(self, flow_id: str, data: JSON, dedupe_key: str | None = None) -> Accepted:
        """Accept an event for a flow: the event and its queued run are committed together."""
        return self.intake.start(flow_id, data, dedupe_key)

    def flow(self, flow_id: str) -> Flow:
        record = self.store.get_flow(flow_id)
        if record is None:
            raise KeyError(flow_id)
        return self.store.flow_version(flow_id, record.version)

    def run(self, run_id: str) -> RunRecord | None:
        return self.store.history.get(run_id)

    async def run_until_done(
        self, run_id: str, wait: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> RunRecord:
        """Advance one run in this process, waiting out its delays and retries."""
        while True:
            await self.executor.execute(run_id)
            run = self.run(run_id)
            assert run is not None
            if run.status in FINISHED:
                return run
            if run.due_at is not None:
                await wait(max(0.0, (run.due_at - self.clock.now()).total_seconds()))

    async def close(self) -> None:
        await self.connections.close()
        self.store.engine.dispose()
