"""The database: engine set-up, migrations, and the records of flows and connections."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, create_engine, select

from latchflow.flows.document import Flow
from latchflow.plugin.clock import Clock
from latchflow.plugin.errors import ConfigurationError, ValidationError
from latchflow.plugin.types import JSON, Vendor
from latchflow.storage.models import ConnectionRecord, FlowRecord, FlowVersion, utcnow
from latchflow.storage.runqueue import SESSION_KEY, RunQueue, for_database
from latchflow.storage.secrets import Sealer, secret_fields

DATA_DIR_ENV = "LATCHFLOW_DATA_DIR"
DATABASE_URL_ENV = "LATCHFLOW_DATABASE_URL"
MIGRATIONS = Path(__file__).parent / "migrations"
SWITCHES = (
    "id",
    "version",
    "name",
    "trigger_type",
    "trigger_connection",
    "enabled",
    "hook_token",
    "signing_secret",
)
"""The columns of a flow's record that decide what its trigger URL accepts."""
SWITCHES_SQL = (
    "SELECT id, version, name, trigger_type, trigger_connection, enabled, hook_token,"
    " signing_secret FROM flows WHERE id = ?"
)
CONNECTION_VERSION_SQL = "SELECT updated_at FROM connections WHERE id = ?"
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


def make_engine(url: str) -> Engine:
    """An engine; SQLite gets WAL, a busy timeout and normal sync (durable on commit in WAL)."""
    if url.startswith("sqlite"):
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


class Store:
    """Flows and connections; runs and events are written by the executor and intake."""

    def __init__(
        self, settings: Settings, queue: RunQueue | None = None, clock: Clock | None = None
    ) -> None:
        self.settings = settings
        self.queue: RunQueue = queue or for_database(settings.database_url, clock)
        if settings.database_url.startswith("sqlite"):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(settings.database_url)
        self.sealer = Sealer.from_environment(settings.data_dir)
        migrate(self.engine)
        self._reader = QuickReader(self.engine)
        self._switch_records: dict[str, tuple[tuple[Any, ...], FlowRecord]] = {}

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(
            self.engine, expire_on_commit=False, info={SESSION_KEY: self.queue}
        ) as session:
            yield session

    # flows

    def save_flow(self, flow: Flow) -> FlowRecord:
        """Store a validated flow; a changed document must carry a higher version.

        Nodes starting together with the same ``--flows`` may save the same flow at once: the
        one whose commit loses sees the winner's record on its second attempt.
        """
        try:
            return self._save_flow(flow)
        except IntegrityError:
            return self._save_flow(flow)

    def _save_flow(self, flow: Flow) -> FlowRecord:
        with self.session() as session:
            record = session.get(FlowRecord, flow.id)
            if record is not None:
                current = session.get(FlowVersion, (flow.id, record.version))
                if current is not None and current.document == flow.document:
                    return record
                if flow.version <= record.version:
                    raise ValidationError.at(
                        "$.version",
                        f"flow {flow.id!r} is already at version {record.version}; raise the version"
                        " to save a changed document",
                    )
            else:
                record = FlowRecord(
                    id=flow.id,
                    version=flow.version,
                    name=flow.name,
                    trigger_type=flow.trigger_type,
                    hook_token=secrets.token_urlsafe(24),
                )
            record.version = flow.version
            record.name = flow.name
            record.trigger_type = flow.trigger_type
            record.trigger_connection = flow.trigger_connection
            record.enabled = bool(flow.document.get("enabled", True))
            record.updated_at = utcnow()
            if _new_version(session, flow):
                session.add(
                    FlowVersion(flow_id=flow.id, version=flow.version, document=flow.document)
                )
            session.add(record)
            session.commit()
            return record

    def get_flow(self, flow_id: str) -> FlowRecord | None:
        with self.session() as session:
            return session.get(FlowRecord, flow_id)

    def flow_switches(self, flow_id: str) -> FlowRecord | None:
        """The flow's record without its timestamps: the trigger URL's hot path. Every call
        reads the database (on its own connection: ~7 µs on SQLite, where a pooled one takes
        ~30 µs and a Session's ``get`` ~500 µs), so a change by any process counts at once;
        only the Python object is reused while the row read is the same (building it takes
        longer than the read). The record is shared: read it, do not change or save it."""
        row = self._reader.row(SWITCHES_SQL, flow_id)
        if row is None:
            self._switch_records.pop(flow_id, None)
            return None
        known = self._switch_records.get(flow_id)
        if known is not None and known[0] == row:
            return known[1]
        values = dict(zip(SWITCHES, row, strict=True))
        values["enabled"] = bool(values["enabled"])
        record = FlowRecord.model_construct(**values, created_at=None, updated_at=None)
        self._switch_records[flow_id] = (row, record)
        return record

    def flow_version(self, flow_id: str, version: int) -> Flow:
        with self.session() as session:
            record = session.get(FlowVersion, (flow_id, version))
            if record is None:
                raise ConfigurationError(f"flow {flow_id!r} has no version {version}")
            return Flow.parse(record.document)

    def list_flows(self) -> list[FlowRecord]:
        with self.session() as session:
            return list(session.exec(select(FlowRecord).order_by(FlowRecord.id)))

    # connections

    def save_connection(
        self, connection_id: str, vendor: Vendor, name: str, config: JSON
    ) -> ConnectionRecord:
        """Store a connection; ``writeOnly`` fields of the vendor's schema are encrypted."""
        hidden = secret_fields(vendor.connection_schema)
        with self.session() as session:
            record = session.get(ConnectionRecord, connection_id)
            old_secrets = self.sealer.unseal(record.secrets) if record else {}
            plain = {k: v for k, v in config.items() if k not in hidden}
            sealed = {**old_secrets, **{k: v for k, v in config.items() if k in hidden}}
            if record is None:
                record = ConnectionRecord(
                    id=connection_id, vendor=vendor.key, name=name, config=plain, secrets=""
                )
            elif record.vendor != vendor.key:
                raise ValidationError.at(
                    "$.vendor", f"connection {connection_id!r} belongs to vendor {record.vendor!r}"
                )
            record.name, record.config = name, plain
            record.secrets = self.sealer.seal(sealed)
            record.updated_at = utcnow()
            session.add(record)
            session.commit()
            return record

    def connection_version(self, connection_id: str) -> Any:
        """The connection's ``updated_at`` as the database returns it (None if there is no such
        connection): one quick read, no decryption, for caches to check they are current."""
        row = self._reader.row(CONNECTION_VERSION_SQL, connection_id)
        return row[0] if row else None

    def connection_config(self, connection_id: str) -> tuple[ConnectionRecord, JSON]:
        """The record and its full config, secrets decrypted."""
        with self.session() as session:
            record = session.get(ConnectionRecord, connection_id)
        if record is None:
            raise ConfigurationError(
                f"connection {connection_id!r} does not exist; create it with"
                " `latchflow connections add` or POST /api/connections"
            )
        return record, {**record.config, **self.sealer.unseal(record.secrets)}

    def list_connections(self, vendor: str | None = None) -> list[ConnectionRecord]:
        with self.session() as session:
            query = select(ConnectionRecord).order_by(ConnectionRecord.id)
            if vendor is not None:
                query = query.where(ConnectionRecord.vendor == vendor)
            return list(session.exec(query))

    def delete_connection(self, connection_id: str) -> bool:
        with self.session() as session:
            record = session.get(ConnectionRecord, connection_id)
            if record is None:
                return False
            session.delete(record)
            session.commit()
            return True

    def rotate_secrets(self) -> int:
        """Re-encrypt every connection's secrets with the newest key; returns how many."""
        with self.session() as session:
            records = list(session.exec(select(ConnectionRecord)))
            for record in records:
                record.secrets = self.sealer.rotate(record.secrets)
                session.add(record)
            session.commit()
            return len(records)


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


def _new_version(session: Session, flow: Flow) -> bool:
    """Whether the flow's version is new. A deleted flow's versions are kept (runs and caches
    refer to them by number), so a number may be used again only for the same document."""
    kept = session.exec(
        select(FlowVersion)
        .where(FlowVersion.flow_id == flow.id, FlowVersion.version >= flow.version)
        .order_by(col(FlowVersion.version).desc())
    ).all()
    same = next((v for v in kept if v.version == flow.version), None)
    if same is not None and same.document != flow.document:
        raise ValidationError.at(
            "$.version",
            f"flow {flow.id!r} already had version {flow.version} with another document (it was"
            f" deleted at version {kept[0].version}); save it as version {kept[0].version + 1}"
            " or higher",
        )
    return same is None
