"""Vendor webhooks: ``POST /vendors/{vendor}/{connection_id}/{token}`` hands the request to
the plugin.

The URL's token is the connection's own (made with the connection, shown once, rotatable), so
nobody who merely guesses a connection id can send events. Every mismatch (vendor, connection,
token) answers the same 404, and a connection may also name the networks its vendor sends from.
All of this is checked before the body is read. The plugin then verifies the vendor's own
signature, where the vendor has one, and turns the request into events; ``Intake.route``
starts a run of every enabled flow listening on each event's trigger and this connection whose
trigger settings match it. Events that match no setting are kept as "filtered", with the reason.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from latchflow.plugin.errors import WebhookError
from latchflow.plugin.types import WebhookRequest
from latchflow.server.bodies import read_body, refuse_unsafe_json
from latchflow.server.errors import Rejected, responses
from latchflow.server.schemas import DroppedEvent, RunStarted, VendorAccepted
from latchflow.server.state import ServerState, server_state
from latchflow.storage.models import ConnectionRecord

router = APIRouter(tags=["vendor webhooks"])


def no_such_url() -> Rejected:
    """The one answer to a wrong vendor, connection or token: it tells none of them apart."""
    return Rejected(
        404,
        "no vendor webhook URL matches this vendor, connection and token",
        "path",
        "copy the connection's webhook URL (shown when it was created; POST"
        " /api/connections/{id}/rotate-webhook-token makes a new one)",
    )


def check_source(record: ConnectionRecord, request: Request) -> None:
    """Refuse a webhook from outside the networks the connection names (if it names any)."""
    if not record.webhook_sources:
        return
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or not any(
        address in ipaddress.ip_network(network) for network in record.webhook_sources
    ):
        raise Rejected(
            403,
            f"webhooks for connection {record.id!r} are accepted only from"
            f" {', '.join(record.webhook_sources)}; this one came from {host or 'an unknown address'}",
            "client address",
            "send from an allowed network, or change the connection's webhook_sources",
        )


@router.post(
    "/vendors/{vendor}/{connection_id}/{token}",
    response_model=VendorAccepted,
    summary="Receive a vendor's webhook for a connection",
    description=(
        "The URL (with its token) is shown when the connection is created or its webhook token"
        " is rotated. The body is passed to the vendor's plugin, which verifies the vendor's"
        " signature where there is one."
    ),
    responses=responses(400, 401, 403, 404, 413),
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
    token: str,
    request: Request,
    state: Annotated[ServerState, Depends(server_state)],
) -> VendorAccepted:
    engine = state.engine
    plugin = engine.registry.vendors.get(vendor)
    record = engine.store.webhook_connection(vendor, connection_id, token)
    if plugin is None or plugin.webhook is None or record is None:
        raise no_such_url()
    check_source(record, request)
    body = await read_body(request, state.body_limit)
    refuse_unsafe_json(body, request.headers.get("content-type", ""))
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
    engine.access.link_events(connection_id, events)
    if any(run.created for run in routed.runs):
        state.dispatcher.notify()
    return VendorAccepted(
        events=routed.events,
        dropped=routed.dropped,
        runs=[RunStarted(**vars(run)) for run in routed.runs],
        filtered=[DroppedEvent(**vars(dropped)) for dropped in routed.filtered],
    )
