"""Management API: connections to vendor accounts.

Secret fields are write-only. A connection to a vendor that sends webhooks has its own webhook
URL, whose token is shown once (when the connection is created, or the token rotated) and kept
only as a hash.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response

from latchflow.plugin.errors import LatchflowError
from latchflow.runs.connections import new_webhook_token, shown
from latchflow.server.errors import Rejected, responses
from latchflow.server.schemas import (
    ConnectionIn,
    ConnectionOut,
    ConnectionTest,
    ValidationErrorBody,
    WebhookUrlOut,
)
from latchflow.server.state import ServerState, server_state
from latchflow.storage.store import StaleWrite

router = APIRouter(tags=["connections"])
State = Annotated[ServerState, Depends(server_state)]


def webhook_url(request: Request, vendor: str, connection_id: str, token: str) -> str:
    return str(
        request.url_for(
            "post_vendor_webhook", vendor=vendor, connection_id=connection_id, token=token
        )
    )


@router.get("/connections", response_model=list[ConnectionOut], summary="Connections")
def list_connections(state: State) -> list[dict[str, Any]]:
    return [shown(r) for r in state.engine.store.list_connections()]


@router.put(
    "/connections/{connection_id}",
    response_model=ConnectionOut,
    responses=responses(409, 412) | {422: {"model": ValidationErrorBody}},
    summary="Create or update a connection (secret fields left out keep their values)",
)
async def put_connection(
    connection_id: str,
    body: ConnectionIn,
    request: Request,
    response: Response,
    state: State,
    if_match: Annotated[
        str | None,
        Header(
            alias="if-match",
            description="The connection's revision the change was made from (else: 412)",
        ),
    ] = None,
) -> dict[str, Any]:
    try:
        answer = await state.engine.connections.save(
            connection_id,
            body.vendor,
            body.name or connection_id,
            body.config,
            test=body.test,
            webhook_sources=body.webhook_sources,
            expected=if_match,
        )
    except StaleWrite as exc:
        status, where = (412, "header if-match") if if_match is not None else (409, "path")
        raise Rejected(status, str(exc), where, "GET /api/connections shows it now") from None
    token = answer.pop("webhook_token", None)
    if token is not None:
        answer["webhook_url"] = webhook_url(request, body.vendor, connection_id, token)
    response.headers["etag"] = answer["revision"]
    return answer


@router.post(
    "/connections/{connection_id}/rotate-webhook-token",
    response_model=WebhookUrlOut,
    responses=responses(404, 409),
    summary="Give the connection a new webhook URL (the old one stops working at once)",
)
def rotate_webhook_token(connection_id: str, request: Request, state: State) -> dict[str, Any]:
    engine = state.engine
    record = engine.store.get_connection(connection_id)
    if record is None:
        raise Rejected(404, f"no connection {connection_id!r}", "path")
    vendor = engine.registry.vendors.get(record.vendor)
    if vendor is None or vendor.webhook is None:
        raise Rejected(
            409, f"vendor {record.vendor!r} sends no webhooks", "path", "nothing to rotate"
        )
    token = new_webhook_token()
    engine.store.rotate_webhook_token(connection_id, token)
    return {"webhook_url": webhook_url(request, record.vendor, connection_id, token)}


@router.post(
    "/connections/{connection_id}/test",
    response_model=ConnectionTest,
    responses=responses(404),
    summary="Call the vendor with the connection's credentials",
)
async def test_connection(connection_id: str, state: State) -> dict[str, Any]:
    engine = state.engine
    record = engine.store.get_connection(connection_id)
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
