"""Node identity and health: /api/nodes and ``latchflow nodes`` (the embedded server is one node)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from latchflow.backends.nodes import NodeHeartbeat
from latchflow.engine import Engine
from latchflow.plugin.clock import SystemClock
from latchflow.server import create_app
from latchflow.storage.models import NodeRecord

from .processes import cli


async def test_the_embedded_server_lists_itself_while_it_runs(engine: Engine) -> None:
    app = create_app(engine, background=True)
    _, key = engine.store.api_keys.create("tests")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"authorization": f"Bearer {key}"},
    ) as client:
        assert (await client.get("/api/nodes")).json() == []
        async with app.router.lifespan_context(app):
            (node,) = (await client.get("/api/nodes")).json()
        assert (await client.get("/api/nodes")).json() == []  # a graceful stop removes the row
        assert (await client.get("/api/nodes", headers={"authorization": ""})).status_code == 401
    assert node["backend"] == "embedded" and node["alive"] is True
    assert node["jobs_in_flight"] == 0 and node["started_at"] == node["last_heartbeat"]


async def test_a_node_whose_heartbeat_stopped_is_shown_as_not_alive(
    engine: Engine, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    with engine.store.session() as session:  # what a killed node leaves: its row, a minute old
        session.add(
            NodeRecord(
                id="dead-node",
                host="elsewhere",
                backend="embedded",
                started_at=now - timedelta(hours=1),
                last_heartbeat=now - timedelta(minutes=1),
                jobs_in_flight=3,
            )
        )
        session.commit()
    app = create_app(engine, background=False)
    live = NodeHeartbeat(engine.store, app.state.latchflow.dispatcher, SystemClock(), "live-node")
    await live.start()
    try:
        shown = json.loads(cli("nodes", "--json", data_dir=tmp_path / "data"))
        table = cli("nodes", data_dir=tmp_path / "data")
    finally:
        await live.stop()
    assert [(n["id"], n["alive"]) for n in shown] == [("live-node", True), ("dead-node", False)]
    assert shown[1]["jobs_in_flight"] == 3
    assert "dead-node" in table and "live-node" in table
