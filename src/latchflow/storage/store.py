"""The store: the database's records, one object per kind, and flows and connections.

Everything latchflow keeps goes through here; no other package issues SQL. ``Store`` holds the
engine and the keys, reads and writes flows and connections itself, and hands out the other
records:

- ``events``: events in and the runs they start (``EventWriter``);
- ``journal``: runs as the executor and the dispatchers take them (claims, checkpoints);
- ``history``: runs and events for people (listings, detail, replay, cancel);
- ``cursors``: where schedules and polls left off;
- ``nodes`` and ``api_keys``.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from latchflow.flows.document import Flow
from latchflow.plugin.errors import ConfigurationError, ValidationError
from latchflow.plugin.types import JSON, Vendor
from latchflow.storage.api_keys import ApiKeys
from latchflow.storage.cursors import Cursors
from latchflow.storage.database import QuickReader, Settings, make_engine, migrate
from latchflow.storage.events import EventWriter
from latchflow.storage.journal import Journal
from latchflow.storage.models import (
    ConnectionRecord,
    FlowRecord,
    FlowVersion,
    PollCursor,
    utcnow,
)
from latchflow.storage.nodes import Nodes
from latchflow.storage.runqueue import RunQueue
from latchflow.storage.runs import RunHistory, cancel_flow_runs
from latchflow.storage.secrets import Sealer, secret_fields, token_hash

SWITCHES = (
    "id",
    "version",
    "name",
    "trigger_type",
    "trigger_connection",
    "enabled",
    "hook_token",
    "signing_secret",
    "previous_signing_secret",
    "previous_secret_until",
)
"""The columns of a flow's record that decide what its trigger URL accepts."""
SWITCHES_SQL = (
    "SELECT id, version, name, trigger_type, trigger_connection, enabled, hook_token,"
    " signing_secret, previous_signing_secret, previous_secret_until FROM flows WHERE id = ?"
)
CONNECTION_VERSION_SQL = "SELECT updated_at FROM connections WHERE id = ?"


class Store:
    """The database of one latchflow installation; ``queue`` is its backend's run queue."""

    def __init__(self, settings: Settings, queue: RunQueue) -> None:
        self.settings = settings
        self.queue = queue
        self.engine = make_engine(settings.database_url)
        self.sealer = Sealer.from_environment(settings.data_dir)
        migrate(self.engine)
        self.events = EventWriter(self.engine, self.queue)
        self.journal = Journal(self.engine, self.queue)
        self.history = RunHistory(self.engine, self.queue)
        self.cursors = Cursors(self.engine)
        self.nodes = Nodes(self.engine)
        self.api_keys = ApiKeys(self.engine)
        self._reader = QuickReader(self.engine)
        self._switch_records: dict[str, tuple[tuple[Any, ...], FlowRecord]] = {}
        self._versions: dict[tuple[str, int], Flow] = {}

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
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
        reads the database (on a connection of its own, much cheaper than a pooled one or a
        Session's ``get``), so a change by any process counts at once; only the Python object
        is reused while the row read is the same (building it takes longer than the read). The
        record is shared: read it, do not change or save it."""
        row = self._reader.row(SWITCHES_SQL, flow_id)
        if row is None:
            self._switch_records.pop(flow_id, None)
            return None
        known = self._switch_records.get(flow_id)
        if known is not None and known[0] == row:
            return known[1]
        values = dict(zip(SWITCHES, row, strict=True))
        values["enabled"] = bool(values["enabled"])
        values["previous_secret_until"] = _moment(values["previous_secret_until"])
        record = FlowRecord.model_construct(**values, created_at=None, updated_at=None)
        self._switch_records[flow_id] = (row, record)
        return record

    def flow_version(self, flow_id: str, version: int) -> Flow:
        """A saved version of a flow, parsed; kept in memory, as a version never changes."""
        key = (flow_id, version)
        flow = self._versions.get(key)
        if flow is None:
            with self.session() as session:
                record = session.get(FlowVersion, key)
            if record is None:
                raise ConfigurationError(f"flow {flow_id!r} has no version {version}")
            flow = self._versions[key] = Flow.parse(record.document)
        return flow

    def list_flows(self) -> list[FlowRecord]:
        with self.session() as session:
            return list(session.exec(select(FlowRecord).order_by(FlowRecord.id)))

    def update_flow(self, flow_id: str, **values: Any) -> FlowRecord | None:
        """Change switches of a flow's record (enabled, hook_token, signing_secret); None if
        there is no such flow."""
        with self.session() as session:
            record = session.get(FlowRecord, flow_id)
            if record is None:
                return None
            for name, value in values.items():
                setattr(record, name, value)
            record.updated_at = utcnow()
            session.add(record)
            session.commit()
            return record

    def delete_flow(self, flow_id: str, now: datetime) -> None:
        """Delete a flow and its cursor and cancel its unfinished runs, in one commit. Its
        versions stay: runs and caches refer to them by number."""
        with self.session() as session:
            cancel_flow_runs(session, flow_id, now, "flow deleted")
            for table, column in ((PollCursor, PollCursor.flow_id), (FlowRecord, FlowRecord.id)):
                session.execute(delete(table).where(col(column) == flow_id))
            session.commit()

    def flow_versions(self, flow_id: str) -> list[FlowVersion]:
        """Every saved version of a flow, newest first."""
        with self.session() as session:
            return list(
                session.exec(
                    select(FlowVersion)
                    .where(FlowVersion.flow_id == flow_id)
                    .order_by(col(FlowVersion.version).desc())
                )
            )

    # connections

    def save_connection(
        self,
        connection_id: str,
        vendor: Vendor,
        name: str,
        config: JSON,
        webhook_token: str | None = None,
        webhook_sources: list[str] | None = None,
    ) -> ConnectionRecord:
        """Store a connection; ``writeOnly`` fields of the vendor's schema are encrypted. A
        given ``webhook_token`` replaces the one in its vendor webhook URL (only its hash is
        kept); given ``webhook_sources`` (CIDR; an empty list: any) replace the networks its
        webhooks may come from."""
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
            if webhook_token is not None:
                record.webhook_token_hash = token_hash(webhook_token)
            if webhook_sources is not None:
                record.webhook_sources = webhook_sources or None
            record.updated_at = utcnow()
            session.add(record)
            session.commit()
            return record

    def rotate_webhook_token(self, connection_id: str, token: str) -> bool:
        """Give a connection's vendor webhook URL a new token; False if there is no such
        connection."""
        with self.session() as session:
            record = session.get(ConnectionRecord, connection_id)
            if record is None:
                return False
            record.webhook_token_hash = token_hash(token)
            session.add(record)
            session.commit()
            return True

    def webhook_connection(
        self, vendor: str, connection_id: str, token: str
    ) -> ConnectionRecord | None:
        """The connection whose vendor webhook URL this is, if the vendor and token match."""
        record = self.get_connection(connection_id)
        if record is None or record.vendor != vendor or record.webhook_token_hash is None:
            return None
        if not hmac.compare_digest(record.webhook_token_hash, token_hash(token)):
            return None
        return record

    def connection_version(self, connection_id: str) -> Any:
        """The connection's ``updated_at`` as the database returns it (None if there is no such
        connection): one quick read, no decryption, for caches to check they are current."""
        row = self._reader.row(CONNECTION_VERSION_SQL, connection_id)
        return row[0] if row else None

    def get_connection(self, connection_id: str) -> ConnectionRecord | None:
        with self.session() as session:
            return session.get(ConnectionRecord, connection_id)

    def connection_config(self, connection_id: str) -> tuple[ConnectionRecord, JSON]:
        """The record and its full config, secrets decrypted."""
        record = self.get_connection(connection_id)
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


def _moment(value: datetime | str | None) -> datetime | None:
    """A ``Moment`` column as the DBAPI returns it (SQLite: text; others: a naive datetime),
    timezone-aware as ``Moment`` reads it."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


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
