"""SQLite's write lock is awaited on the event loop, and a lock kept too long fails clearly."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from latchflow.storage.database import make_engine
from latchflow.storage.write_lock import WriteLockTimeout, begin_immediate, connect_for_writes


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'locked.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE notes (text TEXT)")
    yield engine
    engine.dispose()


def hold_write_lock(engine: Engine) -> sqlite3.Connection:
    """Another connection (as another process would) in a write transaction."""
    holder = sqlite3.connect(str(engine.url.database), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


async def test_the_lock_is_awaited_while_the_loop_goes_on(database: Engine) -> None:
    holder = hold_write_lock(database)

    async def release_from_the_loop() -> None:
        """Runs only if waiting for the lock leaves the loop free."""
        await asyncio.sleep(0.05)
        holder.execute("ROLLBACK")

    connection = connect_for_writes(database)
    try:
        releaser = asyncio.create_task(release_from_the_loop())
        await begin_immediate(connection, wait_at_most=10)
        assert releaser.done()
        connection.exec_driver_sql("INSERT INTO notes VALUES ('written')")
        connection.commit()
    finally:
        connection.close()
        holder.close()
    with database.connect() as reader:
        assert reader.exec_driver_sql("SELECT text FROM notes").scalars().all() == ["written"]


async def test_a_lock_held_past_the_deadline_fails_with_a_clear_error(database: Engine) -> None:
    holder = hold_write_lock(database)
    connection = connect_for_writes(database)
    try:
        with pytest.raises(WriteLockTimeout) as failure:
            await begin_immediate(connection, wait_at_most=0.02)
        holder.execute("ROLLBACK")
        await begin_immediate(connection, wait_at_most=0)  # the connection is still usable
        connection.rollback()
    finally:
        connection.close()
        holder.close()
    message = str(failure.value)
    assert "locked.db" in message and "held the write lock for more than 0.02 s" in message


def test_its_connection_leaves_the_pool_waiting_as_before(database: Engine) -> None:
    connection = connect_for_writes(database)
    writer_timeout = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
    connection.close()
    with database.connect() as pooled:
        pooled_timeout = pooled.exec_driver_sql("PRAGMA busy_timeout").scalar()
    assert (writer_timeout, pooled_timeout) == (0, 30000)
