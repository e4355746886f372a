"""Making one credential at its vendor what its grant wants now.

Each change to a grant queues one run of the reconcile flow per credential; the run's step
looks at what is wanted now (not at what changed), so runs that overlap or come late do no
harm: a lease keeps two runs from working on one credential at once. Every issuance has its
own idempotency key (credential id + issuance number) and a call that may have reached the
vendor makes the next one an ``attempt`` > 1, so the provider adopts instead of issuing twice.
A revocation is retried until the vendor confirms it, whatever the vendor answers meanwhile,
and reported as overdue once it takes longer than the grace period.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from latchflow.access.grants import RECONCILE_FLOW
from latchflow.access.parts import Part
from latchflow.access.windows import grant_window, next_change, wanted_window
from latchflow.plugin.access import (
    AccessWindow,
    CredentialKind,
    CredentialProvider,
    CredentialRequest,
    Holder,
    VendorCredential,
)
from latchflow.plugin.errors import FatalError, LatchflowError, RetryableError
from latchflow.plugin.timeparse import parse_moment
from latchflow.plugin.types import JSON, Connection, Pending, RunContext
from latchflow.storage.access import SETTLED, Check
from latchflow.storage.audit import AuditEntry
from latchflow.storage.models import CredentialRecord, GrantRecord

LEASE_SECONDS = 300.0
BUSY_WAIT = timedelta(seconds=2)
"""How long a run waits while another run works on the same credential."""


@dataclass
class Reconciler(Part):
    grace: timedelta = timedelta(minutes=5)
    """How long a revocation may take before it is reported overdue."""

    async def run(self, ctx: RunContext, data: JSON) -> JSON | Pending:
        """The ``access.reconcile`` step."""
        credential_id = data["credential"]
        now = self.clock.now()
        if not self.records.lease(credential_id, ctx.run_id, now, LEASE_SECONDS):
            return Pending(now + BUSY_WAIT, ctx.state or {})
        try:
            result = await self._reconcile(ctx, credential_id)
        except BaseException:
            self.records.update_credential(credential_id, now, lease_until=None)
            raise
        if isinstance(result, Pending):
            until = result.check_at + timedelta(seconds=LEASE_SECONDS)
            self.records.update_credential(credential_id, now, lease_until=until)
        else:
            self.records.update_credential(credential_id, now, lease_until=None)
        return result

    async def _reconcile(self, ctx: RunContext, credential_id: str) -> JSON | Pending:
        credential = self.records.credential(credential_id)
        if credential is None:
            return {"credential": credential_id, "state": "gone"}
        grant = self.records.grant(credential.grant_id)
        assert grant is not None
        provider = self.registry.providers.get(credential.resource_kind)
        if provider is None:
            raise FatalError(
                f"no installed plugin provides {credential.resource_kind!r} resources; install"
                " the vendor's plugin again"
            )
        now = self.clock.now()
        live = await self.connections.get(credential.connection_id)
        held_until = self.connections.admit(credential.connection_id, provider.vendor)
        if held_until is not None:
            return Pending(held_until, ctx.state or {})
        call = _Call(ctx, live.connection, credential)
        window = wanted_window(grant, now, provider.weekly_hours) if credential.wanted else None
        async with live.slots:  # the vendor's max_concurrency, as for any step
            if window is None:
                outcome = await self._revoke(call, provider, grant)
            else:
                outcome = await self._issue(call, provider, grant, window)
        if isinstance(outcome, Pending):
            return outcome
        self._check_again(credential.id, window, now)
        return {"credential": credential.id, "state": outcome}

    # issuing and moving

    async def _issue(
        self, call: _Call, provider: CredentialProvider, grant: GrantRecord, window: AccessWindow
    ) -> str | Pending:
        credential = call.credential
        now = self.clock.now()
        if credential.vendor_ids is not None and credential.state in ("revoking", *SETTLED):
            # wanted again after its revocation began: finish that one, then issue anew
            if credential.state == "revoking":
                revoked = await self._revoke_at_vendor(
                    call, provider, _vendor_credential(credential)
                )
                if isinstance(revoked, Pending):
                    return revoked
            self._update(
                credential,
                entry=self.notices.entry("credential.revoked", credential, {}),
                vendor_ids=None,
                secret_sealed=None,
                issues=credential.issues + 1,
                state="issuing",
                attempts=0,
            )
            call = self._reread(call)
            credential = call.credential
        if credential.vendor_ids is None:
            window = call.asked("issue", window)
            request = self._request(credential, grant, window)
            attempt = credential.attempts + (0 if call.resumes("issue") else 1)
            self._update(credential, state="issuing", attempts=attempt)
            key = f"{credential.id}:issue:{credential.issues}"
            try:
                result = await provider.issue(call.context("issue", key, attempt), request)
            except FatalError as exc:
                self._failed(credential, exc)
                raise
            except LatchflowError as exc:
                self._update(credential, error=str(exc))
                raise
            if isinstance(result, Pending):
                return call.pending(result, "issue", window)
            return self._issued(credential, result, window, now, "credential.issued")
        if (credential.starts_at, credential.ends_at) == (window.starts_at, window.ends_at):
            state = "active" if now >= window.starts_at else "issued"
            if state != credential.state:
                self._update(credential, state=state)
            return state
        current = _vendor_credential(credential)
        if provider.change is None:
            revoked = await self._revoke_at_vendor(call, provider, current)
            if isinstance(revoked, Pending):
                return revoked
            self._update(
                credential,
                entry=self.notices.entry("credential.revoked", credential, {"reason": "moved"}),
                vendor_ids=None,
                secret_sealed=None,
                issues=credential.issues + 1,
                state="issuing",
                attempts=0,
            )
            return await self._issue(self._reread(call), provider, grant, window)
        key = f"{credential.id}:change:{credential.generation}"
        window = call.asked("change", window)
        request = self._request(credential, grant, window)
        try:
            result = await provider.change(call.context("change", key, 1), current, request)
        except LatchflowError as exc:
            self._update(credential, error=str(exc))
            raise
        if isinstance(result, Pending):
            return call.pending(result, "change", window)
        return self._issued(credential, result, window, now, "credential.changed")

    def _issued(
        self,
        credential: CredentialRecord,
        result: VendorCredential,
        window: AccessWindow,
        now: datetime,
        action: str,
    ) -> str:
        """Record what the vendor issued (or moved), its audit entry and, for a new issuance,
        the ``access.credential_issued`` runs, together."""
        state = "active" if now >= window.starts_at else "issued"
        sealed = credential.secret_sealed
        if result.secret is not None:
            sealed = self.store.sealer.seal(result.secret)
        notice = None
        if action == "credential.issued":
            notice = ("access.credential_issued", self.notices.credential_event(credential, state))
        self._update(
            credential,
            entry=self.notices.entry(action, credential, _window(window)),
            notice=notice,
            state=state,
            vendor_ids=result.ids,
            secret_sealed=sealed,
            starts_at=window.starts_at,
            ends_at=window.ends_at,
            vendor_status=result.status,
            delivered=result.delivered,
            attempts=0,
            error=None,
        )
        return state

    def _failed(self, credential: CredentialRecord, exc: FatalError) -> None:
        event = self.notices.credential_event(credential, "failed", str(exc))
        self._update(
            credential,
            entry=self.notices.entry("credential.failed", credential, {"error": str(exc)}),
            notice=("access.credential_failed", event),
            state="failed",
            error=str(exc),
            attempts=0,
        )

    # revoking

    async def _revoke(
        self, call: _Call, provider: CredentialProvider, grant: GrantRecord
    ) -> str | Pending:
        credential = call.credential
        final = "expired" if grant.state == "active" else "revoked"
        if credential.state in SETTLED:
            self._settled(credential, grant)  # again, if a process died before it
            return credential.state
        if credential.vendor_ids is None and credential.attempts == 0:
            self._update(credential, state=final)  # never sent to the vendor
            self._settled(credential, grant)
            return final
        if credential.revoke_requested_at is None:
            self._update(credential, revoke_requested_at=self.clock.now())
        if credential.vendor_ids is None:  # an issue that may have reached the vendor: adopt it
            window = replace(grant_window(grant), weekly=None)
            adopted = await self._issue(call, provider, grant, window)
            if isinstance(adopted, Pending):
                return adopted
            call = self._reread(call)
            credential = call.credential
        self._update(credential, state="revoking")
        revoked = await self._revoke_at_vendor(call, provider, _vendor_credential(credential))
        if isinstance(revoked, Pending):
            return revoked
        self._update(
            credential,
            entry=self.notices.entry(f"credential.{final}", credential, {}),
            state=final,
            secret_sealed=None,
            attempts=0,
            error=None,
        )
        self._settled(credential, grant)
        return final

    async def _revoke_at_vendor(
        self, call: _Call, provider: CredentialProvider, current: VendorCredential
    ) -> Pending | None:
        """Revoke, whatever the vendor answers meanwhile: every failure is tried again."""
        credential = call.credential
        key = f"{credential.id}:revoke:{credential.issues}"
        attempt = credential.attempts + (0 if call.resumes("revoke") else 1)
        self._update(credential, attempts=attempt)
        try:
            result = await provider.revoke(call.context("revoke", key, attempt), current)
        except LatchflowError as exc:
            self._update(credential, error=str(exc))
            self._overdue(credential, str(exc))
            if isinstance(exc, RetryableError):
                raise
            raise RetryableError(f"{exc}; the revocation is tried again") from exc
        if isinstance(result, Pending):
            self._overdue(credential, "the vendor's job has not finished")
            return call.pending(result, "revoke")
        return None

    def _overdue(self, credential: CredentialRecord, reason: str) -> None:
        fresh = self.records.credential(credential.id)
        assert fresh is not None
        since = fresh.revoke_requested_at
        now = self.clock.now()
        if fresh.overdue_reported or since is None or now - since < self.grace:
            return
        event = self.notices.credential_event(credential, "revoking", reason)
        self._update(
            credential,
            entry=self.notices.entry(
                "credential.revocation_overdue", credential, {"error": reason}
            ),
            notice=("access.revocation_overdue", event),
            overdue_reported=True,
        )

    def _settled(self, credential: CredentialRecord, grant: GrantRecord) -> None:
        """Once every credential of a grant that should end is settled: the grant ended."""
        if any(not c.wanted or c.state not in SETTLED for c in self._unsettled(grant)):
            return
        if grant.state == "active":
            if self.clock.now() < grant.ends_at:
                return
            self.records.set_grant_state(grant.id, "ended", self.clock.now())
        event = self.notices.credential_event(credential, "revoked")
        self.notices.fire("access.grant_ended", f"{grant.id}:{grant.version}", event)

    def _unsettled(self, grant: GrantRecord) -> list[CredentialRecord]:
        return [c for c in self.records.credentials(grant_id=grant.id) if c.state not in SETTLED]

    # helpers

    def _reread(self, call: _Call) -> _Call:
        credential = self.records.credential(call.credential.id)
        assert credential is not None
        return replace(call, credential=credential)

    def _request(
        self, credential: CredentialRecord, grant: GrantRecord, window: AccessWindow
    ) -> CredentialRequest:
        person = self.records.person(grant.person_id)
        assert person is not None
        label = person.name if grant.reference is None else f"{person.name} · {grant.reference}"
        return CredentialRequest(
            credential_id=credential.id,
            resource_kind=credential.resource_kind,
            resource=credential.resource,
            kind=CredentialKind(credential.kind),
            holder=Holder(person.name, person.phone, person.email, person.reference),
            window=window,
            label=label,
        )

    def _update(
        self,
        credential: CredentialRecord,
        entry: AuditEntry | None = None,
        notice: tuple[str, JSON] | None = None,
        **values: Any,
    ) -> None:
        """Change the credential, with its audit entry and the runs of the flows on the
        ``notice``'s trigger (once per issuance), in one transaction."""
        deliveries = []
        if notice is not None:
            trigger, event = notice
            key = f"{credential.id}:{credential.issues}"
            deliveries = self.notices.deliveries(trigger, key, event)
        self.records.update_credential(
            credential.id, self.clock.now(), entry=entry, deliveries=deliveries, **values
        )
        for name, value in values.items():
            setattr(credential, name, value)

    def _check_again(self, credential_id: str, window: AccessWindow | None, now: datetime) -> None:
        at = next_change(window, now)
        if at is None:
            return
        credential = self.records.credential(credential_id)
        flow = self.store.get_flow(RECONCILE_FLOW)
        assert credential is not None and flow is not None
        key = f"{credential.id}:{credential.generation}:{at.isoformat()}"
        self.records.queue_checks([Check(credential.id, at, key)], flow, now)


@dataclass(frozen=True)
class _Call:
    """One reconcile step's calls to a provider: the run's context, re-keyed per call."""

    ctx: RunContext
    connection: Connection
    credential: CredentialRecord

    def resumes(self, phase: str) -> bool:
        """Whether this call continues a vendor job that ``phase`` started (a ``Pending``)."""
        return bool(self.ctx.state) and (self.ctx.state or {}).get("phase") == phase

    def context(self, phase: str, key: str, attempt: int) -> RunContext:
        """The provider's context: ``attempt`` counts the calls of this issuance (or
        revocation) that may have reached the vendor, whichever run made them."""
        state = self.ctx.state or {}
        return replace(
            self.ctx,
            connection=self.connection,
            http=self.connection.http,
            idempotency_key=key,
            attempt=attempt,
            state=state.get("provider") if self.resumes(phase) else None,
        )

    def asked(self, phase: str, wanted: AccessWindow) -> AccessWindow:
        """The window a resumed call of ``phase`` asked the vendor for: what it gets, though
        the grant may have moved since (the run of that change moves it next)."""
        asked = (self.ctx.state or {}).get("window")
        if not self.resumes(phase) or asked is None:
            return wanted
        starts, ends = parse_moment(asked["starts"]), parse_moment(asked["ends"])
        return replace(wanted, starts_at=starts, ends_at=ends)

    def pending(self, result: Pending, phase: str, window: AccessWindow | None = None) -> Pending:
        state: JSON = {"phase": phase, "provider": result.state}
        if window is not None:
            state["window"] = _window(window)
        return Pending(result.check_at, state)


def _vendor_credential(credential: CredentialRecord) -> VendorCredential:
    return VendorCredential(
        ids=credential.vendor_ids or {},
        resource=credential.resource,
        kind=CredentialKind(credential.kind),
        active=True,
        starts_at=credential.starts_at,
        ends_at=credential.ends_at,
    )


def _window(window: AccessWindow) -> JSON:
    return {"starts": window.starts_at.isoformat(), "ends": window.ends_at.isoformat()}
