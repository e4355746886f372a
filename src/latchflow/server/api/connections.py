"""Management API: connections to vendor accounts (secret fields are write-only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from latchflow.plugin.errors import LatchflowError
from latchflow.server.errors import Rejected, responses
from latchflow.server.schemas import (
    ConnectionIn,
    ConnectionOut,
    ConnectionTest,
    ValidationErrorBody,
)
from latchflow.server.state import ServerState, server_state

router = APIRouter(tags=["connections"])
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
    responses={422: {"model": ValidationErrorBody}},
    summary="Create or update a connection (secret fields left out keep their values)",
)
async def put_connection(connection_id: str, body: ConnectionIn, state: State) -> dict[str, Any]:
    return await state.engine.connections.save(
        connection_id,
        body.vendor,
        body.name or connection_id,
        body.config,
        test=body.test,
    )


@router.post(
    "/connections/{connection_id}/test",
    response_model=ConnectionTest,
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
    responses=responses(404),
    summary="Delete a connection",
)
def delete_connection(connection_id: str, state: State) -> Response:
    if not state.engine.store.delete_connection(connection_id):
        raise Rejected(404, f"no connection {connection_id!r}", "path")
    return Response(status_code=204)
