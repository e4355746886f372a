"""What a management API request passes before FastAPI reads anything of it.

FastAPI reads and parses a route's body before it runs the route's dependencies, so a key
checked in a dependency is checked after the body was read. The gate runs first, on the raw
ASGI request: the API key from the ``Authorization`` header (known, not expired, with a scope
that allows the request: ``read`` for GET, ``write`` for changes, ``admin`` for the keys), then
the body, read up to the limit (refused at once when ``Content-Length`` is larger) and checked
as strict JSON (``bodies.parse_json``). FastAPI then gets the body the gate read, and the key's
record in ``request.state.api_key``.
"""

from __future__ import annotations

from datetime import datetime

from starlette.types import Message, Receive, Send
from starlette.types import Scope as ASGIScope

from latchflow.server.bodies import chunks, collect_body, refuse_unsafe_json
from latchflow.server.errors import Rejected
from latchflow.server.responses import render, send_json
from latchflow.server.state import ServerState
from latchflow.storage.api_keys import Scope
from latchflow.storage.models import ApiKey
from latchflow.storage.store import Store

API_PREFIX = "/api/"
ADMIN_PATHS = ("/api/keys", "/api/audit")
STATE_KEY = "api_key"
"""Where the gate leaves the key's record in ``scope["state"]`` (``request.state.api_key``)."""


def guarded(scope: ASGIScope) -> bool:
    """Whether a request is for the management API."""
    if scope["type"] != "http":
        return False
    path: str = scope["path"]
    return path.startswith(API_PREFIX)


def needed_scope(method: str, path: str) -> Scope:
    """The scope a request needs by its method and path (admin for the keys and the audit log;
    a route may ask for more, as revealing credentials does)."""
    if path.startswith(ADMIN_PATHS):
        return Scope.ADMIN
    return Scope.READ if method in ("GET", "HEAD") else Scope.WRITE


def api_key(store: Store, authorization: str | None) -> ApiKey:
    """The record of the request's bearer key, or 401 saying what to send."""
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Rejected(
            401,
            "the management API needs an API key",
            "header authorization",
            "send 'Authorization: Bearer <key>'; `latchflow apikey create` makes one",
        )
    record = store.api_keys.find(key.strip())
    if record is None:
        raise Rejected(
            401,
            "unknown API key",
            "header authorization",
            "create one with `latchflow apikey create`",
        )
    return record


def authorise(record: ApiKey, method: str, path: str, now: datetime) -> None:
    """Refuse an expired key (401) or one whose scope does not allow the request (403)."""
    if record.expires_at is not None and record.expires_at <= now:
        raise Rejected(
            401,
            f"the API key {record.name!r} expired at {record.expires_at.isoformat()}",
            "header authorization",
            "create a new one with `latchflow apikey create --expires ...`",
        )
    needed = needed_scope(method, path)
    require_scope(record, needed, f"{method} {path}")


def require_scope(record: ApiKey, needed: Scope, what: str) -> None:
    """Refuse (403) a key whose scope does not allow ``what``."""
    if not Scope(record.scope).allows(needed):
        raise Rejected(
            403,
            f"the API key {record.name!r} has scope {record.scope}; {what} needs {needed}",
            "header authorization",
            f"use a key with scope {needed} (`latchflow apikey create --scope {needed}`)",
        )


async def admit(
    state: ServerState, scope: ASGIScope, receive: Receive, send: Send
) -> Receive | None:
    """Check the request's key and body; the ``receive`` FastAPI reads the body from, or None
    once a refusal was sent."""
    store, now = state.engine.store, state.engine.clock.now()
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    try:
        record = api_key(store, headers.get("authorization"))
        authorise(record, scope["method"], scope["path"], now)
        store.api_keys.used(record, now)
        scope.setdefault("state", {})[STATE_KEY] = record
        body = await collect_body(chunks(receive), headers.get("content-length"), state.body_limit)
        if body:
            refuse_unsafe_json(body, headers.get("content-type", "application/json"))
    except Rejected as exc:
        # the body may be unread: the connection must not be reused for another request
        await send_json(send, exc.status_code, render(exc.problem()), close=True)
        return None
    return _replay(body, receive)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the body over in one message, then waits for the disconnect."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
