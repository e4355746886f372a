"""The audit record: things done that must stay on record (a credential revealed, a grant
changed, a credential issued or revoked), as a hash chain that shows any entry edited or
removed."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from latchflow.plugin.types import JSON
from latchflow.storage.events import new_id
from latchflow.storage.models import AuditEvent

GENESIS = "0" * 64
"""The previous hash of the first entry."""
CHAIN_LOCK = 0x1A7C4
"""PostgreSQL advisory lock key that serialises appends to the chain."""


def chain_hash(previous: str, entry: dict[str, Any]) -> str:
    """SHA-256 over the previous entry's hash and this entry's fields (canonical JSON)."""
    fields = {k: entry[k] for k in ("id", "seq", "actor", "action", "subject", "detail")}
    fields["at"] = _moment_text(entry["at"])
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{previous}{text}".encode()).hexdigest()


def _moment_text(at: datetime) -> str:
    utc = at.astimezone(UTC) if at.tzinfo else at
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class AuditEntry:
    """An entry to append: who did what to what."""

    actor: str
    action: str
    subject: str
    detail: JSON | None = None


@dataclass(frozen=True)
class ChainBreak:
    """The first entry whose hash does not follow from the entries before it."""

    seq: int
    id: str
    problem: str


class Audit:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self, actor: str, action: str, subject: str, at: datetime, detail: JSON | None = None
    ) -> None:
        """Append an entry to the chain. Appends are serialised: the transaction takes the
        database's write lock (SQLite) or the chain's advisory lock (PostgreSQL) before it
        reads the last entry, so no two writers build on the same one."""
        with Session(self.engine) as session:
            self.lock(session)
            self.append(session, AuditEntry(actor, action, subject, detail), at)
            session.commit()

    def lock(self, session: Session) -> None:
        """Take the chain for this transaction: its first statement, before anything is read."""
        if self.engine.dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK})
        else:  # a first statement that writes takes SQLite's lock, waiting for it
            session.execute(text("UPDATE audit_events SET seq = seq WHERE 1 = 0"))

    def append(self, session: Session, entry: AuditEntry, at: datetime) -> None:
        """Add an entry in a transaction that took the chain with ``lock``."""
        last = session.exec(
            select(AuditEvent).order_by(col(AuditEvent.seq).desc()).limit(1)
        ).first()
        fields: dict[str, Any] = {
            "id": new_id(),
            "seq": 1 if last is None else last.seq + 1,
            "at": at,
            "actor": entry.actor,
            "action": entry.action,
            "subject": entry.subject,
            "detail": entry.detail,
        }
        previous = GENESIS if last is None else last.hash
        session.add(AuditEvent(**fields, hash=chain_hash(previous, fields)))

    def events(
        self, limit: int = 100, subject: str | None = None, prefix: bool = False
    ) -> list[AuditEvent]:
        """The newest first; only about ``subject`` (or subjects starting with it) if given."""
        with Session(self.engine, expire_on_commit=False) as session:
            query = select(AuditEvent).order_by(col(AuditEvent.seq).desc()).limit(limit)
            if subject is not None:
                column = col(AuditEvent.subject)
                query = query.where(column.startswith(subject) if prefix else column == subject)
            return list(session.exec(query))

    def verify(self, batch: int = 1000) -> tuple[int, str, ChainBreak | None]:
        """Walk the chain: how many entries, the last hash, and the first break if any."""
        previous, expected_seq, count = GENESIS, 1, 0
        with Session(self.engine) as session:
            while True:
                rows = session.exec(
                    select(AuditEvent)
                    .where(col(AuditEvent.seq) >= expected_seq)
                    .order_by(col(AuditEvent.seq))
                    .limit(batch)
                ).all()
                if not rows:
                    return count, previous, None
                for row in rows:
                    if row.seq != expected_seq:
                        problem = (
                            f"entries {expected_seq} to {row.seq - 1} are missing: removed from"
                            " the record"
                        )
                        return count, previous, ChainBreak(row.seq, row.id, problem)
                    if chain_hash(previous, row.model_dump()) != row.hash:
                        problem = (
                            "its hash does not match its content and the entry before it: it"
                            " was edited, or an entry before it was"
                        )
                        return count, previous, ChainBreak(row.seq, row.id, problem)
                    previous, expected_seq, count = row.hash, row.seq + 1, count + 1
