"""Management API: flows (create/update with validation, enable/disable, versions, delete),
their trigger URL tokens and signing secrets, and starting a run by hand."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response

from latchflow.plugin.errors import ValidationError
from latchflow.server import signing
from latchflow.server.errors import Rejected, responses
from latchflow.server.schemas import (
    FlowDetail,
    FlowSummary,
    FlowVersionOut,
    HookAccepted,
    SigningSecretIn,
    SigningSecretOut,
    StartIn,
    TokenOut,
    ValidationErrorBody,
)
from latchflow.server.state import ServerState, server_state
from latchflow.server.versions import expected_version, if_match_header
from latchflow.storage.models import FlowRecord
from latchflow.storage.store import StaleWrite

router = APIRouter(prefix="/flows", tags=["flows"])
State = Annotated[ServerState, Depends(server_state)]
INVALID: dict[int | str, dict[str, Any]] = {
    422: {"model": ValidationErrorBody, "description": "The document is invalid"}
}


def trigger_url(request: Request, record: FlowRecord) -> str | None:
    if record.trigger_type != "webhook":
        return None
    return str(request.url_for("post_hook", flow_id=record.id, token=record.hook_token))


def summary(request: Request, record: FlowRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "version": record.version,
        "trigger_type": record.trigger_type,
        "trigger_connection": record.trigger_connection,
        "enabled": record.enabled,
        "signed": record.signing_secret is not None,
        "previous_secret_until": _previous_secret_until(request, record),
        "trigger_url": trigger_url(request, record),
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
    }


def _previous_secret_until(request: Request, record: FlowRecord) -> str | None:
    until = record.previous_secret_until
    if record.previous_signing_secret is None or until is None:
        return None
    return until.isoformat() if server_state(request).engine.clock.now() < until else None


def _record(state: ServerState, flow_id: str) -> FlowRecord:
    record = state.engine.store.get_flow(flow_id)
    if record is None:
        raise Rejected(404, f"no flow {flow_id!r}", "path", "GET /api/flows lists the flows")
    return record


def _detail(state: ServerState, request: Request, record: FlowRecord) -> dict[str, Any]:
    flow = state.engine.store.flow_version(record.id, record.version)
    return summary(request, record) | {"document": flow.document}


def _update(state: ServerState, flow_id: str, **values: Any) -> FlowRecord:
    record = state.engine.store.update_flow(flow_id, **values)
    if record is None:
        raise Rejected(404, f"no flow {flow_id!r}", "path")
    return record


@router.get("", response_model=list[FlowSummary], summary="List flows")
def list_flows(request: Request, state: State) -> list[dict[str, Any]]:
    return [summary(request, r) for r in state.engine.store.list_flows()]


READ = "GET /api/flows/{id}"
IF_MATCH = if_match_header("flow", READ)


def etag(record: FlowRecord) -> str:
    return f'"{record.version}"'


@router.post(
    "",
    response_model=FlowDetail,
    status_code=201,
    summary="Create or update a flow from its document",
    responses=INVALID | responses(400, 409, 412),
)
def save_flow(
    request: Request,
    response: Response,
    state: State,
    document: Annotated[dict[str, Any], Body(description="A flow document")],
    if_match: Annotated[str | None, IF_MATCH] = None,
) -> dict[str, Any]:
    try:
        record = state.engine.install_flow(document, expected_version(if_match, "flow", READ))
    except StaleWrite as exc:
        status = 412 if if_match is not None else 409
        raise Rejected(
            status,
            str(exc),
            "header if-match" if status == 412 else "$.version",
            "GET /api/flows/{id} answers the flow as it is now, with its ETag",
        ) from None
    state.flows_changed()
    response.headers["etag"] = etag(record)
    return _detail(state, request, record)


@router.put(
    "/{flow_id}",
    response_model=FlowDetail,
    summary="Update a flow (a changed document needs a higher version)",
    responses=INVALID | responses(400, 404, 409, 412),
)
def put_flow(
    flow_id: str,
    request: Request,
    response: Response,
    state: State,
    document: Annotated[dict[str, Any], Body(description="A flow document")],
    if_match: Annotated[str | None, IF_MATCH] = None,
) -> dict[str, Any]:
    if document.get("id") != flow_id:
        raise ValidationError.at("$.id", f"must be {flow_id!r}, the flow id in the URL")
    return save_flow(request, response, state, document, if_match)


@router.get("/{flow_id}", response_model=FlowDetail, responses=responses(404), summary="A flow")
def get_flow(flow_id: str, request: Request, response: Response, state: State) -> dict[str, Any]:
    record = _record(state, flow_id)
    response.headers["etag"] = etag(record)
    return _detail(state, request, record)


@router.delete(
    "/{flow_id}",
    status_code=204,
    responses=responses(404),
    summary="Delete a flow and its versions; its unfinished runs are cancelled",
)
def delete_flow(flow_id: str, state: State) -> Response:
    _record(state, flow_id)
    state.engine.store.delete_flow(flow_id, state.engine.clock.now())
    state.flows_changed()
    return Response(status_code=204)


@router.post(
    "/{flow_id}/enable", response_model=FlowSummary, responses=responses(404), summary="Enable"
)
def enable_flow(flow_id: str, request: Request, state: State) -> dict[str, Any]:
    record = _update(state, flow_id, enabled=True)
    state.flows_changed()
    return summary(request, record)


@router.post(
    "/{flow_id}/disable",
    response_model=FlowSummary,
    responses=responses(404),
    summary="Disable (new events start no run; with cancel_runs, unfinished runs end too)",
)
def disable_flow(
    flow_id: str,
    request: Request,
    state: State,
    cancel_runs: Annotated[
        bool, Query(description="Also cancel the flow's unfinished runs (no further step starts)")
    ] = False,
) -> dict[str, Any]:
    record = _update(state, flow_id, enabled=False)
    if cancel_runs:
        state.engine.store.history.cancel_flow(flow_id, state.engine.clock.now(), "flow disabled")
    state.flows_changed()
    return summary(request, record)


@router.get(
    "/{flow_id}/versions",
    name="list_flow_versions",
    response_model=list[FlowVersionOut],
    responses=responses(404),
    summary="Every saved version of a flow, newest first",
)
def flow_versions(flow_id: str, state: State) -> list[dict[str, Any]]:
    _record(state, flow_id)
    return [
        {"version": v.version, "created_at": v.created_at.isoformat(), "document": v.document}
        for v in state.engine.store.flow_versions(flow_id)
    ]


@router.post(
    "/{flow_id}/rotate-token",
    name="rotate_flow_token",
    response_model=TokenOut,
    responses=responses(404),
    summary="Give the flow a new trigger URL token (the old URL stops working)",
)
def rotate_token(flow_id: str, request: Request, state: State) -> dict[str, Any]:
    record = _update(state, flow_id, hook_token=secrets.token_urlsafe(24))
    return {
        "trigger_url": str(request.url_for("post_hook", flow_id=flow_id, token=record.hook_token))
    }


@router.put(
    "/{flow_id}/signing-secret",
    response_model=SigningSecretOut,
    responses=responses(400, 404),
    summary="Require Standard Webhooks signatures on the trigger URL, with this (or a new) secret;"
    " the secret it replaces is still accepted for grace_seconds",
)
def set_signing_secret(flow_id: str, state: State, body: SigningSecretIn) -> dict[str, Any]:
    secret = signing.new_secret() if body.secret is None else body.secret
    try:
        signing.secret_key(secret)
    except ValueError as exc:
        raise Rejected(400, str(exc), "secret", "leave it out to have one generated") from None
    current = _record(state, flow_id).signing_secret
    until = state.engine.clock.now() + timedelta(seconds=body.grace_seconds)
    keep = current is not None and body.grace_seconds > 0
    _update(
        state,
        flow_id,
        signing_secret=state.engine.store.sealer.seal(secret),
        previous_signing_secret=current if keep else None,
        previous_secret_until=until if keep else None,
    )
    return {"secret": secret}


@router.delete(
    "/{flow_id}/signing-secret",
    response_model=FlowSummary,
    responses=responses(404),
    summary="Stop requiring signatures on the trigger URL (the previous secret goes too)",
)
def clear_signing_secret(flow_id: str, request: Request, state: State) -> dict[str, Any]:
    record = _update(
        state,
        flow_id,
        signing_secret=None,
        previous_signing_secret=None,
        previous_secret_until=None,
    )
    return summary(request, record)


@router.post(
    "/{flow_id}/runs",
    response_model=HookAccepted,
    status_code=202,
    responses=responses(404),
    summary="Start a run with the given event (any trigger type)",
)
def start_run(flow_id: str, request: Request, state: State, body: StartIn) -> dict[str, Any]:
    _record(state, flow_id)
    accepted = state.engine.start(flow_id, body.data, body.dedupe_key)
    state.dispatcher.notify()
    return {
        "run_id": accepted.run_id,
        "status_url": str(request.url_for("get_run", run_id=accepted.run_id)),
        "duplicate": not accepted.created,
    }
