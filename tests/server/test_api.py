"""The management API: auth, flows, connections, runs, events, catalog, vendor webhooks, OpenAPI."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from latchflow.engine import Engine
from latchflow.server import trigger_urls, vendor_webhooks
from latchflow.server.api import access, audit, catalog, connections, flows, keys, nodes, runs
from latchflow.server.state import ServerState
from latchflow.testing import assert_no_secret

from .conftest import webhook_flow


async def test_healthz_is_open_and_api_needs_a_key(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz", headers={"authorization": ""})).json()["status"] == "ok"
    anonymous = await client.get("/api/flows", headers={"authorization": ""})
    assert anonymous.status_code == 401 and anonymous.json()["where"] == "header authorization"
    wrong = await client.get("/api/flows", headers={"authorization": "Bearer lf_nope"})
    assert wrong.status_code == 401


async def test_flow_lifecycle(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/flows", json=webhook_flow())
    assert created.status_code == 201
    assert created.json()["trigger_url"].startswith("http://testserver/hooks/hooked/")
    changed = webhook_flow() | {"name": "Renamed"}
    refused = await client.put("/api/flows/hooked", json=changed)
    assert refused.status_code == 422 and refused.json()["errors"][0]["path"] == "$.version"
    assert (await client.put("/api/flows/hooked", json=changed | {"version": 2})).status_code == 200
    versions = (await client.get("/api/flows/hooked/versions")).json()
    assert [v["version"] for v in versions] == [2, 1]
    assert (await client.post("/api/flows/hooked/disable")).json()["enabled"] is False
    assert (await client.post("/api/flows/hooked/enable")).json()["enabled"] is True
    assert (await client.delete("/api/flows/hooked")).status_code == 204
    missing = await client.get("/api/flows/hooked")
    assert missing.status_code == 404 and missing.json()["error"] == "no flow 'hooked'"


async def test_a_deleted_flow_created_again_runs_its_new_document(
    client: httpx.AsyncClient, state: ServerState
) -> None:
    assert (await client.post("/api/flows", json=webhook_flow())).status_code == 201
    first = (await client.post("/hooks/hooked/" + _token(state), json={"n": 1})).json()
    await state.dispatcher.drain()
    assert (await client.delete("/api/flows/hooked")).status_code == 204

    other = webhook_flow()
    other["steps"][0]["input"] = {"values": {"second": True}}
    refused = await client.post("/api/flows", json=other)
    assert refused.status_code == 422, refused.text
    (problem,) = refused.json()["errors"]
    assert problem["path"] == "$.version" and "version 2 or higher" in problem["message"]
    assert (await client.post("/api/flows", json=other | {"version": 2})).status_code == 201
    second = (await client.post("/hooks/hooked/" + _token(state), json={"n": 2})).json()
    await state.dispatcher.drain()
    outputs = [
        (await client.get(f"/api/runs/{r['run_id']}")).json()["output"] for r in (first, second)
    ]
    assert outputs == [{"got": {"n": 1}}, {"second": True}]


def _token(state: ServerState) -> str:
    record = state.engine.store.get_flow("hooked")
    assert record is not None
    return record.hook_token


async def test_invalid_flow_is_422_with_json_paths(client: httpx.AsyncClient) -> None:
    document = webhook_flow()
    document["steps"][0]["action"] = "core.sett"
    response = await client.post("/api/flows", json=document)
    assert response.status_code == 422
    (problem,) = response.json()["errors"]
    assert problem["path"] == "$.steps[0].action" and "core.set" in problem["message"]


async def test_connection_secrets_are_write_only(client: httpx.AsyncClient) -> None:
    saved = await client.put(
        "/api/connections/acme-1",
        json={"vendor": "acme", "config": {"api_key": "s3cr3t-key", "site": "oslo"}},
    )
    assert saved.status_code == 200, saved.text
    listed = await client.get("/api/connections")
    assert_no_secret(saved.text + listed.text, ["s3cr3t-key"])
    assert listed.json()[0]["config"] == {"site": "oslo"}
    assert (await client.post("/api/connections/acme-1/test")).json() == {
        "ok": True,
        "result": {"account": "acme demo"},
        "error": None,
    }
    await client.put(
        "/api/connections/acme-1", json={"vendor": "acme", "config": {"api_key": "bad"}}
    )
    failed = (await client.post("/api/connections/acme-1/test")).json()
    assert failed["ok"] is False and "api_key" in failed["error"]
    invalid = await client.put("/api/connections/acme-2", json={"vendor": "acme", "config": {}})
    assert invalid.status_code == 422 and invalid.json()["errors"][0]["path"] == "$.config.api_key"
    assert (await client.delete("/api/connections/acme-1")).status_code == 204


async def test_runs_filters_replay_and_cancel(
    client: httpx.AsyncClient, engine: Engine, state: ServerState
) -> None:
    engine.install_flow(
        {
            "id": "flaky",
            "name": "Flaky",
            "version": 1,
            "trigger": {"type": "manual"},
            "steps": [{"id": "f", "action": "test.flaky", "retry": {"max_attempts": 1}}],
        }
    )
    started = (await client.post("/api/flows/flaky/runs", json={"data": {"x": 1}})).json()
    await state.dispatcher.drain()
    failed = (await client.get("/api/runs", params={"status": "failed", "flow_id": "flaky"})).json()
    assert [r["id"] for r in failed] == [started["run_id"]]
    replayed = await client.post(f"/api/runs/{started['run_id']}/replay", json={})
    assert replayed.json()["status"] == "queued"
    await state.dispatcher.drain()
    detail = (await client.get(started["status_url"])).json()
    assert detail["status"] == "succeeded" and detail["steps"][0]["attempts"] == 1
    second = (await client.post("/api/flows/flaky/runs", json={})).json()
    cancelled = await client.post(f"/api/runs/{second['run_id']}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    assert (await client.post(f"/api/runs/{second['run_id']}/cancel")).status_code == 409
    assert (await client.get("/api/runs/nope")).status_code == 404


async def test_vendor_webhook_routes_events_to_listening_flows(
    client: httpx.AsyncClient, engine: Engine, state: ServerState
) -> None:
    created = await client.put(
        "/api/connections/acme-1", json={"vendor": "acme", "config": {"api_key": "k1"}}
    )
    url = created.json()["webhook_url"].removeprefix("http://testserver")
    assert url.startswith("/vendors/acme/acme-1/")
    for flow_id, door in (("front", "front"), ("back", "back")):
        engine.install_flow(
            {
                "id": flow_id,
                "name": flow_id,
                "version": 1,
                "trigger": {"type": "acme.door_opened", "input": {"door": door}},
                "steps": [{"id": "c", "action": "test.count"}],
            }
        )
    refused = await client.post(url, json={"id": "e1", "door": "front"})
    assert refused.status_code == 401 and "x-acme-token" in refused.json()["error"]
    headers = {"x-acme-token": "k1"}
    result = (await client.post(url, json={"id": "e1", "door": "front"}, headers=headers)).json()
    assert [(r["flow_id"], r["created"]) for r in result["runs"]] == [("front", True)]
    assert [f["flow_id"] for f in result["filtered"]] == ["back"]
    again = (await client.post(url, json={"id": "e1", "door": "front"}, headers=headers)).json()
    assert again["runs"][0]["created"] is False
    why = (await client.get("/api/events", params={"flow_id": "back"})).json()
    assert why[0]["status"] == "filtered" and "door" in why[0]["reason"]


FORGED = {"id": "mallory", "door": "front"}


@pytest.mark.parametrize(
    "path",
    [
        "/vendors/acme/acme-1",  # the URL before connections had tokens
        "/vendors/acme/acme-1/guessed-token",
        "/vendors/acme/nope/{token}",  # a token, but for another connection id
        "/vendors/other/acme-1/{token}",
    ],
)
async def test_a_forged_vendor_webhook_is_refused_and_stores_nothing(
    client: httpx.AsyncClient, engine: Engine, path: str
) -> None:
    created = await client.put(
        "/api/connections/acme-1", json={"vendor": "acme", "config": {"api_key": "k1"}}
    )
    token = created.json()["webhook_url"].rsplit("/", 1)[1]
    engine.install_flow(
        {
            "id": "front",
            "name": "front",
            "version": 1,
            "trigger": {"type": "acme.door_opened", "input": {"door": "front"}},
            "steps": [{"id": "c", "action": "test.count"}],
        }
    )
    forged = await client.post(
        path.format(token=token), json=FORGED, headers={"x-acme-token": "k1"}
    )
    assert forged.status_code == 404
    assert "acme-1" not in forged.text and "nope" not in forged.text  # tells no ids apart
    assert (await client.get("/api/events")).json() == []
    assert (await client.get("/api/runs")).json() == []


async def test_a_rotated_webhook_token_retires_the_old_url(client: httpx.AsyncClient) -> None:
    created = await client.put(
        "/api/connections/acme-1", json={"vendor": "acme", "config": {"api_key": "k1"}}
    )
    old = created.json()["webhook_url"]
    rotated = await client.post("/api/connections/acme-1/rotate-webhook-token")
    new = rotated.json()["webhook_url"]
    assert rotated.status_code == 200 and new != old
    headers = {"x-acme-token": "k1"}
    assert (await client.post(old, json=FORGED, headers=headers)).status_code == 404
    assert (await client.post(new, json=FORGED, headers=headers)).status_code == 200
    shown = (await client.get("/api/connections")).json()
    assert shown[0]["webhook_url"] is None  # the token is shown once


async def test_webhooks_from_outside_the_connections_networks_are_refused(
    client: httpx.AsyncClient,
) -> None:
    created = await client.put(
        "/api/connections/acme-1",
        json={"vendor": "acme", "config": {"api_key": "k1"}, "webhook_sources": ["203.0.113.0/24"]},
    )
    url = created.json()["webhook_url"]
    refused = await client.post(url, json=FORGED, headers={"x-acme-token": "k1"})
    assert refused.status_code == 403 and "203.0.113.0/24" in refused.json()["error"]
    assert (await client.get("/api/events")).json() == []
    bad = await client.put(
        "/api/connections/acme-1",
        json={"vendor": "acme", "config": {}, "webhook_sources": ["not-a-network"]},
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["path"] == "$.webhook_sources[0]"
    opened = await client.put(
        "/api/connections/acme-1",
        json={"vendor": "acme", "config": {}, "webhook_sources": ["127.0.0.0/8", "testclient/32"]},
    )
    assert opened.status_code == 422  # every source is checked
    anywhere = await client.put(
        "/api/connections/acme-1", json={"vendor": "acme", "config": {}, "webhook_sources": []}
    )
    assert anywhere.json()["webhook_sources"] is None
    assert (await client.post(url, json=FORGED, headers={"x-acme-token": "k1"})).status_code == 200


async def test_catalog_lists_components_with_schemas_and_samples(client: httpx.AsyncClient) -> None:
    catalog = (await client.get("/api/catalog")).json()
    actions = {a["key"]: a for a in catalog["actions"]}
    assert actions["http.request"]["input_schema"]["required"] == ["url"]
    triggers = {t["key"]: t for t in catalog["triggers"]}
    assert triggers["acme.door_opened"]["polls"] and triggers["webhook"]["sample"]
    assert [v["key"] for v in catalog["vendors"]] == ["http", "acme"]  # http: built in


def test_openapi_lists_every_route_with_request_and_response_schemas(app: FastAPI) -> None:
    document: dict[str, Any] = app.openapi()
    mounted = [
        ("", app.router),
        ("", trigger_urls.router),
        ("", vendor_webhooks.router),
        ("/api", flows.router),
        ("/api", runs.router),
        ("/api", connections.router),
        ("/api", catalog.router),
        ("/api", nodes.router),
        ("/api", keys.router),
        ("/api", audit.router),
        ("/api", access.router),
    ]
    routes = {
        (method, prefix + route.path)
        for prefix, router in mounted
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert len(routes) > 20
    documented = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    assert routes == documented
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            ok = [c for c in operation["responses"] if c.startswith("2")]
            assert ok, f"{method} {path} documents no success response"
            for code in ok:
                if code != "204":
                    assert "application/json" in operation["responses"][code]["content"], (
                        method,
                        path,
                    )
            if method in ("post", "put") and "requestBody" in operation:
                assert operation["requestBody"]["content"]["application/json"]["schema"] is not None
            errors = [c for c in operation["responses"] if c.startswith("4")]
            assert errors or path == "/healthz", f"{method} {path} documents no error response"
    bodies = {
        p: o for p, ops in document["paths"].items() for m, o in ops.items() if m in ("post", "put")
    }
    assert "requestBody" in bodies["/hooks/{flow_id}/{token}"]
    assert "requestBody" in bodies["/api/flows"]
    assert "requestBody" in bodies["/api/connections/{connection_id}"]
