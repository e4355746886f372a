"""Where schedules and polls left off: each timed flow's cursor row, and the flows to time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Row, and_, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from latchflow.plugin.types import JSON
from latchflow.storage.models import FlowRecord, FlowVersion, PollCursor

BATCH = 500
"""Rows read or written at a time."""

TimedFlow = Row[str, str, JSON, str | None, Any, datetime | None]
"""(flow id, trigger type, current document, cursor row's flow id or None, cursor, last polled)."""


class Cursors:
    """The ``poll_cursors`` table: ``{"last_tick": ...}`` for schedules, ``{"poll": ...}`` for polls."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def timed_flows(self, pollable: list[str]) -> Iterator[TimedFlow]:
        """Every enabled flow on a schedule or on one of the ``pollable`` triggers, with its
        cursor, in one streamed query."""
        query = (
            select(
                col(FlowRecord.id),
                col(FlowRecord.trigger_type),
                col(FlowVersion.document),
                col(PollCursor.flow_id),
                col(PollCursor.cursor),
                col(PollCursor.polled_at),
            )
            .join(
                FlowVersion,
                and_(
                    col(FlowVersion.flow_id) == col(FlowRecord.id),
                    col(FlowVersion.version) == col(FlowRecord.version),
                ),
            )
            .outerjoin(PollCursor, col(PollCursor.flow_id) == col(FlowRecord.id))
            .where(
                col(FlowRecord.enabled),
                or_(
                    col(FlowRecord.trigger_type) == "schedule",
                    col(FlowRecord.trigger_type).in_(pollable),
                ),
            )
        )
        with Session(self.engine) as session:
            yield from session.execute(query).yield_per(BATCH)

    def get(self, flow_id: str) -> PollCursor | None:
        """The flow's cursor row (None before its first fire or poll)."""
        with Session(self.engine, expire_on_commit=False) as session:
            return session.get(PollCursor, flow_id)

    def start(self, flow_ids: list[str], cursor: JSON, now: datetime) -> bool:
        """Give flows without a cursor row ``cursor``, in one commit; False (and nothing
        written) if another writer started one of them meanwhile."""
        with self.engine.connect() as connection:
            try:
                for start in range(0, len(flow_ids), BATCH):  # batches keep the peak memory low
                    rows = [
                        {"flow_id": f, "cursor": cursor, "polled_at": now}
                        for f in flow_ids[start : start + BATCH]
                    ]
                    connection.execute(insert(PollCursor), rows)
                connection.commit()
                return True
            except IntegrityError:
                connection.rollback()
                return False
