"""Optimistic concurrency: a change made from an old version, or one that races another save,
is refused instead of silently undoing the other change."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from latchflow.engine import Engine
from latchflow.plugin.errors import ValidationError
from latchflow.storage.store import StaleWrite

from .conftest import webhook_flow


def test_concurrent_saves_never_take_the_live_version_back(engine: Engine) -> None:
    engine.install_flow(webhook_flow())
    versions = list(range(2, 42))
    random.Random(7).shuffle(versions)

    def save(version: int) -> int | None:
        try:
            document = {**webhook_flow(), "version": version, "name": f"v{version}"}
            return engine.install_flow(document).version
        except (StaleWrite, ValidationError):  # lost the race, or came after a newer one
            return None

    for _ in range(3):
        with ThreadPoolExecutor(8) as pool:
            acknowledged = [v for v in pool.map(save, versions) if v is not None]
        live = engine.store.get_flow("hooked")
        assert live is not None and acknowledged
        assert live.version == max(acknowledged)  # no acknowledged save was undone
        assert engine.flow("hooked").name == f"v{live.version}"
        versions = [v + 40 for v in versions]


async def test_a_flow_change_made_from_an_old_version_is_refused(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post("/api/flows", json=webhook_flow())
    assert created.status_code == 201 and created.headers["etag"] == '"1"'
    etag = (await client.get("/api/flows/hooked")).headers["etag"]
    second = await client.put(
        "/api/flows/hooked", json={**webhook_flow(), "version": 2}, headers={"if-match": etag}
    )
    assert second.status_code == 200 and second.headers["etag"] == '"2"'
    stale = await client.put(
        "/api/flows/hooked", json={**webhook_flow(), "version": 3}, headers={"if-match": etag}
    )
    assert stale.status_code == 412 and "changed by someone else" in stale.json()["error"]
    assert (await client.get("/api/flows/hooked")).json()["version"] == 2
    bad = await client.put(
        "/api/flows/hooked", json={**webhook_flow(), "version": 3}, headers={"if-match": "x"}
    )
    assert bad.status_code == 400 and bad.json()["where"] == "header if-match"


@pytest.mark.parametrize("racing", [False, True])
async def test_a_connection_change_made_from_an_old_revision_is_refused(
    client: httpx.AsyncClient, engine: Engine, racing: bool
) -> None:
    first = await client.put(
        "/api/connections/acme-1", json={"vendor": "acme", "config": {"api_key": "k1"}}
    )
    revision = first.json()["revision"]
    assert first.headers["etag"] == revision
    if racing:  # another writer saves between this change's read and its write
        record, config = engine.store.connection_config("acme-1")
        vendor = engine.registry.vendors["acme"]
        engine.store.save_connection("acme-1", vendor, "other", config, based_on=record.updated_at)
        with pytest.raises(StaleWrite):
            engine.store.save_connection(
                "acme-1", vendor, "mine", config, based_on=record.updated_at
            )
        return
    second = await client.put(
        "/api/connections/acme-1",
        json={"vendor": "acme", "config": {"site": "second"}},
        headers={"if-match": revision},
    )
    assert second.status_code == 200 and second.json()["revision"] != revision
    stale = await client.put(
        "/api/connections/acme-1",
        json={"vendor": "acme", "config": {"site": "third"}},
        headers={"if-match": revision},
    )
    assert stale.status_code == 412
    shown = (await client.get("/api/connections")).json()
    assert shown[0]["config"] == {"site": "second"}
