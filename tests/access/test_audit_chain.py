"""The audit log's hash chain: appended to by many writers at once without a gap or a fork,
and the entries recorded before it was a chain (migration 0008) chained in order."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from latchflow.storage.audit import Audit
from latchflow.storage.database import MIGRATIONS, make_engine, migrate

from ..server.pg import fresh_database

WRITERS, EACH = 4, 25


def append_concurrently(engine: Engine) -> None:
    audit = Audit(engine)

    def write(writer: int) -> None:
        for i in range(EACH):
            audit.record(f"writer {writer}", "test.appended", f"entry {i}", datetime.now(UTC))

    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(write, range(WRITERS)))
    entries, _head, broken = audit.verify()
    assert (entries, broken) == (WRITERS * EACH, None)


def test_concurrent_appends_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    migrate(engine)
    append_concurrently(engine)


def test_concurrent_appends_on_postgresql() -> None:
    with fresh_database() as url:
        engine = make_engine(url)
        migrate(engine)
        try:
            append_concurrently(engine)
        finally:
            engine.dispose()


def test_entries_from_before_the_chain_are_chained_in_order(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0007")
        for i in (2, 1, 3):
            connection.execute(
                text(
                    "INSERT INTO audit_events (id, at, actor, action, subject, detail)"
                    " VALUES (:id, :at, 'api key 1', 'reveal', :subject, NULL)"
                ),
                {"id": f"e{i}", "at": f"2026-01-0{i} 10:00:00", "subject": f"run {i}"},
            )
    migrate(engine)
    audit = Audit(engine)
    assert audit.verify()[0::2] == (3, None)
    assert [e.subject for e in audit.events()] == ["run 3", "run 2", "run 1"]
    audit.record("test", "after", "the migration", datetime.now(UTC))
    assert audit.verify()[0::2] == (4, None)


@pytest.mark.parametrize(
    "edit",
    [
        "UPDATE audit_events SET actor = 'someone else' WHERE seq = 2",
        "DELETE FROM audit_events WHERE seq = 2",
    ],
)
def test_an_edited_or_removed_entry_is_named(tmp_path: Path, edit: str) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    migrate(engine)
    audit = Audit(engine)
    for i in range(3):
        audit.record("test", "appended", f"entry {i}", datetime.now(UTC))
    with engine.begin() as connection:
        connection.execute(text(edit))
    entries, _head, broken = audit.verify()
    assert entries == 1 and broken is not None
    assert broken.seq == (2 if "UPDATE" in edit else 3)
    assert ("edited" if "UPDATE" in edit else "missing") in broken.problem
