"""Credentials a run issues (a door PIN) are sealed at rest and masked wherever the run is shown;
revealing them takes the admin scope and is recorded. http.request gets its credentials from an
``http`` connection, never from the flow document."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from latchflow import JSON, Action, RunContext, ValidationError, hookimpl
from latchflow.engine import Engine
from latchflow.plugin.clock import FakeClock
from latchflow.runs.history import run_detail
from latchflow.server import create_app
from latchflow.storage.api_keys import Scope
from latchflow.storage.database import Settings
from latchflow.testing import load_registry, serve_app

PIN = "482913"
OBJECT: JSON = {"type": "object"}


class Vault:
    """``vault.issue_pin`` issues a door PIN and declares it a credential."""

    @hookimpl
    def register_actions(self, register: Callable[[Action], None]) -> None:
        async def issue(ctx: RunContext, data: JSON) -> JSON:
            ctx.logger.info("issued a PIN for %s", data.get("guest"))
            return {"pin": PIN, "door": "front"}

        register(
            Action(
                "vault.issue_pin",
                "Issue PIN",
                "Issue a door PIN",
                OBJECT,
                OBJECT,
                {},
                issue,
                credentials=("pin",),
            )
        )


FLOW = {
    "id": "pin",
    "name": "PIN",
    "version": 1,
    "trigger": {"type": "manual"},
    "steps": [
        {"id": "issue", "action": "vault.issue_pin", "input": {"guest": "Ada"}},
        {
            "id": "tell",
            "action": "core.set",
            "input": {"values": {"sms": "Your PIN is {{ steps.issue.pin }}"}},
        },
    ],
    "output": {"pin": "{{ steps.issue.pin }}", "door": "{{ steps.issue.door }}"},
}


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    engine = Engine(
        Settings.from_environment(tmp_path / "data"),
        registry=load_registry(extra=[Vault()]),
        clock=FakeClock(),
    )
    yield engine
    await engine.close()


async def issued(engine: Engine) -> str:
    engine.install_flow(FLOW)
    run_id = engine.start("pin", {}).run_id
    run = await engine.run_until_done(run_id)
    assert run.status == "succeeded"
    return run_id


async def test_a_pin_a_run_issued_is_masked_in_history_and_never_stored_plainly(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    run_id = await issued(engine)
    detail = run_detail(engine.store, run_id)
    assert PIN not in json.dumps(detail)
    assert detail["output"] == {"pin": "***", "door": "front"}
    assert detail["steps"][0]["output"]["pin"] == "***"
    assert detail["steps"][1]["input"]["values"]["sms"] == "Your PIN is ***"
    assert PIN in json.dumps(run_detail(engine.store, run_id, reveal=True))  # sealed, not lost
    assert PIN not in caplog.text
    data_dir = engine.settings.data_dir
    engine.store.engine.dispose()
    for stored in data_dir.iterdir():  # the database, its WAL, its shared memory, the key
        assert PIN.encode() not in stored.read_bytes(), stored.name
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "latchflow.cli",
            "runs",
            "show",
            run_id,
            "--data-dir",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert '"pin": "***"' in shown.stdout and PIN not in shown.stdout + shown.stderr


async def test_revealing_takes_the_admin_scope_and_is_recorded(engine: Engine) -> None:
    run_id = await issued(engine)
    app = create_app(engine, background=False)
    keys = {scope: engine.store.api_keys.create(f"{scope} key", scope)[1] for scope in Scope}

    def client(scope: Scope) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
            headers={"authorization": f"Bearer {keys[scope]}"},
        )

    async with client(Scope.WRITE) as writer, client(Scope.ADMIN) as admin:
        masked = await writer.get(f"/api/runs/{run_id}")
        assert masked.status_code == 200 and PIN not in masked.text
        refused = await writer.get(f"/api/runs/{run_id}", params={"reveal": "1"})
        assert refused.status_code == 403 and "needs admin" in refused.json()["error"]
        assert engine.store.audit.events() == []
        revealed = await admin.get(f"/api/runs/{run_id}", params={"reveal": "true"})
        assert revealed.status_code == 200 and PIN in revealed.text
        audit = (await admin.get("/api/audit")).json()
    assert [(e["action"], e["subject"]) for e in audit] == [("reveal", f"run {run_id}")]
    assert "admin key" in audit[0]["actor"]


@pytest.fixture
def pms() -> Iterator[tuple[str, list[str | None]]]:
    """A booking system on loopback that records the Authorization header it gets."""
    seen: list[str | None] = []

    async def bookings(request: Request) -> JSONResponse:
        seen.append(request.headers.get("authorization"))
        return JSONResponse({"ok": True})

    with serve_app(Starlette(routes=[Route("/bookings", bookings, methods=["POST"])])) as base:
        yield base, seen


def http_flow(url: str, **step: object) -> JSON:
    return {
        "id": "call",
        "name": "Call",
        "version": 1,
        "trigger": {"type": "manual"},
        "steps": [{"id": "call", "action": "http.request", "input": {"url": url}, **step}],
    }


async def test_http_request_sends_a_connections_credentials_to_its_origin_only(
    engine: Engine, pms: tuple[str, list[str | None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, seen = pms
    monkeypatch.setenv("LATCHFLOW_HTTP_ALLOW_NETWORKS", "127.0.0.0/8")
    config = {"base_url": base, "auth": "bearer", "token": "s3cret-token"}
    await engine.connections.save("pms", "http", "PMS", config)
    engine.install_flow(http_flow(f"{base}/bookings", connection="pms"))
    run = await engine.run_until_done(engine.start("call", {}).run_id)
    assert run.status == "succeeded" and seen == ["Bearer s3cret-token"]
    assert "s3cret-token" not in json.dumps(run_detail(engine.store, run.id))
    elsewhere = base.replace("127.0.0.1", "localhost")
    engine.install_flow({**http_flow(f"{elsewhere}/bookings", connection="pms"), "version": 2})
    run = await engine.run_until_done(engine.start("call", {}).run_id)
    assert run.status == "failed" and "sends its credentials only to" in (run.error or "")
    engine.install_flow({**http_flow(f"{base}/bookings"), "version": 3})  # no connection named
    run = await engine.run_until_done(engine.start("call", {}).run_id)
    assert run.status == "succeeded" and seen[-1] is None


def test_a_credential_written_into_a_flow_is_a_validation_error(engine: Engine) -> None:
    document = http_flow("https://pms.example.com/bookings")
    document["steps"][0]["input"]["headers"] = {
        "Authorization": "Bearer abc",
        "X-Api-Key": "{{ trigger.key }}",  # computed at run time: not written into the flow
    }
    with pytest.raises(ValidationError) as caught:
        engine.install_flow(document)
    (detail,) = caught.value.errors
    assert detail.path == "$.steps[0].input.headers.Authorization"
    assert "'http' connection" in detail.message
