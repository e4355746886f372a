"""The store: the database's records, one object per kind, and flows and connections.

Everything latchflow keeps goes through here; no other package issues SQL. ``Store`` holds the
engine and the keys, reads and writes flows and connections itself, and hands out the other
records:

- ``events``: events in and the runs they start (``EventWriter``);
- ``journal``: runs as the executor and the dispatchers take them (claims, checkpoints);
- ``history``: runs and events for people (listings, detail, replay, cancel);
- ``cursors``: where schedules and polls left off;
- ``access``: people, places, grants and credentials;
- ``nodes``, ``api_keys`` and ``audit`` (things done that must stay on record).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select, update

from latchflow.flows.document import Flow
from latchflow.plugin.errors import ConfigurationError, ValidationError
from latchflow.plugin.types import JSON, Vendor
from latchflow.storage.access import AccessRecords
from latchflow.storage.api_keys import ApiKeys
from latchflow.storage.audit import Audit
from latchflow.storage.cursors import Cursors
from latchflow.storage.database import QuickReader, Settings, make_engine, migrate
from latchflow.storage.events import EventWriter
from latchflow.storage.holds import Holds
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


class StaleWrite(Exception):
    """A record changed after the change being saved was made from it (or while it was being
    saved): saving it would undo the other change."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what} was changed by someone else while this change was made; read it again"
            " and make the change on what it is now"
        )


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
        self.holds = Holds(self.engine)
        self.api_keys = ApiKeys(self.engine)
        self.audit = Audit(self.engine)
        self.access = AccessRecords(self.engine, self.events, self.audit)
        self._reader = QuickReader(self.engine)
        self._switch_records: dict[str, tuple[tuple[Any, ...], FlowRecord]] = {}
        self._versions: dict[tuple[str, int], Flow] = {}

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    # flows

    def save_flow(self, flow: Flow, expected_version: int | None = None) -> FlowRecord:
        """Store a validated flow; a changed document must carry a higher version.

        ``expected_version`` (a client's ``If-Match``) is the version the change was made
        from: another one stored raises ``StaleWrite``. Two saves at once never both count:
        the one whose write comes second finds the record changed and raises ``StaleWrite``
        (nodes starting together with the same ``--flows`` save the same document, which is
        no change: the loser of that race finds the winner's record on its second attempt).
        """
        try:
            return self._save_flow(flow, expected_version)
        except IntegrityError:
            return self._save_flow(flow, expected_version)

    def _save_flow(self, flow: Flow, expected_version: int | None) -> FlowRecord:
        with self.session() as session:
            record = session.get(FlowRecord, flow.id)
            read = None if record is None else record.version
            if expected_version is not None and read != expected_version:
                raise StaleWrite(f"flow {flow.id!r} (now at version {read})")
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
            values: dict[str, Any] = {
                "version": flow.version,
                "name": flow.name,
                "trigger_type": flow.trigger_type,
                "trigger_connection": flow.trigger_connection,
                "enabled": bool(flow.document.get("enabled", True)),
                "updated_at": utcnow(),
            }
            if _new_version(session, flow):
                session.add(
                    FlowVersion(flow_id=flow.id, version=flow.version, document=flow.document)
                )
            if record is None:
                session.add(FlowRecord(id=flow.id, hook_token=secrets.token_urlsafe(24), **values))
            else:
                session.expunge(record)  # written below only if nobody changed it meanwhile
                changed = session.execute(
                    update(FlowRecord)
                    .where(col(FlowRecord.id) == flow.id, col(FlowRecord.version) == read)
                    .values(**values)
                )
                if not changed.rowcount:  # type: ignore[attr-defined]
                    session.rollback()
                    raise StaleWrite(f"flow {flow.id!r}")
            session.commit()
        saved = self.get_flow(flow.id)
        assert saved is not None
        return saved

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
        based_on: datetime | None = None,
    ) -> ConnectionRecord:
        """Store a connection; ``writeOnly`` fields of the vendor's schema are encrypted. A
        given ``webhook_token`` replaces the one in its vendor webhook URL (only its hash is
        kept); given ``webhook_sources`` (CIDR; an empty list: any) replace the networks its
        webhooks may come from. ``based_on`` is the ``updated_at`` of the record the change
        was made from (None: a new connection); ``StaleWrite`` if it is not the stored one."""
        hidden = secret_fields(vendor.connection_schema)
        with self.session() as session:
            record = session.get(ConnectionRecord, connection_id)
            if (record.updated_at if record else None) != based_on:
                raise StaleWrite(f"connection {connection_id!r}")
            if record is not None and record.vendor != vendor.key:
                raise ValidationError.at(
                    "$.vendor", f"connection {connection_id!r} belongs to vendor {record.vendor!r}"
                )
            old_secrets = self.sealer.unseal(record.secrets) if record else {}
            values: dict[str, Any] = {
                "name": name,
                "config": {k: v for k, v in config.items() if k not in hidden},
                "secrets": self.sealer.seal(
                    {**old_secrets, **{k: v for k, v in config.items() if k in hidden}}
                ),
                "updated_at": utcnow(),
            }
            if webhook_token is not None:
                values["webhook_token_hash"] = token_hash(webhook_token)
            if webhook_sources is not None:
                values["webhook_sources"] = webhook_sources or None
            if record is None:
                session.add(ConnectionRecord(id=connection_id, vendor=vendor.key, **values))
            else:
                session.expunge(record)  # written below only if nobody changed it meanwhile
                changed = session.execute(
                    update(ConnectionRecord)
                    .where(
                        col(ConnectionRecord.id) == connection_id,
                        col(ConnectionRecord.updated_at) == based_on,
                    )
                    .values(**values)
                )
                if not changed.rowcount:  # type: ignore[attr-defined]
                    raise StaleWrite(f"connection {connection_id!r}")
            try:
                session.commit()
            except IntegrityError:  # created by someone else meanwhile
                raise StaleWrite(f"connection {connection_id!r}") from None
        saved = self.get_connection(connection_id)
        assert saved is not None
        return saved

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
