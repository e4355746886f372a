"""Management API keys: stored as SHA-256 hashes, never as themselves, each with a scope."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Engine
from sqlmodel import Session, col, select, update

from latchflow.storage.events import new_id
from latchflow.storage.models import ApiKey
from latchflow.storage.secrets import token_hash

PREFIX = "lf_"
USE_RECORDED_EVERY = timedelta(minutes=1)
"""A key's last use is written at most this often (not on every request)."""


class Scope(StrEnum):
    """What a key may do; each includes the ones before it."""

    READ = "read"
    """See flows, runs, events, connections (without secrets), the catalog and nodes."""
    WRITE = "write"
    """Also change them: save and delete flows, start, replay and cancel runs, connections."""
    ADMIN = "admin"
    """Also manage API keys."""

    def allows(self, needed: Scope) -> bool:
        order = list(Scope)
        return order.index(self) >= order.index(needed)


class ApiKeys:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self, name: str, scope: Scope = Scope.ADMIN, expires_at: datetime | None = None
    ) -> tuple[ApiKey, str]:
        """A new key: the record (hash only) and the key itself, which is not stored."""
        key = PREFIX + secrets.token_urlsafe(32)
        record = ApiKey(
            id=new_id()[:12],
            name=name,
            key_hash=token_hash(key),
            scope=scope,
            expires_at=expires_at,
        )
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(record)
            session.commit()
        return record, key

    def find(self, key: str) -> ApiKey | None:
        """The record of a key, if it is one."""
        with Session(self.engine, expire_on_commit=False) as session:
            return session.exec(select(ApiKey).where(ApiKey.key_hash == token_hash(key))).first()

    def used(self, record: ApiKey, now: datetime) -> None:
        """Note that the key was used now (at most once per ``USE_RECORDED_EVERY``)."""
        if record.last_used_at is not None and now - record.last_used_at < USE_RECORDED_EVERY:
            return
        with Session(self.engine) as session:
            session.execute(
                update(ApiKey).where(col(ApiKey.id) == record.id).values(last_used_at=now)
            )
            session.commit()

    def all(self) -> list[ApiKey]:
        """Every key, newest first (their hashes are not secrets, but are not shown either)."""
        with Session(self.engine, expire_on_commit=False) as session:
            return list(session.exec(select(ApiKey).order_by(col(ApiKey.created_at).desc())))

    def revoke(self, key_id: str) -> bool:
        """Delete a key: requests with it are refused from now on. False if there is none."""
        with Session(self.engine) as session:
            record = session.get(ApiKey, key_id)
            if record is None:
                return False
            session.delete(record)
            session.commit()
            return True
