"""Management API: API keys (admin scope): list, create (the key is shown once), revoke."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from latchflow.server.errors import Rejected, responses
from latchflow.server.schemas import ApiKeyCreated, ApiKeyIn, ApiKeyOut
from latchflow.server.state import ServerState, server_state
from latchflow.storage.api_keys import Scope
from latchflow.storage.models import ApiKey

router = APIRouter(prefix="/keys", tags=["API keys"])
State = Annotated[ServerState, Depends(server_state)]


def shown(record: ApiKey) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "scope": record.scope,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "last_used_at": record.last_used_at,
    }


@router.get("", response_model=list[ApiKeyOut], summary="API keys (never the keys themselves)")
def list_keys(state: State) -> list[dict[str, Any]]:
    return [shown(record) for record in state.engine.store.api_keys.all()]


@router.post(
    "",
    response_model=ApiKeyCreated,
    status_code=201,
    summary="Create an API key; the key is in this answer only",
)
def create_key(body: ApiKeyIn, state: State) -> dict[str, Any]:
    expires = None
    if body.expires_in_days is not None:
        expires = state.engine.clock.now() + timedelta(days=body.expires_in_days)
    record, key = state.engine.store.api_keys.create(body.name, Scope(body.scope), expires)
    return shown(record) | {"key": key}


@router.delete(
    "/{key_id}", status_code=204, responses=responses(404), summary="Revoke an API key at once"
)
def revoke_key(key_id: str, state: State) -> Response:
    if not state.engine.store.api_keys.revoke(key_id):
        raise Rejected(404, f"no API key {key_id!r}", "path", "GET /api/keys lists them")
    return Response(status_code=204)
