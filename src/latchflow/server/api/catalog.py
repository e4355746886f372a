"""Management API: connections (secrets write-only) and the catalog of installed plugins."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from latchflow.plugin.errors import LatchflowError
from latchflow.runs.connections import save_connection
from latchflow.server.errors import Rejected, responses
from latchflow.server.schemas import (
    Catalog,
    ConnectionIn,
    ConnectionOut,
    ConnectionTest,
    ValidationErrorBody,
)
from latchflow.server.state import ServerState, server_state

router = APIRouter()
State = Annotated[ServerState, Depends(server_state)]


def _shown(record: Any) -> dict[str, Any]:
    return {"id": record.id, "vendor": record.vendor, "name": record.name, "config": record.config}


@router.get(
    "/connections", response_model=list[ConnectionOut], tags=["connections"], summary="Connections"
)
def list_connections(state: State) -> list[dict[str, Any]]:
    return [_shown(r) for r in state.engine.store.list_connections()]


@router.put(
    "/connections/{connection_id}",
    response_model=ConnectionOut,
    tags=["connections"],
    responses={422: {"model": ValidationErrorBody}},
    summary="Create or update a connection (secret fields left out keep their values)",
)
async def put_connection(connection_id: str, body: ConnectionIn, state: State) -> dict[str, Any]:
    return await save_connection(
        state.engine,
        connection_id,
        body.vendor,
        body.name or connection_id,
        body.config,
        test=body.test,
    )


@router.post(
    "/connections/{connection_id}/test",
    response_model=ConnectionTest,
    tags=["connections"],
    responses=responses(404),
    summary="Call the vendor with the connection's credentials",
)
async def test_connection(connection_id: str, state: State) -> dict[str, Any]:
    engine = state.engine
    record = next((c for c in engine.store.list_connections() if c.id == connection_id), None)
    if record is None:
        raise Rejected(404, f"no connection {connection_id!r}", "path")
    try:
        live = await engine.connections.get(connection_id)
        result = await engine.registry.vendors[record.vendor].test_connection(live.connection)
    except (LatchflowError, KeyError) as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": True, "result": result}


@router.delete(
    "/connections/{connection_id}",
    status_code=204,
    tags=["connections"],
    responses=responses(404),
    summary="Delete a connection",
)
def delete_connection(connection_id: str, state: State) -> Response:
    if not state.engine.store.delete_connection(connection_id):
        raise Rejected(404, f"no connection {connection_id!r}", "path")
    return Response(status_code=204)


@router.get(
    "/catalog",
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
