"""The ``connection_holds`` table: connections every process holds back (rate limit, outage)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select, update

from latchflow.storage.models import ConnectionHold


class Holds:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def all(self) -> list[ConnectionHold]:
        with Session(self.engine, expire_on_commit=False) as session:
            return list(session.exec(select(ConnectionHold)))

    def put(self, hold: ConnectionHold) -> ConnectionHold:
        """Store a hold; one that another process stored meanwhile and that lasts longer wins."""
        try:
            return self._put(hold)
        except IntegrityError:  # another process stored the connection's first hold just now
            return self._put(hold)

    def _put(self, hold: ConnectionHold) -> ConnectionHold:
        with Session(self.engine, expire_on_commit=False) as session:
            stored = session.get(ConnectionHold, hold.connection_id, with_for_update=True)
            if stored is not None and stored.kind == hold.kind and stored.until >= hold.until:
                return stored
            session.merge(hold)
            session.commit()
            return hold

    def claim_probe(
        self, connection_id: str, until: datetime, now: datetime, probe_until: datetime
    ) -> bool:
        """Whether this call may probe the vendor after the hold that ended at ``until`` (no
        other call is probing): only one call in every process gets True."""
        with Session(self.engine) as session:
            result = session.execute(
                update(ConnectionHold)
                .where(
                    col(ConnectionHold.connection_id) == connection_id,
                    col(ConnectionHold.until) == until,
                    col(ConnectionHold.probe_until).is_(None)
                    | (col(ConnectionHold.probe_until) < now),
                )
                .values(probe_until=probe_until)
            )
            session.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def remove(self, connection_id: str, kind: str) -> None:
        with Session(self.engine) as session:
            session.execute(
                delete(ConnectionHold).where(
                    col(ConnectionHold.connection_id) == connection_id,
                    col(ConnectionHold.kind) == kind,
                )
            )
            session.commit()
