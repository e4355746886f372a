"""Fixtures: the two simulators and a webhook receiver, each served over real HTTP."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from jsonschema import Draft202012Validator

from latchflow import Connection, FakeClock, Pending, RunContext, WebhookRequest
from latchflow.testing import load_registry, make_connection, make_context, serve_app
from latchflow_livionkey import sim_v1, sim_v2_routes
from latchflow_livionkey.connection import sandbox_v1, sandbox_v2


@dataclass
class Receiver:
    """A webhook endpoint that records what it gets and answers the first ``fail`` posts with
    ``fail_status``."""

    url: str = ""
    requests: list[WebhookRequest] = field(default_factory=list)
    fail: int = 0
    fail_status: int = 503
    refused: int = 0


@pytest.fixture(scope="session")
def receiver_server() -> Iterator[list[Receiver]]:
    """One webhook endpoint for the session; each test gets a fresh ``Receiver`` behind it."""
    current = [Receiver()]
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        received = current[0]
        if received.fail > 0:
            received.fail -= 1
            received.refused += 1
            return Response(status_code=received.fail_status)
        received.requests.append(
            WebhookRequest("POST", str(request.url), dict(request.headers), await request.body())
        )
        return Response(status_code=200)

    with serve_app(app) as base:
        current[0].url = f"{base}/hook"
        yield current


@pytest.fixture
def receiver(receiver_server: list[Receiver]) -> Receiver:
    receiver_server[0] = Receiver(url=receiver_server[0].url)
    return receiver_server[0]


@pytest.fixture
def v1_url() -> Iterator[str]:
    with serve_app(sim_v1.create_app()) as base:
        yield base


@pytest.fixture
def v2_url() -> Iterator[str]:
    with serve_app(sim_v2_routes.create_app()) as base:
        yield base


async def sim_now(base: str) -> datetime:
    async with httpx.AsyncClient() as http:
        return datetime.fromisoformat((await http.get(f"{base}/_sim/clock")).json()["now"])


async def sim_post(base: str, path: str, body: Any) -> Any:
    async with httpx.AsyncClient(timeout=10.0) as http:
        response = await http.post(f"{base}{path}", json=body)
        response.raise_for_status()
        return response.json()


async def sim_get(base: str, path: str) -> Any:
    async with httpx.AsyncClient(timeout=30.0) as http:
        response = await http.get(f"{base}{path}")
        response.raise_for_status()
        return response.json()


async def sim_settle(base: str) -> None:
    """Wait until the simulator's webhook deliveries (and late requests) under way have ended."""
    await sim_get(base, "/_sim/webhooks?settle=true")


@pytest.fixture
async def v1(v1_url: str, receiver: Receiver) -> AsyncIterator[Connection]:
    """A V1 connection (sandbox config) whose FakeClock starts at the simulator's time."""
    config = await sandbox_v1(v1_url, receiver.url)
    connection = make_connection("livionkey", config, clock=FakeClock(await sim_now(v1_url)))
    yield connection
    await connection.http.aclose()


@pytest.fixture
async def v2(v2_url: str, receiver: Receiver) -> AsyncIterator[Connection]:
    config = await sandbox_v2(v2_url, receiver.url)
    connection = make_connection("livionkey_v2", config)
    yield connection
    await connection.http.aclose()


def ctx(
    connection: Connection,
    step: str = "step",
    attempt: int = 1,
    state: dict[str, Any] | None = None,
    started_at: datetime | None = None,
) -> RunContext:
    context = make_context(connection, step_id=step, attempt=attempt, state=state)
    context.started_at = started_at
    return context


Act = Callable[..., Awaitable[Any]]
SimPost = Callable[[str, str, Any], Awaitable[Any]]


@pytest.fixture
def act() -> Act:
    """Run a registered action as the engine would: input and output checked by schema.

    Keyword arguments (``attempt``, ``state``, ``started_at``, ``step``) set the run context;
    each call is its own step (its own idempotency key) unless ``step`` says otherwise. A
    ``Pending`` result is returned as it is.
    """
    registry = load_registry()
    steps = itertools.count(1)

    async def run(connection: Connection, key: str, data: dict[str, Any], **context: Any) -> Any:
        context.setdefault("step", f"step-{next(steps)}")
        action = registry.actions[key]
        assert action.connection == connection.vendor
        Draft202012Validator(action.input_schema).validate(data)
        result = await action.run(ctx(connection, **context), data)
        if not isinstance(result, Pending):
            Draft202012Validator(action.output_schema).validate(result)
        return result

    return run


@pytest.fixture
def simpost() -> SimPost:
    return sim_post


@pytest.fixture
def simget() -> Callable[[str, str], Awaitable[Any]]:
    return sim_get


@pytest.fixture
def settle() -> Callable[[str], Awaitable[None]]:
    return sim_settle
