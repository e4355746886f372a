"""People, places and grants as a property manager changes them: each change is checked,
stored with the runs that carry it out at the vendors, and recorded in the audit log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from latchflow.phone import PhoneNumberError, e164
from latchflow.plugin.clock import Clock
from latchflow.plugin.errors import ErrorDetail, FatalError, ValidationError
from latchflow.plugin.host import Registry
from latchflow.plugin.timeparse import parse_moment
from latchflow.plugin.types import JSON
from latchflow.storage.access import Change, Target
from latchflow.storage.events import new_id
from latchflow.storage.models import CredentialRecord, GrantRecord, PersonRecord, PlaceRecord
from latchflow.storage.store import Store

RECONCILE_FLOW = "access-reconcile"
"""The flow whose runs reconcile credentials, one run per change (installed by the engine)."""


class Grants:
    """Changes to people, places and grants."""

    def __init__(
        self, store: Store, registry: Registry, clock: Clock, install_flows: Callable[[], None]
    ) -> None:
        self.store = store
        self.install_flows = install_flows
        self.records = store.access
        self.registry = registry
        self.clock = clock

    # people and places

    def save_person(self, data: JSON, path: str = "$") -> PersonRecord:
        errors: list[ErrorDetail] = []
        phone = data.get("phone")
        if phone:
            try:
                phone = e164(phone)
            except PhoneNumberError as exc:
                errors.append(ErrorDetail(f"{path}.phone", f"{exc.value!r} {exc}"))
        if not str(data.get("name") or "").strip():
            errors.append(ErrorDetail(f"{path}.name", "give the person's name"))
        if errors:
            raise ValidationError(errors)
        return self.records.save_person(
            PersonRecord(
                id=new_id(),
                name=data["name"].strip(),
                phone=phone or None,
                email=data.get("email") or None,
                reference=data.get("reference") or None,
            )
        )

    def save_place(self, data: JSON) -> PlaceRecord:
        """A place and its vendor resources, each on a connection of the resource kind's vendor."""
        errors: list[ErrorDetail] = []
        if not str(data.get("name") or "").strip():
            errors.append(ErrorDetail("$.name", "give the place a name"))
        timezone = data.get("timezone") or "UTC"
        _check_zone(timezone, "$.timezone", errors)
        resources = data.get("resources") or []
        for i, resource in enumerate(resources):
            errors += self._resource_errors(resource, f"$.resources[{i}]")
        if errors:
            raise ValidationError(errors)
        self.install_flows()
        return self.records.save_place(
            PlaceRecord(
                id=new_id(),
                name=data["name"].strip(),
                description=data.get("description"),
                timezone=timezone,
                resources=[
                    {"connection": r["connection"], "kind": r["kind"], "id": str(r["id"])}
                    for r in resources
                ],
            )
        )

    def _resource_errors(self, resource: Any, path: str) -> list[ErrorDetail]:
        if not isinstance(resource, dict) or not {"connection", "kind", "id"} <= resource.keys():
            return [ErrorDetail(path, "give the resource's connection, kind and id")]
        provider = self.registry.providers.get(resource["kind"])
        if provider is None:
            known = ", ".join(sorted(self.registry.providers)) or "none installed"
            return [ErrorDetail(f"{path}.kind", f"unknown resource kind; known: {known}")]
        record = self.store.get_connection(resource["connection"])
        if record is None:
            return [ErrorDetail(f"{path}.connection", "no such connection; add it first")]
        if record.vendor != provider.vendor:
            return [
                ErrorDetail(
                    f"{path}.connection",
                    f"is a {record.vendor!r} connection; {resource['kind']!r} resources are on"
                    f" {provider.vendor!r} connections",
                )
            ]
        return []

    # grants

    def grant(self, data: JSON, actor: str, key: str | None = None) -> GrantRecord:
        """Create a grant, or change the one with the same reference. ``key`` stands in for a
        missing reference, so that a retried request finds the grant it made."""
        reference = data.get("reference") or key
        existing = self.records.grant(reference) if reference else None
        if existing is not None and reference is not None and existing.reference == reference:
            return self.update(reference, data, actor, reopen=True)
        person = self.save_person(data.get("person") or {}, "$.person")
        grant = GrantRecord(
            id=new_id(),
            person_id=person.id,
            places=[],
            starts_at=self.clock.now(),
            ends_at=self.clock.now(),
            kinds=[],
            reference=reference,
        )
        return self._save(_apply(grant, data, self.records.place), actor, "grant.created")

    def update(
        self,
        key: str,
        data: JSON,
        actor: str,
        expected_version: int | None = None,
        reopen: bool = False,
    ) -> GrantRecord:
        """Change a grant; one that was cancelled or ended only when ``reopen`` (its reference
        granted again, as a booking that is reinstated)."""
        grant = self._find(key)
        if grant.state != "active":
            if not reopen:
                raise ValidationError.at(
                    "$.reference",
                    f"grant {key!r} is {grant.state}; grant its reference again to reopen it",
                )
            grant.state = "active"
        if data.get("person"):
            grant.person_id = self.save_person(data["person"], "$.person").id
        changed = _apply(grant, data, self.records.place)
        return self._save(changed, actor, "grant.changed", expected_version)

    def cancel(self, key: str, actor: str) -> GrantRecord:
        grant = self._find(key)
        if grant.state == "cancelled":
            return grant
        grant.state = "cancelled"
        return self._save(grant, actor, "grant.cancelled")

    def _find(self, key: str) -> GrantRecord:
        grant = self.records.grant(key)
        if grant is None:
            raise FatalError(f"no grant has the id or reference {key!r}")
        return grant

    def _save(
        self, grant: GrantRecord, actor: str, action: str, expected_version: int | None = None
    ) -> GrantRecord:
        targets = self.targets(grant) if grant.state == "active" else []
        flow = self.store.get_flow(RECONCILE_FLOW)
        if flow is None:
            self.install_flows()
            flow = self.store.get_flow(RECONCILE_FLOW)
        assert flow is not None
        now = self.clock.now()
        change = Change(actor, action, _summary)
        return self.records.save_grant(grant, targets, flow, now, change, expected_version)

    def targets(self, grant: GrantRecord) -> list[Target]:
        """A credential on every resource of every place, of the first kind the grant prefers
        that the resource can issue (its own first kind when the grant prefers none)."""
        targets: list[Target] = []
        for i, place_id in enumerate(grant.places):
            place = self.records.place(place_id)
            if place is None:
                raise ValidationError.at(f"$.places[{i}]", f"no place {place_id!r}")
            for resource in place.resources:
                provider = self.registry.providers.get(resource["kind"])
                if provider is None:
                    raise ValidationError.at(
                        f"$.places[{i}]",
                        f"place {place.name!r} has a {resource['kind']!r} resource and no"
                        " installed plugin provides that kind",
                    )
                kind = next(k for k in provider.resource_kinds if k.key == resource["kind"])
                offered = [str(c) for c in kind.credentials]
                preferred = [k for k in grant.kinds if k in offered] or offered
                targets.append(
                    Target(place.id, resource["connection"], kind.key, resource["id"], preferred[0])
                )
        return targets


def _apply(grant: GrantRecord, data: JSON, find_place: Any) -> GrantRecord:
    """The grant with the window, places and kinds in ``data`` (those it leaves out kept)."""
    errors: list[ErrorDetail] = []
    if "places" in data:
        places = []
        for i, key in enumerate(data["places"]):
            place = find_place(key)
            if place is None:
                errors.append(ErrorDetail(f"$.places[{i}]", f"no place is named {key!r}"))
            else:
                places.append(place.id)
        grant.places = places
        if places and not data.get("timezone") and grant.timezone == "UTC":
            grant.timezone = find_place(places[0]).timezone
    for field, column in (("starts", "starts_at"), ("ends", "ends_at")):
        if field in data:
            try:
                moment = parse_moment(data[field]).replace(microsecond=0)  # vendors keep seconds
                setattr(grant, column, moment)
            except FatalError as exc:
                errors.append(ErrorDetail(f"$.{field}", str(exc)))
    if data.get("timezone"):
        grant.timezone = data["timezone"]
        _check_zone(grant.timezone, "$.timezone", errors)
    if "weekly" in data:
        grant.weekly = data["weekly"]
    if "kinds" in data:
        grant.kinds = list(data["kinds"])
    if not errors and grant.ends_at <= grant.starts_at:
        errors.append(ErrorDetail("$.ends", "must be after starts"))
    if errors:
        raise ValidationError(errors)
    return grant


def _check_zone(name: str, path: str, errors: list[ErrorDetail]) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        errors.append(ErrorDetail(path, f"{name!r} is not an IANA time zone (e.g. Europe/Oslo)"))


def _summary(grant: GrantRecord) -> JSON:
    return {
        "reference": grant.reference,
        "person": grant.person_id,
        "places": grant.places,
        "starts": grant.starts_at.isoformat(),
        "ends": grant.ends_at.isoformat(),
        "weekly": grant.weekly,
        "state": grant.state,
        "version": grant.version,
    }


def credential_view(credential: CredentialRecord, place: str) -> JSON:
    return {
        "id": credential.id,
        "place": place,
        "resource_kind": credential.resource_kind,
        "resource": credential.resource,
        "connection": credential.connection_id,
        "kind": credential.kind,
        "state": credential.state,
        "wanted": credential.wanted,
        "starts": credential.starts_at.isoformat() if credential.starts_at else None,
        "ends": credential.ends_at.isoformat() if credential.ends_at else None,
        "vendor_ids": credential.vendor_ids,
        "vendor_status": credential.vendor_status,
        "delivered": credential.delivered,
        "attempts": credential.attempts,
        "error": credential.error,
        "last_verified_at": (
            credential.last_verified_at.isoformat() if credential.last_verified_at else None
        ),
    }
