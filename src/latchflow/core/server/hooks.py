"""Trigger URLs: ``POST /hooks/{flow_id}/{token}`` starts a run of a webhook flow.

Order of checks: the URL (flow, token, trigger type, enabled), then the request (content type,
size, JSON), then the signature when the flow has a signing secret (timestamp window, replayed
ids). Every refusal is a JSON error and stores nothing. The event, its run and the webhook id
receipt are committed in one transaction before the answer; concurrent deliveries share
transactions (``group_commit``).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from typing import Any

import jmespath
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlmodel import select
from starlette.requests import ClientDisconnect

from latchflow.core.executor import FINISHED
from latchflow.core.group_commit import Delivery, WebhookIdReplayed
from latchflow.core.models import FlowRecord, RunRecord, WebhookReceipt
from latchflow.core.server import signing
from latchflow.core.server.errors import Rejected, responses
from latchflow.core.server.schemas import HookAccepted
from latchflow.core.server.state import MAX_WAIT_SECONDS, ServerState

router = APIRouter(tags=["trigger URLs"])

OK_200: dict[int | str, dict[str, Any]] = {
    200: {"model": HookAccepted, "description": "A duplicate, or a finished run"}
}
HIDDEN_HEADERS = {"authorization", "cookie", "webhook-signature", "proxy-authorization"}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing more than ``limit`` bytes whatever Content-Length claims."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Rejected(
            413,
            f"the body is {declared} bytes; the limit is {limit}",
            "body",
            "send a smaller JSON document",
        )
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise Rejected(
                    413,
                    f"the body exceeds the limit of {limit} bytes",
                    "body",
                    "send a smaller JSON document",
                )
            chunks.append(chunk)
    except ClientDisconnect as exc:  # nobody is left to read the answer: nothing to log
        raise Rejected(
            400, "the client disconnected before the body was complete", "body", "send it again"
        ) from exc
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Rejected(
            400, f"the body is not valid JSON: {exc}", "body", "send one UTF-8 JSON document"
        ) from exc


def require_json_content_type(request: Request) -> None:
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise Rejected(
            415,
            f"content type {content_type or '(none)'!r} is not accepted",
            "header content-type",
            "send the body as JSON with 'Content-Type: application/json'",
        )


def _flow_for(state: ServerState, flow_id: str, token: str) -> FlowRecord:
    record = state.engine.store.flow_switches(flow_id)
    if record is None or not hmac.compare_digest(record.hook_token.encode(), token.encode()):
        raise Rejected(
            404,
            "no trigger URL matches this flow id and token",
            "path",
            "copy the flow's current trigger URL (GET /api/flows/{id}); rotating the token"
            " invalidates the old URL",
        )
    if record.trigger_type != "webhook":
        raise Rejected(
            409,
            f"flow {flow_id!r} starts on {record.trigger_type!r}, not on its trigger URL",
            "path",
            "give the flow the 'webhook' trigger to start it by URL",
        )
    if not record.enabled:
        raise Rejected(
            409,
            f"flow {flow_id!r} is disabled",
            "path",
            "enable it with POST /api/flows/{id}/enable",
        )
    return record


def verify_signature(
    state: ServerState, record: FlowRecord, request: Request, body: bytes
) -> str | None:
    """The delivery's webhook id when the flow requires signatures (and they check out)."""
    if record.signing_secret is None:
        return None
    secret = state.engine.store.sealer.unseal(record.signing_secret)
    headers = request.headers
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        if not headers.get(name):
            raise Rejected(
                401,
                f"this trigger URL requires a Standard Webhooks signature; {name} is missing",
                f"header {name}",
                "sign deliveries with the flow's whsec_ secret (webhook-id, webhook-timestamp,"
                " webhook-signature)",
            )
    webhook_id, stamp = headers["webhook-id"], headers["webhook-timestamp"]
    if not stamp.isdigit():
        raise Rejected(400, "webhook-timestamp is not unix seconds", "header webhook-timestamp")
    now = state.engine.clock.now().timestamp()
    if abs(now - int(stamp)) > signing.TOLERANCE_SECONDS:
        raise Rejected(
            401,
            f"webhook-timestamp is {int(now - int(stamp))} s away from now; the tolerance is"
            f" {signing.TOLERANCE_SECONDS} s",
            "header webhook-timestamp",
            "sign with the current time; check the sender's clock",
        )
    if not signing.signature_matches(
        secret, webhook_id, int(stamp), body, headers["webhook-signature"]
    ):
        raise Rejected(
            401,
            "webhook-signature does not match the body",
            "header webhook-signature",
            "sign '{webhook-id}.{webhook-timestamp}.{raw body}' with HMAC-SHA256 and the"
            " flow's current secret",
        )
    with state.engine.store.session() as session:
        if session.get(WebhookReceipt, (record.id, webhook_id)) is not None:
            raise _replayed(webhook_id)
    return webhook_id


def _replayed(webhook_id: str) -> Rejected:
    return Rejected(
        409,
        f"webhook-id {webhook_id!r} was already delivered",
        "header webhook-id",
        "give every new delivery a new webhook-id",
    )


def dedupe_key(record: FlowRecord, state: ServerState, header: str | None, body: Any) -> str | None:
    if header:
        return header
    flow = state.engine.executor.flow(record.id, record.version)  # versions never change
    path = flow.trigger_input.get("idempotency_key_path")
    if not path:
        return None
    value = jmespath.search(path, body)
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


WAIT_PARAMETER = {
    "name": "wait",
    "in": "query",
    "required": False,
    "description": "Wait up to this many seconds for the run",
    "schema": {"type": "number", "minimum": 0, "maximum": MAX_WAIT_SECONDS},
}
PARAMETERS = [
    {"name": "flow_id", "in": "path", "required": True, "schema": {"type": "string"}},
    {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}},
    WAIT_PARAMETER,
    {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"}},
]


def wait_seconds(request: Request) -> float | None:
    raw = request.query_params.get("wait")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= MAX_WAIT_SECONDS:
        raise Rejected(
            400,
            f"wait={raw!r} is not a number of seconds from 0 to {MAX_WAIT_SECONDS:g}",
            "query wait",
            "leave it out to be answered at once",
        )
    return seconds


@router.post(
    "/hooks/{flow_id}/{token}",
    status_code=202,
    response_model=HookAccepted,
    summary="Start a run of a webhook flow",
    responses=OK_200 | responses(400, 401, 404, 409, 413, 415),
    openapi_extra={
        "parameters": PARAMETERS,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"description": "Any JSON document"}}},
        },
    },
)
async def post_hook(request: Request) -> Response:
    # the hot path reads the request itself: no parameter injection, no response model
    state: ServerState = request.app.state.latchflow
    params = request.path_params
    record = _flow_for(state, params["flow_id"], params["token"])
    require_json_content_type(request)
    wait = wait_seconds(request)
    body_bytes = await read_body(request, state.body_limit)
    body = parse_json(body_bytes)
    webhook_id = verify_signature(state, record, request, body_bytes)
    key = dedupe_key(record, state, request.headers.get("idempotency-key"), body)
    now = state.engine.clock.now()
    data = {
        "body": body,
        "headers": {k: v for k, v in request.headers.items() if k not in HIDDEN_HEADERS},
        "query": {k: v for k, v in request.query_params.items() if k != "wait"},
        "received_at": now.isoformat(),
    }
    try:  # the receipt, event and run are committed together (or not at all) before we answer
        accepted = await state.intake.accept(Delivery(record, data, now, key, webhook_id))
    except WebhookIdReplayed as exc:
        raise _replayed(webhook_id or "") from exc
    status_url = f"{request.base_url}api/runs/{accepted.run_id}"
    result: dict[str, Any] = {"run_id": accepted.run_id, "status_url": status_url}
    if not accepted.created:
        return JSONResponse({**result, "duplicate": True}, status_code=200)
    state.dispatcher.notify()
    if wait:
        finished = await _wait_for(state, accepted.run_id, wait)
        if finished is not None:
            result |= {
                "status": finished.status,
                "output": finished.output,
                "error": finished.error,
            }
            return JSONResponse(result, status_code=200)
    return JSONResponse(result, status_code=202)


async def _wait_for(state: ServerState, run_id: str, seconds: float) -> RunRecord | None:
    deadline = time.monotonic() + seconds
    while True:
        with state.engine.store.session() as session:
            run = session.exec(select(RunRecord).where(RunRecord.id == run_id)).one()
        if run.status in FINISHED:
            return run
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(0.05)
