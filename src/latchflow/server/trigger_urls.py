"""Trigger URLs: ``POST /hooks/{flow_id}/{token}`` starts a run of a webhook flow.

Order of checks: the URL (flow, token, trigger type, enabled), then the request (content type,
size, JSON), then the signature when the flow has a signing secret (timestamp window, then the
current secret or, during a rotation's grace period, the previous one; without a secret, only
a malformed ``webhook-timestamp`` is refused). Every refusal is a JSON error and stores nothing. The event, its run and the webhook id receipt are committed in one
transaction before the answer; concurrent deliveries share transactions (``storage.events``,
through ``intake``). A signed delivery whose ``webhook-id`` the flow already accepted (a
sender's retry) is answered 200 with the first delivery's run, as a repeated Idempotency-Key is.

These requests are the hot path, so the app answers them straight from ASGI (``answer``, called
by ``LatchflowApp`` before FastAPI's middleware and routing, which cost as much CPU as the
handler itself). The declared route documents the URL in OpenAPI and names it for ``url_for``;
both run ``take_delivery``. Headers and query parameters are read as Starlette reads them.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import URL
from starlette.types import Receive, Scope, Send

from latchflow.server import signing
from latchflow.server.bodies import chunks, collect_body, parse_json, require_json_content_type
from latchflow.server.errors import Rejected, responses
from latchflow.server.responses import render, send_json
from latchflow.server.schemas import HookAccepted
from latchflow.server.state import MAX_WAIT_SECONDS, ServerState
from latchflow.storage.events import Delivery
from latchflow.storage.models import FlowRecord, RunRecord
from latchflow.storage.status import FINISHED

router = APIRouter(tags=["trigger urls"])

OK_200: dict[int | str, dict[str, Any]] = {
    200: {"model": HookAccepted, "description": "A duplicate, or a finished run"}
}
HIDDEN_HEADERS = {"authorization", "cookie", "webhook-signature", "proxy-authorization"}
TRIGGER_PATH = re.compile(r"/hooks/([^/]+)/([^/]+)")
UNIX_SECONDS = re.compile(r"[0-9]{1,12}")
INTERNAL_ERROR = {
    "error": "the server failed to take the delivery",
    "where": None,
    "hint": "send it again later; the server logged the cause",
}


class HookRequest:
    """A trigger URL request read from its ASGI scope, as Starlette's ``Request`` would read it."""

    __slots__ = ("_first", "headers", "query", "receive", "scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        self.scope = scope
        self.receive = receive
        self.headers = dict(pairs)
        """Every header name with its last value (what the event keeps)."""
        self._first = self.headers if len(self.headers) == len(pairs) else dict(reversed(pairs))
        self.query = dict(
            parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        )
        """Every query parameter with its last value."""

    def header(self, name: str) -> str | None:
        """The first value of a header (``name`` in lower case)."""
        return self._first.get(name)

    def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives; ``ClientDisconnect`` if the client leaves first."""
        return chunks(self.receive)

    @property
    def base_url(self) -> str:
        """Scheme, host and root path, ending in "/" (Starlette's ``request.base_url``)."""
        scope = self.scope
        server = scope.get("server")
        return _base_url(
            scope.get("scheme", "http"),
            None if server is None else tuple(server),
            self.header("host"),
            scope.get("app_root_path", scope.get("root_path", "")),
        )


@functools.lru_cache(maxsize=64)
def _base_url(scheme: str, server: tuple[str, int] | None, host: str | None, root_path: str) -> str:
    scope = {
        "scheme": scheme,
        "server": server,
        "path": root_path if root_path.endswith("/") else root_path + "/",
        "query_string": b"",
        "headers": [] if host is None else [(b"host", host.encode("latin-1"))],
    }
    return str(URL(scope=scope))


def trigger_url_parts(scope: Scope) -> tuple[str, str] | None:
    """(flow id, token) when ``scope`` is a POST to a trigger URL, as the route would match it."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path + "/"):
        path = path[len(root_path) :]
    match = TRIGGER_PATH.fullmatch(path)
    return None if match is None else (match[1], match[2])


async def answer(
    state: ServerState, flow_id: str, token: str, scope: Scope, receive: Receive, send: Send
) -> None:
    """Answer a trigger URL request as the route and the app's handlers would: a refusal is
    its JSON error; an unexpected error a JSON 500, then raised for the server to log."""
    try:
        status, content = await take_delivery(state, flow_id, token, HookRequest(scope, receive))
        body = render(content)
    except Rejected as exc:
        status, body = exc.status_code, render(exc.problem())
    except Exception:
        await send_json(send, 500, render(INTERNAL_ERROR))
        raise
    await send_json(send, status, body)


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
    state: ServerState, record: FlowRecord, request: HookRequest, body: bytes
) -> str | None:
    """The delivery's webhook id when the flow requires signatures (and they check out)."""
    if record.signing_secret is None:
        stamp = request.header("webhook-timestamp")
        if stamp is not None:  # a declared header is refused when malformed, signed or not
            _timestamp(stamp)
        return None
    webhook_id, stamp, signature = (
        _signature_header(request, name)
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    )
    timestamp = _timestamp(stamp)
    now = state.engine.clock.now()
    age = now.timestamp() - timestamp
    if abs(age) > signing.TOLERANCE_SECONDS:
        raise Rejected(
            401,
            f"webhook-timestamp is {int(age)} s away from now; the tolerance is"
            f" {signing.TOLERANCE_SECONDS} s",
            "header webhook-timestamp",
            "sign with the current time; check the sender's clock",
        )
    for secret in _secrets(state, record, now):
        if signing.signature_matches(secret, webhook_id, timestamp, body, signature):
            return webhook_id
    raise Rejected(
        401,
        "webhook-signature does not match the body",
        "header webhook-signature",
        "sign '{webhook-id}.{webhook-timestamp}.{raw body}' with HMAC-SHA256 and the"
        " flow's current secret",
    )


def _timestamp(stamp: str) -> int:
    if UNIX_SECONDS.fullmatch(stamp) is None:
        raise Rejected(
            400,
            "webhook-timestamp is not unix seconds (1 to 12 ASCII digits)",
            "header webhook-timestamp",
            "send the time of signing in whole seconds since 1970-01-01 UTC, e.g. 1614265330",
        )
    return int(stamp)


def _secrets(state: ServerState, record: FlowRecord, now: datetime) -> Iterator[str]:
    """The flow's current secret, then the one it replaced while its grace period lasts."""
    sealer = state.engine.store.sealer
    assert record.signing_secret is not None
    yield sealer.unseal(record.signing_secret)
    until = record.previous_secret_until
    if record.previous_signing_secret is not None and until is not None and now < until:
        yield sealer.unseal(record.previous_signing_secret)


def _signature_header(request: HookRequest, name: str) -> str:
    value = request.header(name)
    if not value:
        raise Rejected(
            401,
            f"this trigger URL requires a Standard Webhooks signature; {name} is missing",
            f"header {name}",
            "sign deliveries with the flow's whsec_ secret (webhook-id, webhook-timestamp,"
            " webhook-signature)",
        )
    return value


WAIT_PARAMETER = {
    "name": "wait",
    "in": "query",
    "required": False,
    "description": "Wait up to this many seconds for the run",
    "schema": {"type": "number", "minimum": 0, "maximum": MAX_WAIT_SECONDS},
}
SIGNATURE_HEADERS = [
    {
        "name": "webhook-id",
        "in": "header",
        "required": False,
        "description": "Standard Webhooks: the delivery's id, the same in each retry (required"
        " when the flow has a signing secret)",
        "schema": {"type": "string"},
    },
    {
        "name": "webhook-timestamp",
        "in": "header",
        "required": False,
        "description": "Standard Webhooks: when the delivery was signed, in unix seconds (required"
        " when the flow has a signing secret)",
        "schema": {"type": "string", "pattern": f"^{UNIX_SECONDS.pattern}$"},
    },
    {
        "name": "webhook-signature",
        "in": "header",
        "required": False,
        "description": "Standard Webhooks: space-separated 'v1,<base64 HMAC-SHA256>' signatures of"
        " '{webhook-id}.{webhook-timestamp}.{body}' (required when the flow has a signing secret)",
        "schema": {"type": "string"},
    },
]
PARAMETERS = [
    {"name": "flow_id", "in": "path", "required": True, "schema": {"type": "string"}},
    {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}},
    WAIT_PARAMETER,
    {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "The same key again within a flow starts no second run: the first run is"
        " answered (200)",
        "schema": {"type": "string"},
    },
    *SIGNATURE_HEADERS,
]
DESCRIPTION = (
    "The flow's trigger URL (GET /api/flows/{id} shows it): the JSON body, headers and query"
    " become the event its run sees. A flow with a signing secret accepts only deliveries signed"
    " as Standard Webhooks sign them; a delivery whose webhook-id was accepted before, or that"
    " repeats an Idempotency-Key, is answered 200 with the first delivery's run. With ?wait= the"
    " answer waits that many seconds for the run to finish and carries its output."
)


def wait_seconds(raw: str | None) -> float | None:
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
    description=DESCRIPTION,
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
    """The declared route (the app answers trigger URLs before routing, with ``answer``)."""
    params = request.path_params
    status, content = await take_delivery(
        request.app.state.latchflow,
        params["flow_id"],
        params["token"],
        HookRequest(request.scope, request.receive),
    )
    return JSONResponse(content, status_code=status)


async def take_delivery(
    state: ServerState, flow_id: str, token: str, request: HookRequest
) -> tuple[int, dict[str, Any]]:
    """Check, store and answer one delivery: (status, JSON body); a refusal raises ``Rejected``."""
    record = _flow_for(state, flow_id, token)
    require_json_content_type(request.header("content-type") or "")
    wait = wait_seconds(request.query.get("wait"))
    body_bytes = await collect_body(
        request.chunks(), request.header("content-length"), state.body_limit
    )
    body = parse_json(body_bytes)
    webhook_id = verify_signature(state, record, request, body_bytes)
    key = state.engine.intake.dedupe_key(record, request.header("idempotency-key"), body)
    now = state.engine.clock.now()
    data = {
        "body": body,
        "headers": {k: v for k, v in request.headers.items() if k not in HIDDEN_HEADERS},
        "query": {k: v for k, v in request.query.items() if k != "wait"},
        "received_at": now.isoformat(),
    }
    # the receipt, event and run are committed together (or not at all) before we answer
    accepted = await state.engine.intake.deliver(Delivery(record, data, now, key, webhook_id))
    result: dict[str, Any] = {
        "run_id": accepted.run_id,
        "status_url": f"{request.base_url}api/runs/{accepted.run_id}",
    }
    if not accepted.created:
        return 200, {**result, "duplicate": True}
    state.dispatcher.notify()
    if wait:
        finished = await _wait_for(state, accepted.run_id, wait)
        if finished is not None:
            result |= {
                "status": finished.status,
                "output": finished.output,
                "error": finished.error,
            }
            return 200, result
    return 202, result


async def _wait_for(state: ServerState, run_id: str, seconds: float) -> RunRecord | None:
    deadline = time.monotonic() + seconds
    while True:
        run = state.engine.store.history.get(run_id)
        assert run is not None  # stored before the caller was answered, never deleted
        if run.status in FINISHED:
            return run
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(0.05)
