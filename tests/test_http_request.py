"""The http.request action: private targets refused unless allowed; status codes mapped to retry/fail."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from latchflow.builtin.http_request import ALLOW_ENV, send
from latchflow.plugin.errors import FatalError, RetryableError
from latchflow.plugin.types import RunContext
from latchflow.testing import make_context, serve_app

received: list[dict[str, object]] = []


async def echo(request: Request) -> JSONResponse:
    received.append({"body": await request.json(), "key": request.headers.get("idempotency-key")})
    return JSONResponse({"ok": True})


async def busy(request: Request) -> JSONResponse:
    return JSONResponse({"error": "busy"}, status_code=503, headers={"retry-after": "7"})


async def missing(request: Request) -> JSONResponse:
    return JSONResponse({"error": "no such booking"}, status_code=404)


@pytest.fixture
async def ctx() -> AsyncIterator[RunContext]:
    context = make_context(run_id="r1", step_id="notify")
    yield context
    await context.http.aclose()


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    app = Starlette(
        routes=[
            Route("/echo", echo, methods=["POST"]),
            Route("/busy", busy, methods=["POST"]),
            Route("/missing", missing, methods=["POST"]),
        ]
    )
    with serve_app(app) as url:
        yield url


async def test_loopback_is_refused_by_default(
    receiver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    with pytest.raises(
        FatalError,
        match=r"\$\.input\.url: 127\.0\.0\.1 resolves to 127\.0\.0\.1, a non-public address",
    ):
        await send(ctx, {"url": f"{receiver}/echo", "json": {}})
    for url in (
        "http://169.254.169.254/latest",
        "http://10.0.0.1/",
        "http://[::1]/",
        "ftp://example.com/",
    ):
        with pytest.raises(FatalError, match=r"\$\.input\.url"):
            await send(ctx, {"url": url})
    assert received == []


async def test_allowed_network_is_reached_with_the_idempotency_key(
    receiver: str, ctx: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ALLOW_ENV, "127.0.0.0/8")
    result = await send(ctx, {"url": f"{receiver}/echo", "json": {"pin": "123456"}})
    assert result["status"] == 200 and result["body"] == {"ok": True}
    assert received[-1] == {"body": {"pin": "123456"}, "key": "r1:notify"}


async def test_5xx_is_retryable_with_retry_after_and_4xx_is_fatal(
    receiver: str, ctx: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ALLOW_ENV, "127.0.0.0/8")
    with pytest.raises(RetryableError) as caught:
        await send(ctx, {"url": f"{receiver}/busy", "json": {}})
    assert caught.value.retry_after == 7
    with pytest.raises(FatalError, match=r"answered 404: .*no such booking"):
        await send(ctx, {"url": f"{receiver}/missing", "json": {}})
