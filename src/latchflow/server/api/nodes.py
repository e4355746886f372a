"""Management API: the nodes sharing this database, with their heartbeats and jobs in flight."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from latchflow.backends.nodes import list_nodes
from latchflow.server.schemas import NodeOut
from latchflow.server.state import ServerState, server_state

router = APIRouter(tags=["nodes"])
State = Annotated[ServerState, Depends(server_state)]


@router.get(
    "/nodes", name="list_nodes", response_model=list[NodeOut], summary="Nodes and their health"
)
def get_nodes(state: State) -> list[NodeOut]:
    """Every ``latchflow serve`` process on this database (one with SQLite), newest first."""
    now = state.engine.clock.now()
    return [NodeOut(**vars(node)) for node in list_nodes(state.engine.store, now)]
