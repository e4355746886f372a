"""The audit record: things done that must stay on record, such as revealing a credential."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from latchflow.plugin.types import JSON
from latchflow.storage.events import new_id
from latchflow.storage.models import AuditEvent


class Audit:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self, actor: str, action: str, subject: str, at: datetime, detail: JSON | None = None
    ) -> None:
        with Session(self.engine) as session:
            session.add(
                AuditEvent(
                    id=new_id(), at=at, actor=actor, action=action, subject=subject, detail=detail
                )
            )
            session.commit()

    def events(self, limit: int = 100) -> list[AuditEvent]:
        """The newest first."""
        with Session(self.engine, expire_on_commit=False) as session:
            query = select(AuditEvent).order_by(col(AuditEvent.at).desc()).limit(limit)
            return list(session.exec(query))
