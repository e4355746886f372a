"""Management API keys, sent as Bearer tokens (``latchflow apikey create`` makes one)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from latchflow.server.errors import Rejected
from latchflow.server.state import ServerState, server_state
from latchflow.storage.models import ApiKey
from latchflow.storage.store import Store


def create_api_key(store: Store, name: str) -> tuple[ApiKey, str]:
    """A new key: the record (hash only) and the key itself, which is not stored."""
    return store.api_keys.create(name)


def require_api_key(
    state: Annotated[ServerState, Depends(server_state)],
    authorization: Annotated[str | None, Header()] = None,
) -> ApiKey:
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Rejected(
            401,
            "the management API needs an API key",
            "header authorization",
            "send 'Authorization: Bearer <key>'; `latchflow apikey create` makes one",
        )
    record = state.engine.store.api_keys.find(key.strip())
    if record is None:
        raise Rejected(
            401,
            "unknown API key",
            "header authorization",
            "create one with `latchflow apikey create`",
        )
    return record
