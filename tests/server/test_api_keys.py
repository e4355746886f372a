"""API keys: scoped (read < write < admin), expiring, listed without the keys, revocable."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from latchflow.engine import Engine
from latchflow.plugin.clock import FakeClock
from latchflow.storage.api_keys import Scope

from .conftest import webhook_flow


def client_with(app: FastAPI, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"authorization": f"Bearer {key}"},
    )


async def test_each_scope_does_what_it_says_and_no_more(app: FastAPI, engine: Engine) -> None:
    engine.install_flow(webhook_flow())
    keys = {scope: engine.store.api_keys.create(scope.value, scope)[1] for scope in Scope}
    async with (
        client_with(app, keys[Scope.READ]) as reader,
        client_with(app, keys[Scope.WRITE]) as writer,
        client_with(app, keys[Scope.ADMIN]) as admin,
    ):
        assert (await reader.get("/api/flows")).status_code == 200
        refused = await reader.post("/api/flows/hooked/disable")
        assert refused.status_code == 403
        assert (
            refused.json()["error"].endswith("needs write")
            and "scope read" in refused.json()["error"]
        )
        assert (await writer.post("/api/flows/hooked/disable")).status_code == 200
        assert (await writer.get("/api/keys")).status_code == 403
        assert (await admin.get("/api/keys")).status_code == 200


async def test_keys_are_created_listed_without_the_key_and_revoked(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    created = await client.post("/api/keys", json={"name": "ops", "scope": "write"})
    assert created.status_code == 201
    key, key_id = created.json()["key"], created.json()["id"]
    listed = (await client.get("/api/keys")).json()
    assert {k["name"]: k["scope"] for k in listed} == {"tests": "admin", "ops": "write"}
    assert key not in str(listed) and all("key" not in k for k in listed)
    async with client_with(app, key) as ops:
        assert (await ops.get("/api/runs")).status_code == 200
        used = {k["name"]: k["last_used_at"] for k in (await client.get("/api/keys")).json()}
        assert used["ops"] is not None
        assert (await client.delete(f"/api/keys/{key_id}")).status_code == 204
        gone = await ops.get("/api/runs")
        assert gone.status_code == 401 and gone.json()["error"] == "unknown API key"
    assert (await client.delete(f"/api/keys/{key_id}")).status_code == 404


async def test_an_expired_key_is_refused(app: FastAPI, engine: Engine, clock: FakeClock) -> None:
    created_ok = await _create(app, engine, expires_in_days=1)
    async with client_with(app, created_ok) as holder:
        assert (await holder.get("/api/runs")).status_code == 200
        clock.advance(24 * 3600)
        expired = await holder.get("/api/runs")
    assert expired.status_code == 401 and "expired at" in expired.json()["error"]


async def _create(app: FastAPI, engine: Engine, **fields: object) -> str:
    _, admin = engine.store.api_keys.create("admin", Scope.ADMIN)
    async with client_with(app, admin) as client:
        answer = await client.post("/api/keys", json={"name": "temp", **fields})
    assert answer.status_code == 201, answer.text
    key: str = answer.json()["key"]
    return key
