"""The verification pass: every vendor resource's credentials compared with the grants.

A credential the vendor lost is issued again; one still active for a grant that ended is
revoked again; one nobody granted is reported (or revoked, if so configured); work that no run
carries on (a run cancelled by hand) is queued again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import timedelta

from latchflow.access.grants import RECONCILE_FLOW
from latchflow.access.parts import Part
from latchflow.plugin.access import VendorCredential
from latchflow.plugin.errors import LatchflowError
from latchflow.plugin.types import JSON, RunContext
from latchflow.storage.access import SETTLED
from latchflow.storage.models import CredentialRecord
from latchflow.storage.status import ACTIVE

STALLED = timedelta(minutes=10)
"""Unsettled work left this long without a run holding it is queued again."""
LIVE = ("issued", "active")


def _key(ids: JSON | None) -> str:
    return json.dumps(ids or {}, sort_keys=True)


@dataclass
class Verifier(Part):
    revoke_unknown: bool = False
    """Revoke credentials nobody granted, instead of only reporting them."""

    async def run(self, ctx: RunContext, data: JSON) -> JSON:
        """The ``access.verify`` step: returns how many resources it saw, what drifted and
        which resources it could not read."""
        resources: dict[tuple[str, str, str], list[CredentialRecord]] = {}
        for place in self.records.places():
            for r in place.resources:
                resources.setdefault((r["connection"], r["kind"], r["id"]), [])
        for credential in self.records.credentials():
            target = (credential.connection_id, credential.resource_kind, credential.resource)
            resources.setdefault(target, []).append(credential)
        drift: list[JSON] = []
        unreadable: list[JSON] = []
        for (connection_id, kind, resource), ours in resources.items():
            try:
                drift += await self._resource(ctx, connection_id, kind, resource, ours)
            except LatchflowError as exc:
                unreadable.append(
                    {"connection": connection_id, "resource": resource, "error": str(exc)}
                )
        drift += self._stalled()
        return {"resources": len(resources), "drift": drift, "unreadable": unreadable}

    async def _resource(
        self,
        ctx: RunContext,
        connection_id: str,
        kind: str,
        resource: str,
        ours: list[CredentialRecord],
    ) -> list[JSON]:
        provider = self.registry.providers.get(kind)
        if provider is None:
            return []
        live = await self.connections.get(connection_id)
        call = replace(
            ctx,
            connection=live.connection,
            http=live.connection.http,
            idempotency_key=f"verify:{connection_id}:{resource}",
        )
        found = await provider.inspect(call, kind, resource)
        now = self.clock.now()
        active = {_key(v.ids): v for v in found if v.active}
        known = {_key(c.vendor_ids): c for c in ours if c.vendor_ids}
        drift: list[JSON] = []
        for credential in ours:
            vendor = active.get(_key(credential.vendor_ids)) if credential.vendor_ids else None
            if credential.wanted and credential.state in LIVE and vendor is None:
                drift.append(self._repair(credential, "missing at the vendor: issued again"))
                self.records.update_credential(
                    credential.id,
                    now,
                    vendor_ids=None,
                    secret_sealed=None,
                    state="issuing",
                    issues=credential.issues + 1,
                    attempts=0,
                    starts_at=None,
                    ends_at=None,
                )
                self._queue(credential)
            elif not credential.wanted and credential.state in SETTLED and vendor is not None:
                drift.append(self._repair(credential, "still active at the vendor: revoked again"))
                self.records.update_credential(
                    credential.id,
                    now,
                    state="revoking",
                    revoke_requested_at=now,
                    overdue_reported=False,
                )
                self._queue(credential)
            elif vendor is not None:
                self.records.update_credential(
                    credential.id,
                    now,
                    last_verified_at=now,
                    vendor_status=vendor.status,
                    delivered=vendor.delivered,
                )
        for key, vendor in active.items():
            if key not in known:
                drift.append(await self._unknown(call, provider, connection_id, kind, vendor))
        return drift

    def _repair(self, credential: CredentialRecord, problem: str) -> JSON:
        self.notices.record("drift.found", credential, {"problem": problem})
        event = self.notices.credential_event(credential, credential.state, problem)
        now = self.clock.now().isoformat()
        self.notices.fire("access.drift_found", f"{credential.id}:{now}", event)
        return {"credential": credential.id, "resource": credential.resource, "problem": problem}

    async def _unknown(
        self,
        call: RunContext,
        provider: object,
        connection_id: str,
        kind: str,
        vendor: VendorCredential,
    ) -> JSON:
        """A credential at the vendor that no grant made: reported, or revoked."""
        problem = "active at the vendor and granted by nobody"
        holder = (vendor.holder or "").lower()
        for grant in self.records.grants(state="cancelled", limit=10_000):
            person = self.records.person(grant.person_id)
            if person and person.name.lower() in holder:
                problem += f"; its holder looks like {person.name} of cancelled grant {grant.id}"
                break
        if self.revoke_unknown:
            await provider.revoke(call, vendor)  # type: ignore[attr-defined]
            problem += ": revoked"
        else:
            problem += ": reported (set LATCHFLOW_ACCESS_UNKNOWN=revoke to revoke such ones)"
        detail = {
            "connection": connection_id,
            "resource_kind": kind,
            "resource": vendor.resource,
            "ids": vendor.ids,
            "holder": vendor.holder,
            "problem": problem,
        }
        self.store.audit.record(
            "access", "drift.found", f"resource {vendor.resource}", self.clock.now(), detail
        )
        self.notices.fire(
            "access.drift_found",
            f"unknown:{_key(vendor.ids)}",
            {
                "person": vendor.holder or "",
                "kind": str(vendor.kind),
                "state": "active",
                "error": problem,
                "place": vendor.resource,
            },
        )
        return {"resource": vendor.resource, "ids": vendor.ids, "problem": problem}

    def _stalled(self) -> list[JSON]:
        """Unsettled credentials whose last run ended (a person cancelled it) and that no run
        has touched for a while: queued again."""
        now = self.clock.now()
        drift: list[JSON] = []
        for credential in self.records.credentials(unsettled=True):
            if (credential.state in LIVE and credential.wanted) or credential.state == "failed":
                continue
            last = self.store.history.get(credential.lease_run) if credential.lease_run else None
            if last is not None and last.status in ACTIVE:
                continue  # its run carries on (waiting for a retry, a vendor's job)
            if now - credential.updated_at < STALLED:
                continue
            drift.append(
                {"credential": credential.id, "problem": f"{credential.state}: queued again"}
            )
            self._queue(credential)
        return drift

    def _queue(self, credential: CredentialRecord) -> None:
        flow = self.store.get_flow(RECONCILE_FLOW)
        assert flow is not None
        self.records.request_check(credential.id, flow, self.clock.now())
