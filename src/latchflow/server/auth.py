"""Management API keys, sent as Bearer tokens (``latchflow apikey create`` makes one).

The key is checked by the gate (``gate.admit``) before anything of the request is read;
``require_api_key`` hands the gate's record to the routes and documents the scheme in OpenAPI.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from latchflow.server.gate import STATE_KEY, api_key
from latchflow.server.state import ServerState, server_state
from latchflow.storage.models import ApiKey
from latchflow.storage.store import Store

BEARER = HTTPBearer(
    scheme_name="API key",
    description="A management API key: `latchflow apikey create` prints one.",
    auto_error=False,
)


def create_api_key(store: Store, name: str) -> tuple[ApiKey, str]:
    """A new key: the record (hash only) and the key itself, which is not stored."""
    return store.api_keys.create(name)


def require_api_key(
    request: Request,
    state: Annotated[ServerState, Depends(server_state)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> ApiKey:
    """The request's key, as the gate found it (or checked here for a route the gate does not
    cover)."""
    record: ApiKey | None = getattr(request.state, STATE_KEY, None)
    if record is not None:
        return record
    header = f"Bearer {credentials.credentials}" if credentials else None
    return api_key(state.engine.store, header)
