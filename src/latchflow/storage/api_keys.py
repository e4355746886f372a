"""Management API keys: stored as SHA-256 hashes, never as themselves."""

from __future__ import annotations

import secrets

from sqlalchemy import Engine
from sqlmodel import Session, select

from latchflow.storage.events import new_id
from latchflow.storage.models import ApiKey
from latchflow.storage.secrets import token_hash

PREFIX = "lf_"


class ApiKeys:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, name: str) -> tuple[ApiKey, str]:
        """A new key: the record (hash only) and the key itself, which is not stored."""
        key = PREFIX + secrets.token_urlsafe(32)
        record = ApiKey(id=new_id()[:12], name=name, key_hash=token_hash(key))
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(record)
            session.commit()
        return record, key

    def find(self, key: str) -> ApiKey | None:
        """The record of a key, if it is one."""
        with Session(self.engine) as session:
            return session.exec(select(ApiKey).where(ApiKey.key_hash == token_hash(key))).first()
