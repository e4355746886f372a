"""What a management API request passes before FastAPI reads anything of it.

FastAPI reads and parses a route's body before it runs the route's dependencies, so a key
checked in a dependency is checked after the body was read. The gate runs first, on the raw
ASGI request: the API key from the ``Authorization`` header, then the body, read up to the
limit (refused at once when ``Content-Length`` is larger) and checked as strict JSON
(``bodies.parse_json``). FastAPI then gets the body the gate read, and the key's record in
``request.state.api_key``.
"""

from __future__ import annotations

from starlette.types import Message, Receive, Scope, Send

from latchflow.server.bodies import chunks, collect_body, refuse_unsafe_json
from latchflow.server.errors import Rejected
from latchflow.server.responses import render, send_json
from latchflow.storage.models import ApiKey
from latchflow.storage.store import Store

API_PREFIX = "/api/"
STATE_KEY = "api_key"
"""Where the gate leaves the key's record in ``scope["state"]`` (``request.state.api_key``)."""


def guarded(scope: Scope) -> bool:
    """Whether a request is for the management API."""
    path: str = scope["path"]
    return scope["type"] == "http" and path.startswith(API_PREFIX)


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


async def admit(
    store: Store, body_limit: int, scope: Scope, receive: Receive, send: Send
) -> Receive | None:
    """Check the request's key and body; the ``receive`` FastAPI reads the body from, or None
    once a refusal was sent."""
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    try:
        scope.setdefault("state", {})[STATE_KEY] = api_key(store, headers.get("authorization"))
        body = await collect_body(chunks(receive), headers.get("content-length"), body_limit)
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
