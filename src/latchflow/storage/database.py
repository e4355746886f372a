"""The database connection: settings, the SQLAlchemy engine set up for its dialect, migrations.

SQLite and PostgreSQL differ in how their connections are set up (WAL and busy timeout), in
who may write at once (``single_writer``: SQLite has one write lock for the whole database) and
in how nodes that start together migrate (PostgreSQL's advisory lock). This module is where
storage tells them apart; which backend runs the work is decided in ``backends.choose``.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event, make_url, text
from sqlmodel import create_engine

DATA_DIR_ENV = "LATCHFLOW_DATA_DIR"
DATABASE_URL_ENV = "LATCHFLOW_DATABASE_URL"
MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 0x6C66_6D69  # PostgreSQL advisory lock key held while migrating


@dataclass(frozen=True)
class Settings:
    """Where latchflow keeps its data."""

    data_dir: Path
    database_url: str

    @classmethod
    def from_environment(
        cls, data_dir: str | Path | None = None, database_url: str | None = None
    ) -> Settings:
        directory = Path(data_dir or os.environ.get(DATA_DIR_ENV) or ".latchflow")
        url = (
            database_url
            or os.environ.get(DATABASE_URL_ENV)
            or f"sqlite:///{directory / 'latchflow.db'}"
        )
        return cls(data_dir=directory, database_url=url)


def private_directory(path: Path) -> None:
    """Make ``path`` (and missing parents) readable by its owner only: it holds runs, events,
    sealed secrets and the key to them."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def private_file(path: Path) -> None:
    """Create ``path`` readable and writable by its owner only, or make it so. SQLite gives
    the WAL and shared-memory files it adds the database file's permissions."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    path.chmod(0o600)
    for extra in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        if extra.exists():
            extra.chmod(0o600)


def make_engine(url: str) -> Engine:
    """An engine; a SQLite file is private to its owner (with its directory) and gets WAL, a
    busy timeout and normal sync (durable on commit in WAL)."""
    if url.startswith("sqlite"):
        database = sqlite_file(url)
        if database is not None:
            private_directory(Path(database).parent)
            private_file(Path(database))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # nodes starting together migrate in turn
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def sqlite_file(url: str) -> str | None:
    """The database file of a SQLite URL; None for other databases and in-memory ones."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return parsed.database


def single_writer(engine: Engine) -> bool:
    """Whether one connection at a time may write (SQLite): writers then take turns on the
    write lock (``write_lock``) instead of each writing on a pooled connection."""
    return engine.dialect.name == "sqlite"


class QuickReader:
    """A DBAPI connection of its own for reads on hot paths (a flow's switches, a connection's
    version), in autocommit so every read sees the latest commit. It is detached from the pool,
    closed when the engine is disposed, and opened again when a read fails on it (a restarted
    database server)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.qmark = engine.dialect.paramstyle == "qmark"
        self._lock = threading.Lock()
        self._connection: Any = None
        event.listen(engine, "engine_disposed", self._disposed)

    def row(self, sql: str, key: str) -> tuple[Any, ...] | None:
        """The first row of ``sql`` (one ``?`` parameter, given ``key``), or None."""
        if not self.qmark:
            sql = sql.replace("?", "%s")
        errors: type[Exception] = self.engine.dialect.loaded_dbapi.Error
        with self._lock:
            try:
                return self._fetch(sql, key)
            except errors:
                self._close()
            return self._fetch(sql, key)

    def _fetch(self, sql: str, key: str) -> tuple[Any, ...] | None:
        if self._connection is None:
            pooled = self.engine.raw_connection()
            pooled.detach()  # ours alone; the pool opens another in its place
            connection = pooled.dbapi_connection
            assert connection is not None  # a checked-out connection has its DBAPI connection
            self.engine.dialect.set_isolation_level(connection, "AUTOCOMMIT")
            self._connection = connection
        cursor = self._connection.cursor()
        try:
            cursor.execute(sql, (key,))
            rows = cursor.fetchall()
        finally:
            cursor.close()
        return tuple(rows[0]) if rows else None

    def _disposed(self, _engine: Engine) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.close()
