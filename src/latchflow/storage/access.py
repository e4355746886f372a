"""Access records: people, places, grants and their credentials.

A grant and the runs that reconcile its credentials are written in one transaction, so a
change is never stored without the work that carries it out, nor the work without the change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select, update

from latchflow.plugin.errors import ValidationError
from latchflow.plugin.types import JSON
from latchflow.storage.audit import Audit, AuditEntry
from latchflow.storage.events import Delivery, EventWriter, new_id
from latchflow.storage.models import (
    CredentialRecord,
    FlowRecord,
    GrantRecord,
    PersonRecord,
    PlaceRecord,
    utcnow,
)

SETTLED = ("revoked", "expired", "failed")
"""Credential states in which nothing is left to do at the vendor."""


@dataclass(frozen=True)
class Target:
    """A credential a grant should have: a kind of credential on one vendor resource."""

    place_id: str
    connection_id: str
    resource_kind: str
    resource: str
    kind: str


@dataclass(frozen=True)
class Check:
    """A run that reconciles ``credential`` at ``at``, once per ``key``."""

    credential: str
    at: datetime
    key: str


@dataclass(frozen=True)
class Change:
    """Who changed a grant and how, for the audit entry written with the change."""

    actor: str
    action: str
    describe: Callable[[GrantRecord], JSON]
    """The entry's detail, from the grant as saved."""


class AccessRecords:
    def __init__(self, engine: Engine, events: EventWriter, audit: Audit) -> None:
        self.engine = engine
        self.events = events
        self.audit = audit

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # people and places

    def save_person(self, person: PersonRecord) -> PersonRecord:
        """Store a person; one with the same ``reference`` is updated instead, and without a
        reference one with the same name, phone and e-mail is the same person."""
        with self._session() as session:
            if person.reference is not None:
                same = PersonRecord.reference == person.reference
            else:
                same = (
                    (PersonRecord.name == person.name)
                    & (PersonRecord.phone == person.phone)
                    & (PersonRecord.email == person.email)
                )
            known = session.exec(select(PersonRecord).where(same).limit(1)).first()
            if known is not None:
                person.reference = person.reference or known.reference
            _upsert(session, person, known)
        found = self.person(person.id)
        assert found is not None
        return found

    def person(self, key: str) -> PersonRecord | None:
        """A person by id, reference or exact name (when only one person has it)."""
        with self._session() as session:
            found = (
                session.get(PersonRecord, key)
                or session.exec(select(PersonRecord).where(PersonRecord.reference == key)).first()
            )
            if found is None:
                named = session.exec(select(PersonRecord).where(PersonRecord.name == key)).all()
                found = named[0] if len(named) == 1 else None
            return found

    def people(self) -> list[PersonRecord]:
        with self._session() as session:
            return list(session.exec(select(PersonRecord).order_by(col(PersonRecord.name))))

    def save_place(self, place: PlaceRecord) -> PlaceRecord:
        """Store a place; one with the same name is updated instead."""
        with self._session() as session:
            known = session.exec(select(PlaceRecord).where(PlaceRecord.name == place.name)).first()
            _upsert(session, place, known)
        found = self.place(place.id)
        assert found is not None
        return found

    def place(self, key: str) -> PlaceRecord | None:
        """A place by id or name."""
        with self._session() as session:
            return (
                session.get(PlaceRecord, key)
                or session.exec(select(PlaceRecord).where(PlaceRecord.name == key)).first()
            )

    def places(self) -> list[PlaceRecord]:
        with self._session() as session:
            return list(session.exec(select(PlaceRecord).order_by(col(PlaceRecord.name))))

    # grants

    def grant(self, key: str) -> GrantRecord | None:
        """A grant by id or reference."""
        with self._session() as session:
            return (
                session.get(GrantRecord, key)
                or session.exec(select(GrantRecord).where(GrantRecord.reference == key)).first()
            )

    def grants(
        self, person_id: str | None = None, state: str | None = None, limit: int = 1000
    ) -> list[GrantRecord]:
        with self._session() as session:
            query = select(GrantRecord).order_by(col(GrantRecord.starts_at).desc()).limit(limit)
            if person_id is not None:
                query = query.where(GrantRecord.person_id == person_id)
            if state is not None:
                query = query.where(GrantRecord.state == state)
            return list(session.exec(query))

    def save_grant(
        self,
        grant: GrantRecord,
        targets: Sequence[Target],
        flow: FlowRecord,
        now: datetime,
        change: Change,
        expected_version: int | None = None,
    ) -> GrantRecord:
        """Store a new or changed grant, the credentials it should have (those it no longer
        should are marked unwanted), a run that reconciles each one and the audit entry, in
        one transaction.

        ``expected_version``: the grant's version the change was made from; another one stored
        raises ``ValidationError`` (read it again and make the change on what it is now).
        """
        try:
            return self._save_grant(grant, targets, flow, now, change, expected_version)
        except IntegrityError as exc:
            raise ValidationError.at(
                "$.reference",
                f"another grant has the reference {grant.reference!r}; update that grant instead",
            ) from exc

    def _save_grant(
        self,
        grant: GrantRecord,
        targets: Sequence[Target],
        flow: FlowRecord,
        now: datetime,
        change: Change,
        expected_version: int | None,
    ) -> GrantRecord:
        with self._session() as session:
            self.audit.lock(session)
            stored = session.get(GrantRecord, grant.id)
            if stored is not None:
                if expected_version is not None and stored.version != expected_version:
                    raise ValidationError.at(
                        "$.version",
                        f"grant {grant.id} is at version {stored.version}, not {expected_version}:"
                        " read it again and make the change on what it is now",
                    )
                grant.version, grant.created_at = stored.version + 1, stored.created_at
            grant.updated_at = now
            session.merge(grant)
            existing = {
                (c.connection_id, c.resource_kind, c.resource): c
                for c in session.exec(
                    select(CredentialRecord).where(CredentialRecord.grant_id == grant.id)
                )
            }
            changed: list[CredentialRecord] = []
            wanted = set()
            for target in targets:
                key = (target.connection_id, target.resource_kind, target.resource)
                wanted.add(key)
                credential = existing.get(key)
                if credential is None:
                    credential = CredentialRecord(
                        id=new_id(),
                        grant_id=grant.id,
                        place_id=target.place_id,
                        connection_id=target.connection_id,
                        resource_kind=target.resource_kind,
                        resource=target.resource,
                        kind=target.kind,
                        created_at=now,
                    )
                else:
                    if credential.state == "failed" or (
                        not credential.wanted and credential.state in SETTLED
                    ):
                        credential.issues += 1  # a new issuance, with its own key
                        credential.state, credential.vendor_ids = "issuing", None
                        credential.secret_sealed, credential.error = None, None
                    credential.wanted, credential.revoke_requested_at = True, None
                    credential.overdue_reported = False
                    credential.generation += 1
                credential.updated_at = now
                changed.append(credential)
            for key, credential in existing.items():
                if key not in wanted and (credential.wanted or credential.state not in SETTLED):
                    credential.wanted = False
                    credential.revoke_requested_at = credential.revoke_requested_at or now
                    credential.generation += 1
                    credential.updated_at = now
                    changed.append(credential)
            for credential in changed:
                session.add(credential)
            session.flush()
            checks = [Check(c.id, now, f"{c.id}:{c.generation}") for c in changed]
            self._queue_checks(session, checks, flow, now)
            saved = session.get(GrantRecord, grant.id)
            assert saved is not None
            entry = AuditEntry(
                change.actor, change.action, f"grant {saved.id}", change.describe(saved)
            )
            self.audit.append(session, entry, now)
            session.commit()
            return saved

    def set_grant_state(self, grant_id: str, state: str, now: datetime) -> None:
        with self._session() as session:
            session.execute(
                update(GrantRecord)
                .where(col(GrantRecord.id) == grant_id)
                .values(state=state, updated_at=now)
            )
            session.commit()

    # credentials

    def credential(self, credential_id: str) -> CredentialRecord | None:
        with self._session() as session:
            return session.get(CredentialRecord, credential_id)

    def credentials(
        self,
        grant_id: str | None = None,
        connection_id: str | None = None,
        resource: tuple[str, str] | None = None,
        unsettled: bool = False,
    ) -> list[CredentialRecord]:
        """Credentials of a grant, on a connection, on a resource (kind, id), or not settled."""
        with self._session() as session:
            query = select(CredentialRecord).order_by(col(CredentialRecord.created_at))
            if grant_id is not None:
                query = query.where(CredentialRecord.grant_id == grant_id)
            if connection_id is not None:
                query = query.where(CredentialRecord.connection_id == connection_id)
            if resource is not None:
                query = query.where(
                    CredentialRecord.resource_kind == resource[0],
                    CredentialRecord.resource == resource[1],
                )
            if unsettled:
                query = query.where(
                    or_(
                        col(CredentialRecord.wanted),
                        col(CredentialRecord.state).not_in(SETTLED),
                    )
                )
            return list(session.exec(query))

    def lease(self, credential_id: str, run_id: str, now: datetime, seconds: float) -> bool:
        """Take the credential for a run (or extend the run's lease); False while another
        run holds an unexpired lease on it. ``lease_run`` stays once the lease is released
        (``lease_until`` None): the last run that worked on the credential."""
        with self._session() as session:
            taken = session.execute(
                update(CredentialRecord)
                .where(
                    col(CredentialRecord.id) == credential_id,
                    or_(
                        col(CredentialRecord.lease_until).is_(None),
                        col(CredentialRecord.lease_run) == run_id,
                        col(CredentialRecord.lease_until) < now,
                    ),
                )
                .values(lease_run=run_id, lease_until=now + timedelta(seconds=seconds))
            )
            session.commit()
            return bool(taken.rowcount)  # type: ignore[attr-defined]

    def update_credential(
        self,
        credential_id: str,
        now: datetime,
        entry: AuditEntry | None = None,
        deliveries: Sequence[Delivery] = (),
        **values: Any,
    ) -> None:
        """Change a credential, with its audit ``entry`` and the flow runs its change starts
        (``deliveries``), in one transaction: none is stored without the others."""
        with self._session() as session:
            if entry is not None:
                self.audit.lock(session)
            session.execute(
                update(CredentialRecord)
                .where(col(CredentialRecord.id) == credential_id)
                .values(updated_at=now, **values)
            )
            if deliveries:
                self.events.write_in(session.connection(), deliveries)
            if entry is not None:
                self.audit.append(session, entry, now)
            session.commit()

    def request_check(
        self, credential_id: str, flow: FlowRecord, now: datetime, at: datetime | None = None
    ) -> None:
        """Queue a run that reconciles the credential (at ``at``, or now) under a new
        generation: for drift found, or work left undone by a run that ended."""
        with self._session() as session:
            credential = session.get(CredentialRecord, credential_id)
            if credential is None:
                return
            credential.generation += 1
            credential.updated_at = now
            session.add(credential)
            key = f"{credential.id}:{credential.generation}"
            self._queue_checks(session, [Check(credential.id, at or now, key)], flow, now)
            session.commit()

    def queue_checks(self, checks: Sequence[Check], flow: FlowRecord, now: datetime) -> None:
        """Queue runs that reconcile credentials later (each ``key`` once)."""
        with self._session() as session:
            self._queue_checks(session, checks, flow, now)
            session.commit()

    def _queue_checks(
        self, session: Session, checks: Sequence[Check], flow: FlowRecord, now: datetime
    ) -> None:
        deliveries = [Delivery(flow, _check_data(check), now, check.key) for check in checks]
        if deliveries:
            self.events.write_in(session.connection(), deliveries)


def _check_data(check: Check) -> JSON:
    return {"credential": check.credential, "at": check.at.isoformat()}


def _upsert(
    session: Session, record: PersonRecord | PlaceRecord, known: PersonRecord | PlaceRecord | None
) -> None:
    """Store ``record``, as the ``known`` one it updates (keeping its id) if there is one; a
    new record's ``updated_at`` is its ``created_at``."""
    if known is not None:
        record.id, record.created_at = known.id, known.created_at
    record.updated_at = utcnow() if known is not None else record.created_at
    session.merge(record)
    session.commit()
