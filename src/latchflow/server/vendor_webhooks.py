"""Vendor webhooks: ``POST /vendors/{vendor}/{connection_id}`` hands the request to the plugin.

The plugin verifies the vendor's signature and turns the request into events; ``Intake.route``
starts a run of every enabled flow listening on each event's trigger and this connection whose
trigger settings match it. Events that match no setting are kept as "filtered", with the reason.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from latchflow.plugin.errors import ConfigurationError, WebhookError
from latchflow.plugin.types import WebhookRequest
from latchflow.server.bodies import read_body
from latchflow.server.errors import Rejected, responses
from latchflow.server.schemas import DroppedEvent, RunStarted, VendorAccepted
from latchflow.server.state import ServerState, server_state

router = APIRouter(tags=["vendor webhooks"])


@router.post(
    "/vendors/{vendor}/{connection_id}",
    response_model=VendorAccepted,
    summary="Receive a vendor's webhook for a connection",
    responses=responses(400, 401, 404, 413),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"description": "As the vendor sends it"}}},
        }
    },
)
async def post_vendor_webhook(
    vendor: str,
    connection_id: str,
    request: Request,
    state: Annotated[ServerState, Depends(server_state)],
) -> VendorAccepted:
    engine = state.engine
    plugin = engine.registry.vendors.get(vendor)
    if plugin is None or plugin.webhook is None:
        raise Rejected(404, f"no vendor {vendor!r} with webhooks is installed", "path")
    try:
        record, _ = engine.store.connection_config(connection_id)
    except ConfigurationError:
        raise Rejected(404, f"no connection {connection_id!r}", "path") from None
    if record.vendor != vendor:
        raise Rejected(404, f"connection {connection_id!r} is not a {vendor!r} connection", "path")
    body = await read_body(request, state.body_limit)
    live = await engine.connections.get(connection_id)
    webhook_request = WebhookRequest(
        method=request.method, url=str(request.url), headers=dict(request.headers), body=body
    )
    try:
        events = await plugin.webhook(webhook_request, live.connection)
    except WebhookError as exc:
        raise Rejected(exc.status_code, str(exc), f"vendor {vendor}") from None
    except ValueError as exc:
        raise Rejected(400, f"the {vendor} webhook could not be read: {exc}", "body") from None
    routed = engine.intake.route(connection_id, events)
    if any(run.created for run in routed.runs):
        state.dispatcher.notify()
    return VendorAccepted(
        events=routed.events,
        runs=[RunStarted(**vars(run)) for run in routed.runs],
        filtered=[DroppedEvent(**vars(dropped)) for dropped in routed.filtered],
    )
