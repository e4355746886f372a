"""Simultaneous deliveries of one signed webhook: one run, and the others answered with it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import func, select

from latchflow.engine import Engine
from latchflow.plugin.host import load_registry
from latchflow.server import create_app
from latchflow.storage.database import Settings
from latchflow.storage.models import RunRecord, WebhookReceipt
from latchflow.testing import serve_app

from .conftest import webhook_flow
from .test_hooks import signed_headers

DELIVERIES = 30


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[tuple[Engine, str, str, str]]:
    """Two servers on one database (as two processes would be), each over real HTTP."""
    settings = Settings.from_environment(tmp_path / "data")
    engines = [Engine(settings, registry=load_registry()) for _ in range(2)]
    engines[0].install_flow(webhook_flow())
    _, key = engines[0].store.api_keys.create("races")
    apps = [create_app(engine, background=False) for engine in engines]
    with serve_app(apps[0]) as first, serve_app(apps[1]) as second:
        yield engines[0], key, first, second
    for engine in engines:
        engine.store.engine.dispose()


async def test_simultaneous_identical_signed_deliveries_start_one_run(
    two_nodes: tuple[Engine, str, str, str],
) -> None:
    engine, key, first, second = two_nodes
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {key}"}) as http:
        secret = (await http.put(f"{first}/api/flows/hooked/signing-secret", json={})).json()
        record = engine.store.get_flow("hooked")
        assert record is not None
        path = f"/hooks/hooked/{record.hook_token}"
        answers: list[tuple[int, ...]] = []
        run_ids: list[set[str]] = []
        for n in range(DELIVERIES):
            body = json.dumps({"n": n}).encode()
            stamp = int(engine.clock.now().timestamp())
            headers = signed_headers(secret["secret"], body, f"msg_{n}", stamp)
            responses = await asyncio.gather(
                *(
                    http.post(base + path, content=body, headers=headers)
                    for base in (first, second, first)
                )
            )
            answers.append(tuple(r.status_code for r in responses))
            run_ids.append({r.json()["run_id"] for r in responses})
            for response in responses:
                if response.status_code == 200:
                    assert response.json()["duplicate"] is True, response.text
    assert all(sorted(codes) == [200, 200, 202] for codes in answers), answers
    assert all(len(ids) == 1 for ids in run_ids), run_ids
    with engine.store.session() as session:
        assert session.exec(select(func.count()).select_from(RunRecord)).one() == DELIVERIES
        assert session.exec(select(func.count()).select_from(WebhookReceipt)).one() == DELIVERIES
