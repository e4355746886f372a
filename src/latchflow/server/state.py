"""What the HTTP routes share: the engine, the dispatcher, the scheduler and the server limits."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from latchflow.backends.base import Dispatcher
from latchflow.backends.embedded.clock import Scheduler
from latchflow.engine import Engine

DEFAULT_BODY_LIMIT = 1024 * 1024
MAX_WAIT_SECONDS = 60.0


@dataclass
class ServerState:
    engine: Engine
    dispatcher: Dispatcher
    scheduler: Scheduler
    body_limit: int = DEFAULT_BODY_LIMIT

    def flows_changed(self) -> None:
        """Rebuild schedules and polls after a flow was created, changed, switched or deleted."""
        self.scheduler.rebuild()


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.latchflow
    return state
