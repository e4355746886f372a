"""SQLite's write lock, awaited on the event loop instead of blocking it.

SQLite lets one connection write at a time. With a ``busy_timeout`` a connection that finds the
lock taken waits inside SQLite's busy handler, which sleeps in the calling thread (1, 2, 5, 10,
15, 20, 25, ... ms): on the event loop's thread every other request waits with it.
``begin_immediate`` asks for the lock with ``BEGIN IMMEDIATE`` on a connection that does not
wait (``connect_for_writes``: ``busy_timeout`` 0) and, while another connection holds it, awaits
a short ``asyncio.sleep`` before asking again. Once it returns, the connection holds the lock
until its ``commit()`` or ``rollback()``, and writes without waiting for anyone.

``BEGIN IMMEDIATE`` is sent with ``exec_driver_sql``, inside the transaction SQLAlchemy begins
for it (pysqlite sends nothing for that begin). The sqlite3 module's legacy transaction handling
(the default up to Python 3.15) sends its own ``BEGIN`` before a write only while SQLite is not
in a transaction, so it adds none; its ``commit()`` and ``rollback()`` end ours. (SQLAlchemy's
recipe of ``isolation_level = None`` with a ``begin`` event that sends ``BEGIN`` changes every
connection of the engine, and an event handler cannot await.)
"""

from __future__ import annotations

import asyncio
import sqlite3
import time

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

WRITE_LOCK_TIMEOUT = 30.0
"""Seconds to wait for the lock: the engine's ``busy_timeout`` for every other connection."""
FIRST_RETRY = 0.001
LONGEST_RETRY = 0.004
RETRY_GROWTH = 1.5
"""Seconds between attempts: 1 ms, then 1.5 times longer each time, at most 4 ms."""


class WriteLockTimeout(Exception):
    """Another connection held SQLite's write lock for longer than the caller would wait (a
    server-side condition, not a ``LatchflowError``: the API must not answer it as a 400)."""


def connect_for_writes(engine: Engine) -> Connection:
    """A connection of its own for ``begin_immediate``: detached from the pool (so no other
    user gets it) with ``busy_timeout`` 0 (so SQLite never waits for the lock in it). The
    caller closes it."""
    connection = engine.connect()
    connection.detach()
    connection.exec_driver_sql("PRAGMA busy_timeout=0")
    connection.commit()
    return connection


async def begin_immediate(connection: Connection, wait_at_most: float = WRITE_LOCK_TIMEOUT) -> None:
    """Begin a write transaction on ``connection`` (from ``connect_for_writes``, not in a
    transaction) once the write lock is free; ``WriteLockTimeout`` after ``wait_at_most``
    seconds."""
    give_up = time.monotonic() + wait_at_most
    delay = FIRST_RETRY
    attempts = 0
    while True:
        attempts += 1
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except OperationalError as exc:
            connection.rollback()
            if not _locked(exc):
                raise
            if time.monotonic() >= give_up:
                raise WriteLockTimeout(
                    f"SQLite database {connection.engine.url.database!r}: another connection"
                    f" held the write lock for more than {wait_at_most:g} s ({attempts} attempts);"
                    " a long write transaction in another process (a run process, a backup, an"
                    " sqlite3 shell) is keeping it; end that transaction, then retry"
                ) from exc
        await asyncio.sleep(delay)
        delay = min(delay * RETRY_GROWTH, LONGEST_RETRY)


def _locked(exc: OperationalError) -> bool:
    """Whether SQLite refused because another connection holds the lock (SQLITE_BUSY)."""
    error = exc.orig
    return isinstance(error, sqlite3.Error) and error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
