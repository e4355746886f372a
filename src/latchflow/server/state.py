"""What the HTTP routes share: the engine, the dispatcher, the scheduler and the server limits."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from latchflow.backends.embedded.dispatcher import Dispatcher
from latchflow.engine import Engine
from latchflow.intake.group_commit import GroupCommitter
from latchflow.intake.schedules import Scheduler

DEFAULT_BODY_LIMIT = 1024 * 1024
MAX_WAIT_SECONDS = 60.0


@dataclass
class ServerState:
    engine: Engine
    dispatcher: Dispatcher
    scheduler: Scheduler
    body_limit: int = DEFAULT_BODY_LIMIT
    intake: GroupCommitter = field(init=False)

    def __post_init__(self) -> None:
        self.intake = GroupCommitter(self.engine.store)

    def flows_changed(self) -> None:
        """Rebuild schedules and polls after a flow was created, changed, switched or deleted."""
        self.scheduler.rebuild()


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.latchflow
    return state
