"""Management API keys: shown once at creation, stored as SHA-256 hashes, sent as Bearer tokens."""

from __future__ import annotations

import hashlib
import secrets
from typing import Annotated

from fastapi import Depends, Header
from sqlmodel import select

from latchflow.intake.events import new_id
from latchflow.server.errors import Rejected
from latchflow.server.state import ServerState, server_state
from latchflow.storage.models import ApiKey
from latchflow.storage.store import Store

PREFIX = "lf_"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(store: Store, name: str) -> tuple[ApiKey, str]:
    """A new key: the record (hash only) and the key itself, which is not stored."""
    key = PREFIX + secrets.token_urlsafe(32)
    record = ApiKey(id=new_id()[:12], name=name, key_hash=key_hash(key))
    with store.session() as session:
        session.add(record)
        session.commit()
    return record, key


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
    with state.engine.store.session() as session:
        record = session.exec(
            select(ApiKey).where(ApiKey.key_hash == key_hash(key.strip()))
        ).first()
    if record is None:
        raise Rejected(
            401,
            "unknown API key",
            "header authorization",
            "create one with `latchflow apikey create`",
        )
    return record
