"""The access API: people, places, grants (If-Match, cancel, history), revealing a code (admin,
audited), "why can't P open X", and the audit chain's verification; over the ASGI app, with a
throwaway credential provider on the test vendor ``acme``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from latchflow import (
    CredentialKind,
    CredentialProvider,
    CredentialRequest,
    ResourceKind,
    RunContext,
    VendorCredential,
    hookimpl,
)
from latchflow.engine import Engine
from latchflow.plugin.clock import FakeClock
from latchflow.plugin.host import load_registry
from latchflow.server.state import ServerState
from latchflow.storage.api_keys import Scope
from latchflow.storage.database import Settings

from . import fakeplugin


class Doors:
    """Acme doors take PINs: issued at once, kept in ``issued`` by resource."""

    def __init__(self) -> None:
        self.issued: dict[str, list[VendorCredential]] = {}

    async def issue(self, ctx: RunContext, request: CredentialRequest) -> VendorCredential:
        made = VendorCredential(
            ids={"pin": request.credential_id},
            resource=request.resource,
            kind=request.kind,
            active=True,
            starts_at=request.window.starts_at,
            ends_at=request.window.ends_at,
            secret="482913",
            delivered=True,
        )
        self.issued.setdefault(request.resource, []).append(made)
        return made

    async def revoke(self, ctx: RunContext, issued: VendorCredential) -> None:
        kept = self.issued.get(issued.resource, [])
        self.issued[issued.resource] = [c for c in kept if c.ids != issued.ids]

    async def inspect(self, ctx: RunContext, kind: str, resource: str) -> list[VendorCredential]:
        return list(self.issued.get(resource, []))

    @hookimpl
    def register_credential_providers(self, register: Callable[[CredentialProvider], None]) -> None:
        door = ResourceKind("acme.door", "Door", "An Acme door", (CredentialKind.PIN,))
        register(CredentialProvider("acme", (door,), self.issue, self.revoke, self.inspect))


@pytest.fixture
def engine(tmp_path: Path, clock: FakeClock) -> Iterator[Engine]:
    registry = load_registry(extra=[fakeplugin, Doors()])
    engine = Engine(Settings.from_environment(tmp_path / "data"), registry=registry, clock=clock)
    yield engine
    engine.store.engine.dispose()


@pytest.fixture
async def keys(engine: Engine) -> dict[str, str]:
    await engine.connections.save("acme-1", "acme", "Acme", {"api_key": "k1"})
    return {scope: engine.store.api_keys.create(scope, scope)[1] for scope in Scope}


@pytest.fixture
async def api(app: FastAPI, keys: dict[str, str]) -> AsyncIterator[Callable[..., Any]]:
    """``api(method, path, scope="write", **kwargs)``: a request with a key of that scope."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:

        async def call(method: str, path: str, scope: str = "write", **kw: Any) -> httpx.Response:
            headers = {"authorization": f"Bearer {keys[scope]}", **kw.pop("headers", {})}
            return await client.request(method, path, headers=headers, **kw)

        yield call


def booking(clock: FakeClock, **changes: Any) -> dict[str, Any]:
    start = clock.now() + timedelta(hours=2)
    return {
        "reference": "B-1001",
        "person": {"name": "Ada Lovelace", "phone": "+47 998 87 766", "reference": "guest-7"},
        "places": ["Room 12"],
        "starts": start.isoformat(),
        "ends": (start + timedelta(days=2)).isoformat(),
    } | changes


ROOM = {
    "name": "Room 12",
    "timezone": "Europe/Oslo",
    "resources": [{"connection": "acme-1", "kind": "acme.door", "id": "D-12"}],
}


async def test_places_and_people_are_saved_and_found(api: Any, state: ServerState) -> None:
    assert state.engine.store.get_flow("access-verify") is None  # access not in use yet
    await state.scheduler.start()
    try:
        created = await api("POST", "/api/places", json=ROOM)
        assert created.status_code == 201, created.text
        assert "schedule:access-verify" in state.scheduler.jobs()
    finally:
        state.scheduler.shutdown()
    again = await api("POST", "/api/places", json=ROOM | {"description": "2nd floor"})
    assert again.status_code == 200 and again.json()["id"] == created.json()["id"]
    assert [p["name"] for p in (await api("GET", "/api/places", "read")).json()] == ["Room 12"]
    shown = (await api("GET", "/api/places/Room 12", "read")).json()
    assert shown["description"] == "2nd floor" and shown["resources"][0]["id"] == "D-12"

    ada = {"name": "Ada", "phone": "+47 998 87 766", "reference": "guest-7"}
    assert (await api("POST", "/api/people", json=ada)).status_code == 201
    renamed = await api("POST", "/api/people", json=ada | {"name": "Ada Lovelace"})
    assert renamed.status_code == 200 and renamed.json()["phone"] == "+4799887766"
    assert (await api("GET", "/api/people/guest-7", "read")).json()["name"] == "Ada Lovelace"
    assert len((await api("GET", "/api/people", "read")).json()) == 1


async def test_invalid_bodies_are_422_with_json_paths(api: Any, clock: FakeClock) -> None:
    place = {
        "name": "Room 13",
        "timezone": "Mars/Olympus",
        "resources": [
            {"connection": "acme-1", "kind": "acme.window", "id": "W-1"},
            {"connection": "nowhere", "kind": "acme.door", "id": "D-13"},
        ],
    }
    refused = await api("POST", "/api/places", json=place)
    assert refused.status_code == 422
    problems = {e["path"]: e["message"] for e in refused.json()["errors"]}
    assert set(problems) == {"$.timezone", "$.resources[0].kind", "$.resources[1].connection"}
    assert "known: acme.door" in problems["$.resources[0].kind"]

    assert (await api("POST", "/api/places", json=ROOM)).status_code == 201
    schema = await api("POST", "/api/grants", json={"person": {"name": "Ada", "age": 36}})
    assert schema.status_code == 422
    paths = {e["path"] for e in schema.json()["errors"]}
    assert {"$.places", "$.starts", "$.ends", "$.person"} <= paths, schema.json()
    wrong = booking(clock, places=["Room 99"], ends=booking(clock)["starts"])
    wrong["person"]["phone"] = "12"
    semantic = await api("POST", "/api/grants", json=wrong)
    assert semantic.status_code == 422
    problems = {e["path"]: e["message"] for e in semantic.json()["errors"]}
    assert problems == {
        "$.person.phone": "'12' is not a phone number; give a region or a +country code"
    }
    wrong["person"]["phone"] = "+4799887766"
    semantic = await api("POST", "/api/grants", json=wrong)
    problems = {e["path"]: e["message"] for e in semantic.json()["errors"]}
    assert problems == {"$.places[0]": "no place is named 'Room 99'"}
    moments = await api("POST", "/api/grants", json=booking(clock, ends="next week"))
    assert [e["path"] for e in moments.json()["errors"]] == ["$.ends"]
    far = await api("POST", "/api/grants", json=booking(clock, starts=1e20, timezone="America"))
    assert far.status_code == 422
    assert [e["path"] for e in far.json()["errors"]] == ["$.starts", "$.timezone"]
    unknown_state = await api("GET", "/api/grants?state=paused", "read")
    assert unknown_state.status_code == 422
    assert unknown_state.json()["errors"][0]["path"] == "query state"


async def test_a_grant_is_made_changed_and_cancelled(
    api: Any, clock: FakeClock, state: ServerState
) -> None:
    assert (await api("POST", "/api/places", json=ROOM)).status_code == 201
    made = await api("POST", "/api/grants", json=booking(clock))
    assert made.status_code == 201 and made.headers["etag"] == '"1"', made.text
    grant = made.json()
    assert grant["person"] == "Ada Lovelace" and grant["places"] == ["Room 12"]
    assert [c["state"] for c in grant["credentials"]] == ["issuing"]
    await state.dispatcher.drain()
    shown = await api("GET", "/api/grants/B-1001", "read")
    assert [c["state"] for c in shown.json()["credentials"]] == ["issued"]

    later = booking(clock, starts=(clock.now() + timedelta(days=1)).isoformat())
    again = await api("POST", "/api/grants", json=later)
    assert again.status_code == 200 and again.json()["version"] == 2
    stale = await api(
        "PATCH", "/api/grants/B-1001", json={"kinds": ["pin"]}, headers={"if-match": '"1"'}
    )
    assert stale.status_code == 412 and stale.json()["where"] == "header if-match"
    assert "version 2, not 1" in stale.json()["error"]
    garbled = await api(
        "PATCH", "/api/grants/B-1001", json={"kinds": ["pin"]}, headers={"if-match": "v2"}
    )
    assert garbled.status_code == 400
    ends = (clock.now() + timedelta(days=5)).isoformat()
    patched = await api(
        "PATCH", f"/api/grants/{grant['id']}", json={"ends": ends}, headers={"if-match": '"2"'}
    )
    assert patched.status_code == 200 and patched.json()["version"] == 3, patched.text
    assert patched.headers["etag"] == '"3"'
    empty = await api("PATCH", "/api/grants/B-1001", json={})
    assert empty.status_code == 422 and empty.json()["errors"][0]["path"] == "$"

    listed = await api("GET", "/api/grants?person=guest-7&state=active", "read")
    assert [g["reference"] for g in listed.json()] == ["B-1001"]
    assert (await api("GET", "/api/grants?reference=B-2", "read")).json() == []
    by_reference = await api("GET", "/api/grants?reference=B-1001&state=active", "read")
    assert [g["id"] for g in by_reference.json()] == [grant["id"]]
    assert (await api("GET", "/api/grants?reference=B-1001&state=ended", "read")).json() == []
    cancelled = await api("POST", "/api/grants/B-1001/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    await state.dispatcher.drain()
    assert [
        c["state"] for c in (await api("GET", "/api/grants/B-1001", "read")).json()["credentials"]
    ] == ["revoked"]
    late = await api("PATCH", "/api/grants/B-1001", json={"ends": ends})
    assert late.status_code == 409 and "cancelled" in late.json()["error"]

    history = (await api("GET", "/api/grants/B-1001/history", "read")).json()
    actions = [e["action"] for e in history]
    assert actions[0] == "credential.revoked" and actions[-1] == "grant.created", actions
    assert {"grant.changed", "grant.cancelled", "credential.issued"} <= set(actions)
    assert [e["seq"] for e in history] == sorted((e["seq"] for e in history), reverse=True)
    assert history[-1]["actor"].startswith("api key ") and "(write)" in history[-1]["actor"]


async def test_missing_items_are_404_naming_the_key(api: Any) -> None:
    for path, where in (
        ("/api/grants/B-404", "path grant_key"),
        ("/api/grants/B-404/history", "path grant_key"),
        ("/api/people/nobody", "path person_key"),
        ("/api/places/Attic", "path place_key"),
        ("/api/grants?person=nobody", "query person"),
    ):
        answer = await api("GET", path, "read")
        assert answer.status_code == 404 and answer.json()["where"] == where, path
    for method, path in (("POST", "/api/grants/B-404/cancel"), ("PATCH", "/api/grants/B-404")):
        answer = await api(method, path, json={"ends": "2030-01-01T00:00:00Z"})
        assert answer.status_code == 404, path
        assert answer.json()["error"] == "no grant has the id or reference 'B-404'"
    missing = await api("POST", "/api/credentials/c-404/reveal", "admin")
    assert missing.status_code == 404 and "'c-404'" in missing.json()["error"]


async def test_scopes_and_an_audited_reveal(
    api: Any, clock: FakeClock, state: ServerState, engine: Engine
) -> None:
    assert (await api("POST", "/api/places", "read", json=ROOM)).status_code == 403
    assert (await api("POST", "/api/places", json=ROOM)).status_code == 201
    refused = await api("POST", "/api/grants", "read", json=booking(clock))
    assert refused.status_code == 403 and refused.json()["where"] == "header authorization"
    grant = (await api("POST", "/api/grants", json=booking(clock))).json()
    await state.dispatcher.drain()
    (credential,) = grant["credentials"]
    reveal = f"/api/credentials/{credential['id']}/reveal"
    assert (await api("POST", reveal, "write")).status_code == 403
    assert (await api("GET", "/api/audit/verify", "write")).status_code == 403

    revealed = await api("POST", reveal, "admin")
    assert revealed.status_code == 200 and revealed.json()["code"] == "482913"
    (entry,) = engine.store.audit.events(1)
    assert entry.action == "credential.revealed"
    assert entry.subject == f"credential {credential['id']}"
    assert "(admin)" in entry.actor
    shown = (await api("GET", "/api/grants/B-1001", "read")).text
    assert "482913" not in shown


async def test_why_names_the_broken_link(api: Any, clock: FakeClock, state: ServerState) -> None:
    assert (await api("POST", "/api/places", json=ROOM)).status_code == 201
    assert (await api("POST", "/api/grants", json=booking(clock))).status_code == 201
    await state.dispatcher.drain()
    inside = (clock.now() + timedelta(hours=3)).isoformat().replace("+00:00", "Z")
    why, ada = "/api/access/explain", {"person": "Ada Lovelace", "place": "Room 12"}
    early = (await api("GET", why, "read", params=ada)).json()
    assert early["can_open"] is False and early["broken"] == "window"
    assert "has not started" in early["reason"]
    ok = (await api("GET", why, "read", params=ada | {"at": inside})).json()
    assert ok["can_open"] is True and all(link["ok"] for link in ok["links"]), ok
    assert [link["link"] for link in ok["links"]][:3] == [
        "grant",
        "credential on acme.door D-12",
        "vendor",
    ]
    nobody = (await api("GET", "/api/access/explain?person=Bob&place=Room 12", "read")).json()
    assert nobody["broken"] == "person" and "'Bob'" in nobody["reason"]
    bad = await api("GET", why, "read", params=ada | {"at": "tomorrow"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["path"] == "query at"


async def test_audit_verify_finds_an_edited_entry(
    api: Any, clock: FakeClock, engine: Engine
) -> None:
    assert (await api("POST", "/api/places", json=ROOM)).status_code == 201
    assert (await api("POST", "/api/grants", json=booking(clock))).status_code == 201
    assert (await api("POST", "/api/grants/B-1001/cancel")).status_code == 200
    verified = (await api("GET", "/api/audit/verify", "admin")).json()
    assert verified["ok"] is True and verified["entries"] == 2 and verified["broken"] is None
    assert len(verified["head"]) == 64

    first = min(engine.store.audit.events(10), key=lambda e: e.seq)
    with engine.store.engine.begin() as connection:
        connection.execute(
            text("UPDATE audit_events SET detail = :detail WHERE seq = :seq"),
            {"detail": '{"places": ["Attic"]}', "seq": first.seq},
        )
    broken = (await api("GET", "/api/audit/verify", "admin")).json()
    assert broken["ok"] is False and broken["entries"] == 0
    assert broken["broken"]["seq"] == first.seq and broken["broken"]["id"] == first.id
    assert "edited" in broken["broken"]["problem"]
