"""Management API: the catalog of installed plugins, vendors, triggers and actions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from latchflow.server.schemas import (
    Catalog,
)
from latchflow.server.state import ServerState, server_state

router = APIRouter()
State = Annotated[ServerState, Depends(server_state)]


@router.get(
    "/catalog",
    name="get_catalog",
    response_model=Catalog,
    tags=["catalog"],
    summary="Installed plugins, vendors, triggers and actions with their schemas and samples",
)
def catalog(state: State) -> dict[str, Any]:
    registry = state.engine.registry
    return {
        "plugins": [p.__dict__ for p in registry.plugins],
        "vendors": [
            {
                "key": v.key,
                "title": v.title,
                "description": v.description,
                "connection_schema": v.connection_schema,
                "webhook": v.webhook is not None,
                "sandbox": v.sandbox is not None and v.simulator is not None,
            }
            for v in registry.vendors.values()
        ],
        "triggers": [
            _component(t)
            | {
                "webhook": t.webhook,
                "polls": t.poll is not None,
                "poll_interval": t.poll_interval if t.poll is not None else None,
            }
            for t in registry.triggers.values()
        ],
        "actions": [
            _component(a) | {"idempotent": a.idempotent} for a in registry.actions.values()
        ],
    }


def _component(item: Any) -> dict[str, Any]:
    return {
        "key": item.key,
        "title": item.title,
        "description": item.description,
        "connection": item.connection,
        "input_schema": item.input_schema,
        "output_schema": item.output_schema,
        "sample": item.sample,
    }
