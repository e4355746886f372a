"""Management API keys, sent as Bearer tokens (``latchflow apikey create`` makes one).

The key is checked by the gate (``gate.admit``) before anything of the request is read;
``require_api_key`` hands the gate's record to the routes and documents the scheme in OpenAPI.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from latchflow.server.gate import STATE_KEY, api_key, authorise
from latchflow.server.state import ServerState, server_state
from latchflow.storage.models import ApiKey

BEARER = HTTPBearer(
    scheme_name="API key",
    description="A management API key: `latchflow apikey create` prints one.",
    auto_error=False,
)


def require_api_key(
    request: Request,
    state: Annotated[ServerState, Depends(server_state)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> ApiKey:
    """The request's key, as the gate found it (or checked here for a route the gate does not
    cover)."""
    record: ApiKey | None = getattr(request.state, STATE_KEY, None)
    if record is None:
        header = f"Bearer {credentials.credentials}" if credentials else None
        record = api_key(state.engine.store, header)
        authorise(record, request.method, request.url.path, state.engine.clock.now())
    return record
