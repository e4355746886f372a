"""The simulators' shared fault injection: what each fault does to a request, as a client and
the simulator's state see it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from latchflow.simulation import SimState, add_sim_controls, received_at
from latchflow.testing import serve_app


class Counter:
    """A simulator whose ``POST /things`` makes a thing (and says when it was received)."""

    def __init__(self) -> None:
        self.state = SimState()
        self.made: list[datetime] = []
        self.app = FastAPI()
        add_sim_controls(self.app, self.state)

        @self.app.post("/things")
        async def make(request: Request) -> dict[str, Any]:
            self.made.append(received_at(request))
            if self.state.webhook_urls:
                await self.state.deliver({"made": len(self.made)})
            return {"made": len(self.made)}

        @self.app.get("/things")
        async def count() -> dict[str, Any]:
            return {"made": len(self.made)}


@pytest.fixture
def sim() -> Iterator[tuple[Counter, httpx.Client]]:
    counter = Counter()
    with serve_app(counter.app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield counter, client


def fault(client: httpx.Client, **spec: Any) -> None:
    client.post("/_sim/faults", json=spec).raise_for_status()


def test_lost_applies_the_request_and_answers_504(sim: tuple[Counter, httpx.Client]) -> None:
    counter, client = sim
    fault(client, kind="lost", path="/things")
    assert client.post("/things").status_code == 504
    assert len(counter.made) == 1
    assert client.get("/_sim/faults").json() == {"pending": 0, "injected": {"lost": 1}}


def test_lost_with_drop_closes_the_connection_mid_answer(
    sim: tuple[Counter, httpx.Client],
) -> None:
    counter, client = sim
    fault(client, kind="lost", path="/things", drop=True)
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/things")
    assert len(counter.made) == 1


def test_late_answers_504_and_applies_later_as_received(
    sim: tuple[Counter, httpx.Client],
) -> None:
    counter, client = sim
    fault(client, kind="late", path="/things", delay=0.2)
    sent = datetime.now().astimezone()
    assert client.post("/things").status_code == 504
    assert counter.made == []  # not yet
    client.get("/_sim/webhooks", params={"settle": "true"})
    (received,) = counter.made
    assert (received - sent).total_seconds() < 0.2  # checked as of its arrival


def test_slow_applies_as_it_arrives_then_answers_late(sim: tuple[Counter, httpx.Client]) -> None:
    counter, client = sim
    fault(client, kind="slow", path="/things", delay=0.3)
    sent = datetime.now().astimezone()
    response = client.post("/things")
    assert response.json() == {"made": 1} and response.elapsed.total_seconds() >= 0.3
    (received,) = counter.made
    assert (received - sent).total_seconds() < 0.3


def test_a_fault_for_one_method_leaves_the_others(sim: tuple[Counter, httpx.Client]) -> None:
    counter, client = sim
    fault(client, kind="error", path="/things", method="POST", status=503)
    assert client.get("/things").json() == {"made": 0}
    assert client.post("/things").status_code == 503
    assert counter.made == []


def test_webhooks_go_out_after_the_answer_and_duplicate_twice(
    sim: tuple[Counter, httpx.Client],
) -> None:
    _, client = sim
    got: list[Any] = []
    receiver = FastAPI()

    @receiver.post("/hook")
    async def hook(request: Request) -> dict[str, bool]:
        got.append(await request.json())
        return {"ok": True}

    with serve_app(receiver) as url:
        client.post("/_sim/webhooks", json={"url": f"{url}/hook"}).raise_for_status()
        fault(client, kind="duplicate")
        assert client.post("/things").json() == {"made": 1}
        deliveries = client.get("/_sim/webhooks", params={"settle": "true"}).json()["deliveries"]
    assert got == [{"made": 1}, {"made": 1}]
    assert [d["status"] for d in deliveries] == [200, 200]
