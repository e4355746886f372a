"""Vendor webhooks: ``POST /vendors/{vendor}/{connection_id}`` hands the request to the plugin.

The plugin verifies the vendor's signature and turns the request into events; each event
starts a run of every enabled flow listening on its trigger and this connection whose trigger
settings match it. Events that match no setting are kept as "filtered", with the reason.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from latchflow.intake.events import accept_batch
from latchflow.plugin.errors import ConfigurationError, WebhookError
from latchflow.plugin.types import TriggerEvent, WebhookRequest
from latchflow.server.errors import Rejected, responses
from latchflow.server.schemas import DroppedEvent, RunStarted, VendorAccepted
from latchflow.server.state import ServerState, server_state
from latchflow.server.trigger_urls import read_body
from latchflow.storage.models import FlowRecord

router = APIRouter(tags=["vendor webhooks"])


def listening_flows(state: ServerState, trigger: str, connection_id: str) -> list[FlowRecord]:
    """Enabled flows on ``trigger`` that use this connection (named, or the vendor's only one)."""
    store = state.engine.store
    flows = [f for f in store.list_flows() if f.enabled and f.trigger_type == trigger]
    if not flows:
        return []
    record, _ = store.connection_config(connection_id)
    only_one = len(store.list_connections(record.vendor)) == 1
    return [
        f
        for f in flows
        if f.trigger_connection == connection_id or (f.trigger_connection is None and only_one)
    ]


def route_events(
    state: ServerState, connection_id: str, events: list[TriggerEvent]
) -> VendorAccepted:
    """Store each event for every flow it concerns (deduped per flow by trigger and event id)."""
    engine = state.engine
    runs: list[RunStarted] = []
    dropped: list[DroppedEvent] = []
    now = engine.clock.now()
    for event in events:
        trigger = engine.registry.triggers.get(event.trigger)
        if trigger is None:
            continue
        key = f"{event.trigger}:{event.id}"
        for record in listening_flows(state, event.trigger, connection_id):
            flow = engine.store.flow_version(record.id, record.version)
            with engine.store.session() as session:
                if trigger.matches(flow.trigger_input, event.data):
                    (accepted,) = accept_batch(session, record, [(key, event.data)], now)
                    runs.append(
                        RunStarted(
                            flow_id=record.id, run_id=accepted.run_id, created=accepted.created
                        )
                    )
                else:
                    reason = (
                        f"the event does not match the flow's trigger settings {flow.trigger_input}"
                    )
                    accept_batch(session, record, [], now, filtered=[(key, event.data, reason)])
                    dropped.append(
                        DroppedEvent(flow_id=record.id, event_id=event.id, reason=reason)
                    )
    if any(r.created for r in runs):
        state.dispatcher.notify()
    return VendorAccepted(events=len(events), runs=runs, filtered=dropped)


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
    return route_events(state, connection_id, events)
