"""Node identity and health: each ``latchflow serve`` process keeps a heartbeat row in ``nodes``.

With SQLite there is one node; on PostgreSQL every node sharing the database is listed. A node
stopped gracefully removes its row; a killed node's row stays, with an old heartbeat, until a
day has passed (so ``latchflow nodes`` shows which node died and when it was last seen).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from latchflow.backends.base import Dispatcher
from latchflow.plugin.clock import Clock
from latchflow.storage.store import Store

log = logging.getLogger("latchflow.nodes")

HEARTBEAT_SECONDS = 5.0
SILENT_AFTER = timedelta(seconds=3 * HEARTBEAT_SECONDS)
"""A node whose heartbeat is older than this is reported as not alive."""
FORGET_AFTER = timedelta(days=1)


def new_node_id() -> str:
    """Host name, process id and a random suffix: unique, and readable in logs."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class NodeStatus:
    id: str
    host: str
    backend: str
    started_at: datetime
    last_heartbeat: datetime
    jobs_in_flight: int
    alive: bool


def list_nodes(store: Store, now: datetime) -> list[NodeStatus]:
    """Every node that sent a heartbeat within a day, most recently started first."""
    return [
        NodeStatus(
            id=r.id,
            host=r.host,
            backend=r.backend,
            started_at=r.started_at,
            last_heartbeat=r.last_heartbeat,
            jobs_in_flight=r.jobs_in_flight,
            alive=now - r.last_heartbeat <= SILENT_AFTER,
        )
        for r in store.nodes.all()
    ]


class NodeHeartbeat:
    """Writes this node's row at start, refreshes it every ``interval``, removes it at stop."""

    def __init__(
        self,
        store: Store,
        dispatcher: Dispatcher,
        clock: Clock,
        node_id: str,
        interval: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.clock = clock
        self.node_id = node_id
        self.interval = interval
        self.backend = "procrastinate" if dispatcher.fires_schedules else "embedded"
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        now = self.clock.now()
        self.store.nodes.register(self.node_id, self.backend, now, now - FORGET_AFTER)
        self._task = asyncio.create_task(self._beat(), name="latchflow-heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.store.nodes.remove(self.node_id)

    def beat(self) -> None:
        self.store.nodes.beat(
            self.node_id, self.backend, self.clock.now(), self.dispatcher.in_flight
        )

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.beat()
            except Exception:  # a database hiccup must not end the heartbeat
                log.exception("could not record this node's heartbeat")
