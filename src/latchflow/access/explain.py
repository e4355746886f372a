""" "Why can't P open X at T?": the chain grant → credential → vendor, with the first broken
link named in plain words."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from latchflow.access.parts import Part, provider_context
from latchflow.access.windows import grant_window, next_occurrence
from latchflow.plugin.errors import LatchflowError
from latchflow.plugin.types import JSON
from latchflow.storage.models import CredentialRecord, GrantRecord

VENDOR_TIMEOUT = 10.0
"""Seconds to wait for a vendor's answer while explaining."""


@dataclass
class Explanation:
    """Each link checked, in order; ``broken`` is the first that fails, None if all hold."""

    person: str
    place: str
    at: datetime
    links: list[JSON] = field(default_factory=list)
    broken: str | None = None

    def ok(self, link: str, detail: str) -> None:
        self.links.append({"link": link, "ok": True, "detail": detail})

    def fail(self, link: str, detail: str) -> Explanation:
        self.links.append({"link": link, "ok": False, "detail": detail})
        self.broken = self.broken or link
        return self

    def as_json(self) -> JSON:
        reason = next((x["detail"] for x in self.links if not x["ok"]), None)
        return {
            "person": self.person,
            "place": self.place,
            "at": self.at.isoformat(),
            "can_open": self.broken is None,
            "broken": self.broken,
            "reason": reason or f"{self.person} can open {self.place} at {self.at.isoformat()}",
            "links": self.links,
        }


class Explainer(Part):
    async def explain(self, person_key: str, place_key: str, at: datetime | None = None) -> JSON:
        return (await self._explain(person_key, place_key, at or self.clock.now())).as_json()

    async def _explain(self, person_key: str, place_key: str, at: datetime) -> Explanation:
        person, place = self.records.person(person_key), self.records.place(place_key)
        found = Explanation(
            person.name if person else person_key, place.name if place else place_key, at
        )
        if person is None:
            return found.fail("person", f"nobody is known by the name or reference {person_key!r}")
        if place is None:
            return found.fail("place", f"no place is named {place_key!r}")
        grants = [g for g in self.records.grants(person_id=person.id) if place.id in g.places]
        if not grants:
            return found.fail("grant", f"no grant lets {person.name} open {place.name}")
        grant = _closest(grants, at)
        if not self._window(found, grant, at):
            for credential in self.records.credentials(grant_id=grant.id):
                if credential.place_id == place.id:
                    self._revocation(found, credential)
            return found
        credentials = [
            c for c in self.records.credentials(grant_id=grant.id) if c.place_id == place.id
        ]
        if not credentials:
            return found.fail("credential", f"{place.name} has no vendor resource to issue on")
        for credential in credentials:
            await self._credential(found, credential, at)
        return found

    def _window(self, found: Explanation, grant: GrantRecord, at: datetime) -> bool:
        name = grant.reference or grant.id
        if grant.state == "cancelled":
            found.fail("grant", f"grant {name} was cancelled at {grant.updated_at.isoformat()}")
            return False
        if at < grant.starts_at:
            found.fail(
                "window",
                f"grant {name}'s window has not started: it starts at"
                f" {grant.starts_at.isoformat()}",
            )
            return False
        if at >= grant.ends_at:
            found.fail("window", f"grant {name} ended at {grant.ends_at.isoformat()}")
            return False
        window = grant_window(grant)
        if window.weekly is not None:
            occurrence = next_occurrence(window, at)
            if occurrence is None or occurrence[0] > at:
                found.fail(
                    "window",
                    f"{at.isoformat()} is outside grant {name}'s weekly hours"
                    f" ({', '.join(window.weekly.days)} {window.weekly.start} to {window.weekly.end})",
                )
                return False
        found.ok("grant", f"grant {name} covers {at.isoformat()}")
        return True

    def _revocation(self, found: Explanation, credential: CredentialRecord) -> None:
        """Whether a credential the grant no longer wants is gone at its vendor."""
        link = f"credential on {credential.resource_kind} {credential.resource}"
        if credential.state in ("revoked", "expired", "failed"):
            found.ok(link, f"{credential.state} at {credential.updated_at.isoformat()}")
        else:
            error = f" ({credential.error})" if credential.error else ""
            found.fail(link, f"{credential.state}: the vendor has not confirmed it gone yet{error}")

    async def _credential(
        self, found: Explanation, credential: CredentialRecord, at: datetime
    ) -> None:
        link = f"credential on {credential.resource_kind} {credential.resource}"
        state = credential.state
        if state == "failed":
            found.fail(link, f"the vendor refused to issue it: {credential.error}")
            return
        if state == "issuing":
            error = f"; the last attempt failed: {credential.error}" if credential.error else ""
            found.fail(link, f"not issued yet ({credential.attempts} attempts so far){error}")
            return
        if state in ("revoking", "revoked", "expired"):
            found.fail(link, f"{state} at {credential.updated_at.isoformat()}")
            return
        found.ok(link, f"{state} ({credential.kind}, vendor ids {credential.vendor_ids})")
        await self._vendor(found, credential, link, at)

    async def _vendor(
        self, found: Explanation, credential: CredentialRecord, link: str, at: datetime
    ) -> None:
        provider = self.registry.providers.get(credential.resource_kind)
        if provider is None:
            found.fail(link, f"no installed plugin provides {credential.resource_kind!r}")
            return
        try:
            live = await self.connections.get(credential.connection_id)
            ctx = provider_context(live.connection, self.clock, f"explain:{credential.id}")
            found_at_vendor = await asyncio.wait_for(
                provider.inspect(ctx, credential.resource_kind, credential.resource), VENDOR_TIMEOUT
            )
        except (LatchflowError, TimeoutError) as exc:
            found.fail("vendor", f"the vendor could not be asked: {exc or 'no answer in time'}")
            return
        mine = [v for v in found_at_vendor if v.ids == credential.vendor_ids]
        if not mine or not mine[0].active:
            found.fail(
                "vendor",
                "the vendor no longer has it active (deleted at the vendor?);"
                " the next verification issues it again",
            )
            return
        vendor = mine[0]
        status = f" ({vendor.status})" if vendor.status else ""
        if vendor.delivered is False:
            pending = f"the vendor has not delivered it to the device yet{status}"
            if at <= self.clock.now():
                found.fail("delivery", pending)
                return
            found.ok("delivery", f"{pending}; it has until {at.isoformat()}")
        found.ok("vendor", f"active at the vendor{status}")
        subject = f"credential {credential.id}"
        seen = [e for e in self.store.audit.events(50, subject) if e.action == "credential.event"]
        if seen:
            detail = seen[0].detail or {}
            found.ok(
                "device", f"last vendor event {detail.get('kind')} at {seen[0].at.isoformat()}"
            )
        else:
            found.ok("device", "no vendor event about it yet")


def _closest(grants: list[GrantRecord], at: datetime) -> GrantRecord:
    """The grant that covers ``at`` if any (active first), else the one nearest to it."""

    def distance(g: GrantRecord) -> tuple[int, float]:
        inside = g.starts_at <= at < g.ends_at
        gap = (
            0.0
            if inside
            else min(abs((g.starts_at - at).total_seconds()), abs((g.ends_at - at).total_seconds()))
        )
        return (0 if inside and g.state == "active" else 1 if inside else 2, gap)

    return min(grants, key=distance)
