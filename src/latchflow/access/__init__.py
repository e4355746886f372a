"""Vendor-neutral access: people, places, grants and their credentials at the vendors.

``Access`` assembles the parts for an engine: ``grants`` (changes people make), the
``reconciler`` (one credential made what its grant wants, one run per change), the
``verifier`` (periodic comparison with each vendor's truth) and the ``explainer`` ("why can't
P open X at T?"). It binds the built-in ``access.*`` actions to them and installs the two
flows whose runs do the work, so that work is as durable and visible as any run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from latchflow.access.explain import Explainer
from latchflow.access.grants import RECONCILE_FLOW, Grants, credential_view
from latchflow.access.notices import Notices
from latchflow.access.parts import provider_context
from latchflow.access.reconciler import Reconciler
from latchflow.access.usage import link_events
from latchflow.access.verify import Verifier
from latchflow.flows.document import validate_flow
from latchflow.plugin.clock import Clock
from latchflow.plugin.errors import ConfigurationError, FatalError
from latchflow.plugin.host import Registry
from latchflow.plugin.types import JSON, RunContext, TriggerEvent, UnmappedEvent
from latchflow.runs.connections import Connections
from latchflow.storage.models import GrantRecord
from latchflow.storage.store import Store

VERIFY_FLOW = "access-verify"


@dataclass(frozen=True)
class AccessSettings:
    """``LATCHFLOW_REVOCATION_GRACE``: seconds a revocation may take before it is reported
    overdue; ``LATCHFLOW_ACCESS_VERIFY_EVERY``: seconds between verification passes;
    ``LATCHFLOW_ACCESS_UNKNOWN``: ``report`` or ``revoke`` credentials nobody granted."""

    revocation_grace: float = 300.0
    verify_every: int = 900
    revoke_unknown: bool = False

    @classmethod
    def from_environment(cls) -> AccessSettings:
        unknown = os.environ.get("LATCHFLOW_ACCESS_UNKNOWN", "report")
        if unknown not in ("report", "revoke"):
            raise ConfigurationError(
                f"{unknown!r} is neither 'report' nor 'revoke'", path="LATCHFLOW_ACCESS_UNKNOWN"
            )
        return cls(
            revocation_grace=float(
                os.environ.get("LATCHFLOW_REVOCATION_GRACE", cls.revocation_grace)
            ),
            verify_every=int(os.environ.get("LATCHFLOW_ACCESS_VERIFY_EVERY", cls.verify_every)),
            revoke_unknown=unknown == "revoke",
        )


class Access:
    def __init__(
        self,
        store: Store,
        registry: Registry,
        connections: Connections,
        clock: Clock,
        settings: AccessSettings | None = None,
    ) -> None:
        self.settings = settings or AccessSettings.from_environment()
        self.store = store
        self.registry = registry
        self.connections = connections
        self.records = store.access
        self.notices = Notices(store, clock)
        self.grants = Grants(store, registry, clock, self.install_flows)
        parts = (store, registry, connections, clock, self.notices)
        grace = timedelta(seconds=self.settings.revocation_grace)
        self.reconciler = Reconciler(*parts, grace=grace)
        self.verifier = Verifier(*parts, revoke_unknown=self.settings.revoke_unknown)
        self.explainer = Explainer(*parts)
        self._bind(registry)
        if "access.reconcile" in registry.actions and self.records.places():
            self.install_flows()

    def install_flows(self) -> None:
        """Install the flows whose runs reconcile and verify credentials (a new version of
        one whose document changed): once the access layer is in use, at every start."""
        for document in self.flows():
            record = self.store.get_flow(document["id"])
            if record is not None:
                current = self.store.flow_version(record.id, record.version).document
                if {**current, "version": 0} == {**document, "version": 0}:
                    continue
                document = {**document, "version": record.version + 1}
            self.store.save_flow(validate_flow(document, self.registry))

    def _bind(self, registry: Registry) -> None:
        runs = {
            "access.grant": self._grant,
            "access.update_grant": self._update,
            "access.cancel_grant": self._cancel,
            "access.reveal_credential": self._reveal,
            "access.reconcile": self.reconciler.run,
            "access.verify": self.verifier.run,
        }
        for key, run in runs.items():
            if key in registry.actions:
                registry.actions[key] = replace(registry.actions[key], run=run)

    def flows(self) -> list[JSON]:
        """The documents of the flows whose runs reconcile and verify credentials."""
        return [
            {
                "id": RECONCILE_FLOW,
                "name": "Access: reconcile a credential with its grant",
                "version": 1,
                "description": "Runs once per change to a credential's grant, and at its start and end.",
                "trigger": {"type": "manual"},
                "steps": [
                    {"id": "wait", "action": "core.delay", "input": {"until": "{{ trigger.at }}"}},
                    {
                        "id": "reconcile",
                        "action": "access.reconcile",
                        "input": {"credential": "{{ trigger.credential }}"},
                    },
                ],
            },
            {
                "id": VERIFY_FLOW,
                "name": "Access: verify credentials at the vendors",
                "version": 1,
                "description": "Compares every vendor resource's credentials with the grants.",
                "trigger": {
                    "type": "schedule",
                    "input": {"interval_seconds": self.settings.verify_every},
                },
                "steps": [{"id": "verify", "action": "access.verify", "input": {}}],
            },
        ]

    async def sync_places(self, connection_id: str) -> int:
        """Make the places match the resources the connection's vendor lists: a place for
        each, named as the vendor names it (a place of that name gets the resource), and the
        connection's resources the vendor no longer lists taken off their places (a sandbox's
        simulator is new at every start). Returns how many places changed."""
        live = await self.connections.get(connection_id)
        ctx = provider_context(live.connection, self.grants.clock, f"places:{connection_id}")
        listed: dict[str, list[JSON]] = {}
        kinds: set[str] = set()
        for provider in {id(p): p for p in self.registry.providers.values()}.values():
            if provider.vendor != live.connection.vendor or provider.resources is None:
                continue
            for kind in provider.resource_kinds:
                kinds.add(kind.key)
                for resource in await provider.resources(ctx, kind.key):
                    entry = {"connection": connection_id, "kind": kind.key, "id": resource.id}
                    listed.setdefault(resource.name, []).append(entry)
        changed = 0
        for place in self.records.places():
            ours = [
                r
                for r in place.resources
                if r["connection"] == connection_id and r["kind"] in kinds
            ]
            wanted = listed.pop(place.name, [])
            if sorted(map(str, ours)) != sorted(map(str, wanted)):
                others = [r for r in place.resources if r not in ours]
                data = {
                    "name": place.name,
                    "timezone": place.timezone,
                    "description": place.description,
                }
                self.grants.save_place({**data, "resources": others + wanted})
                changed += 1
        for name, resources in listed.items():
            self.grants.save_place({"name": name, "resources": resources})
            changed += 1
        return changed

    def link_events(
        self, connection_id: str, events: Sequence[TriggerEvent | UnmappedEvent]
    ) -> int:
        """Record vendor events made with a grant's credential (see ``usage``)."""
        return link_events(self.store, self.notices, connection_id, events)

    def view(self, grant: GrantRecord) -> JSON:
        """A grant as the API and flows show it, with its credentials (codes left out)."""
        person = self.records.person(grant.person_id)
        names = {p.id: p.name for p in self.records.places()}
        return {
            "id": grant.id,
            "reference": grant.reference,
            "state": grant.state,
            "version": grant.version,
            "person": person.name if person else grant.person_id,
            "person_id": grant.person_id,
            "places": [names.get(p, p) for p in grant.places],
            "starts": grant.starts_at.isoformat(),
            "ends": grant.ends_at.isoformat(),
            "timezone": grant.timezone,
            "weekly": grant.weekly,
            "kinds": grant.kinds,
            "credentials": [
                credential_view(c, names.get(c.place_id, c.place_id))
                for c in self.records.credentials(grant_id=grant.id)
            ],
        }

    def reveal(self, credential_id: str, actor: str) -> JSON:
        """A credential's code, recorded in the audit log."""
        credential = self.records.credential(credential_id)
        if credential is None:
            raise FatalError(f"no credential {credential_id!r}")
        code = None
        if credential.secret_sealed is not None:
            code = self.store.sealer.unseal(credential.secret_sealed)
        self.notices.record("credential.revealed", credential, {}, actor=actor)
        return {
            "credential": credential.id,
            "kind": credential.kind,
            "code": code,
            "starts": credential.starts_at.isoformat() if credential.starts_at else None,
            "ends": credential.ends_at.isoformat() if credential.ends_at else None,
        }

    # the flow actions

    async def _grant(self, ctx: RunContext, data: JSON) -> JSON:
        return self.view(self.grants.grant(data, _actor(ctx), key=ctx.idempotency_key))

    async def _update(self, ctx: RunContext, data: JSON) -> JSON:
        return self.view(self.grants.update(data["reference"], data, _actor(ctx)))

    async def _cancel(self, ctx: RunContext, data: JSON) -> JSON:
        return self.view(self.grants.cancel(data["reference"], _actor(ctx)))

    async def _reveal(self, ctx: RunContext, data: JSON) -> JSON:
        return self.reveal(data["credential"], _actor(ctx))


def _actor(ctx: RunContext) -> str:
    return f"flow {ctx.flow_id} (run {ctx.run_id})"


__all__ = ["RECONCILE_FLOW", "VERIFY_FLOW", "Access", "AccessSettings"]
