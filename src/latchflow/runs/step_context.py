"""What a step's action is given: its ``RunContext`` and, when it uses one, its connection
(and whether a hold keeps it from calling that connection now)."""

from __future__ import annotations

import logging
from datetime import datetime

from latchflow.flows.document import Step
from latchflow.plugin.clock import Clock
from latchflow.plugin.errors import LatchflowError
from latchflow.plugin.types import Action, RunContext
from latchflow.runs.connections import Connections, LiveConnection
from latchflow.storage.journal import RunRow, StepRow


async def action_context(
    run: RunRow,
    step: Step,
    record: StepRow,
    action: Action,
    connections: Connections,
    clock: Clock,
    where: str,
) -> tuple[RunContext, LiveConnection | None]:
    """The action's context, and its connection (read once per step) when it has one. A
    replayed run's steps count as later attempts: an earlier one may have reached the vendor."""
    live = None
    if uses_connection(action, step):
        assert action.connection is not None
        connection_id = connections.resolve(action.connection, step.connection, where)
        live = await connections.get(connection_id)
    connection = live.connection if live is not None else None
    context = RunContext(
        run_id=run.id,
        flow_id=run.flow_id,
        step_id=step.id,
        attempt=record.attempts + (1 if run.replays else 0),
        idempotency_key=f"{run.id}:{step.id}",
        connection=connection,
        http=connection.http if connection else connections.http,
        logger=logging.LoggerAdapter(
            logging.getLogger(f"latchflow.action.{action.key}"),
            {"run_id": run.id, "step_id": step.id},
        ),
        clock=clock,
        state=record.state,
        started_at=record.started_at,
    )
    return context, live


def uses_connection(action: Action, step: Step) -> bool:
    """Whether the step calls its action with a connection: a required one, or an optional one
    the step names."""
    return action.connection is not None and (
        action.connection_required or step.connection is not None
    )


def call_held_until(step: Step, action: Action | None, connections: Connections) -> datetime | None:
    """When the step may call its connection, if a hold keeps it from calling now."""
    if not connections.holds.any():
        return None
    if action is None or action.connection is None or not uses_connection(action, step):
        return None
    try:
        connection_id = connections.resolve(action.connection, step.connection, "")
    except LatchflowError:
        return None  # the call itself reports it
    return connections.admit(connection_id, action.connection)
