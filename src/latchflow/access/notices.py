"""What the access layer tells flows and the audit log: credential issued or failed, a
revocation overdue, a grant ended, drift found."""

from __future__ import annotations

from latchflow.plugin.clock import Clock
from latchflow.plugin.types import JSON
from latchflow.storage.audit import AuditEntry
from latchflow.storage.events import Delivery
from latchflow.storage.models import CredentialRecord
from latchflow.storage.store import Store

ACTOR = "access"
"""Who the audit log names for what the reconciler did."""


class Notices:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def deliveries(self, trigger: str, event_id: str, data: JSON) -> list[Delivery]:
        """Runs of every enabled flow on ``trigger`` with ``data``, once per ``event_id``."""
        flows = [f for f in self.store.list_flows() if f.enabled and f.trigger_type == trigger]
        now = self.clock.now()
        return [Delivery(flow, data, now, f"{trigger}:{event_id}") for flow in flows]

    def fire(self, trigger: str, event_id: str, data: JSON) -> None:
        deliveries = self.deliveries(trigger, event_id, data)
        if deliveries:
            self.store.events.write(deliveries)

    def entry(
        self, action: str, credential: CredentialRecord, detail: JSON, actor: str = ACTOR
    ) -> AuditEntry:
        detail = {"grant": credential.grant_id, "resource": credential.resource, **detail}
        return AuditEntry(actor, action, f"credential {credential.id}", detail)

    def record(
        self, action: str, credential: CredentialRecord, detail: JSON, actor: str = ACTOR
    ) -> None:
        entry = self.entry(action, credential, detail, actor)
        self.store.audit.record(
            entry.actor, entry.action, entry.subject, self.clock.now(), entry.detail
        )

    def credential_event(
        self, credential: CredentialRecord, state: str, error: str | None = None
    ) -> JSON:
        """A credential trigger's event: the grant, its holder, the place; never the code."""
        records = self.store.access
        grant = records.grant(credential.grant_id)
        assert grant is not None
        person = records.person(grant.person_id)
        place = records.place(credential.place_id)
        return {
            "grant": grant.id,
            "reference": grant.reference,
            "credential": credential.id,
            "person": person.name if person else "",
            "phone": person.phone if person else None,
            "email": person.email if person else None,
            "place": place.name if place else credential.place_id,
            "kind": credential.kind,
            "state": state,
            "error": error,
        }
