"""The ``nodes`` table: each ``latchflow serve`` process and its latest heartbeat."""

from __future__ import annotations

import socket
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, delete, select

from latchflow.storage.models import NodeRecord


class Nodes:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def register(self, node_id: str, backend: str, now: datetime, forget_before: datetime) -> None:
        """Add this node's row, and forget nodes silent since ``forget_before``."""
        with Session(self.engine) as session:
            session.execute(
                delete(NodeRecord).where(col(NodeRecord.last_heartbeat) < forget_before)
            )
            session.add(_row(node_id, backend, now))
            session.commit()

    def beat(self, node_id: str, backend: str, now: datetime, jobs_in_flight: int) -> None:
        """Record that the node is alive (registering it again if it was forgotten)."""
        with Session(self.engine) as session:
            record = session.get(NodeRecord, node_id) or _row(node_id, backend, now)
            record.last_heartbeat = now
            record.jobs_in_flight = jobs_in_flight
            session.add(record)
            session.commit()

    def remove(self, node_id: str) -> None:
        with Session(self.engine) as session:
            session.execute(delete(NodeRecord).where(col(NodeRecord.id) == node_id))
            session.commit()

    def all(self) -> list[NodeRecord]:
        """Every node's row, most recently started first."""
        with Session(self.engine, expire_on_commit=False) as session:
            return list(
                session.exec(select(NodeRecord).order_by(col(NodeRecord.started_at).desc()))
            )


def _row(node_id: str, backend: str, now: datetime) -> NodeRecord:
    return NodeRecord(
        id=node_id, host=socket.gethostname(), backend=backend, started_at=now, last_heartbeat=now
    )
