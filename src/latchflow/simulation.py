"""Parts every vendor simulator shares: a controllable clock, fault injection, webhook delivery.

A simulator is a FastAPI app; ``add_sim_controls(app, sim)`` mounts the shared ``/_sim/``
routes and the fault-injection middleware:

- ``GET /_sim/clock`` · ``POST /_sim/clock {"advance": seconds}`` or ``{"set": iso8601}``
- ``POST /_sim/faults {"kind": ..., "count": n, ...}`` · ``GET /_sim/faults`` (how many are
  pending, how many requests each kind has met) · ``DELETE /_sim/faults``; the kinds:

  - ``error`` (answers ``status``), ``timeout`` (waits ``delay``, answers 504) and
    ``rate_limit`` (429 with Retry-After) refuse the request: the vendor does not apply it;
  - ``slow`` applies the request and answers after ``delay`` seconds;
  - ``lost`` applies the request and loses the answer: a 504, or with ``drop`` the connection
    closes mid-answer; ``slow_lost`` does the same after ``delay`` seconds;
  - ``late`` answers 504 at once and applies the request ``delay`` seconds later (its
    signature was checked when it arrived: simulators check dates against ``received_at``);
  - ``duplicate`` delivers the next ``count`` webhooks twice.

- ``POST /_sim/webhooks {"url": ...}`` · ``GET /_sim/webhooks`` (deliveries and their outcome;
  ``?settle=true`` waits for the deliveries under way to end)

Webhooks go out after the API call that caused them has answered, as vendors send them, and
failed deliveries are retried on the simulator's schedule.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class SimClock:
    """Real time plus an offset that ``/_sim/clock`` moves; never goes backwards by itself."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> datetime:
        self.offset += timedelta(seconds=seconds)
        return self.now()

    def set(self, moment: datetime) -> None:
        self.offset = moment - datetime.now(UTC)


class FaultSpec(BaseModel):
    """A fault to inject into the next ``count`` matching requests."""

    kind: str = Field(pattern="^(error|timeout|rate_limit|slow|lost|slow_lost|late|duplicate)$")
    count: int = Field(default=1, ge=1)
    path: str = Field(default="", description="only requests whose path starts with this")
    method: str = Field(default="", description="only requests with this method (any if empty)")
    status: int = Field(default=503, description="HTTP status for kind=error")
    delay: float = Field(
        default=2.0, ge=0, description="seconds, for kind=slow, timeout, slow_lost and late"
    )
    retry_after: int = Field(default=1, ge=0, description="seconds, for kind=rate_limit")
    drop: bool = Field(default=False, description="kind=lost: close the connection mid-answer")


Headers = dict[str, str] | Callable[[bytes], dict[str, str]]
"""Extra headers of a webhook delivery, or a function of the raw body that makes them."""


@dataclass
class Delivery:
    url: str
    body: Any
    attempts: int = 0
    status: int | None = None
    error: str | None = None


@dataclass
class SimState:
    """The shared controls of one simulator instance."""

    clock: SimClock = field(default_factory=SimClock)
    faults: list[FaultSpec] = field(default_factory=list)
    webhook_urls: list[str] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    webhook_retries: int = 3
    webhook_retry_delay: float = 0.2
    under_way: set[asyncio.Task[None]] = field(default_factory=set)
    """Deliveries and late requests still going on."""
    injected: Counter[str] = field(default_factory=Counter)
    """How many requests (or deliveries) each kind of fault has met."""

    def take_fault(self, path: str, method: str = "", webhook: bool = False) -> FaultSpec | None:
        """The fault that applies to a request (or to a webhook delivery), if any."""
        for fault in self.faults:
            if webhook != (fault.kind == "duplicate"):
                continue
            if fault.method and fault.method.upper() != method:
                continue
            if path.startswith(fault.path) and not path.startswith("/_sim/"):
                fault.count -= 1
                if fault.count == 0:
                    self.faults.remove(fault)
                self.injected[fault.kind] += 1
                return fault
        return None

    async def deliver(
        self,
        body: Any,
        headers: Headers | None = None,
        *,
        urls: list[str] | None = None,
        accepted: Callable[[int], bool] = lambda status: status < 500,
        ensure_ascii: bool = True,
    ) -> None:
        """POST ``body`` as JSON to ``urls`` (default: every registered URL) once the current
        request has answered, retrying failures.

        ``headers`` may be a function of the raw body, called before every attempt, for
        signatures that carry a timestamp. An answer ends the retries when ``accepted(status)``.
        """
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=ensure_ascii).encode()
        copies = 2 if self.take_fault("/", "POST", webhook=True) else 1
        for url in list(self.webhook_urls if urls is None else urls):
            for _ in range(copies):
                delivery = Delivery(url=url, body=body)
                self.deliveries.append(delivery)
                self.start(self._deliver_one(delivery, raw, headers, accepted))

    def start(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background; ``settle`` waits for it."""
        task = asyncio.get_running_loop().create_task(work)
        self.under_way.add(task)
        task.add_done_callback(self.under_way.discard)

    async def settle(self) -> None:
        """Wait until every delivery and late request under way has ended."""
        while self.under_way:
            await asyncio.gather(*self.under_way, return_exceptions=True)

    async def _deliver_one(
        self,
        delivery: Delivery,
        raw: bytes,
        headers: Headers | None,
        accepted: Callable[[int], bool],
    ) -> None:
        async with httpx.AsyncClient(timeout=5.0) as client:
            for attempt in range(1, self.webhook_retries + 1):
                delivery.attempts = attempt
                extra = headers(raw) if callable(headers) else headers or {}
                try:
                    response = await client.post(
                        delivery.url,
                        content=raw,
                        headers={"content-type": "application/json", **extra},
                    )
                    delivery.status, delivery.error = response.status_code, None
                    if accepted(response.status_code):
                        return
                except httpx.HTTPError as exc:
                    delivery.error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(self.webhook_retry_delay * attempt)


RECEIVED_AT = "received_at"


def received_at(request: Request) -> datetime:
    """When the simulator received ``request`` (wall time): what a signature's date is checked
    against, also when the fault ``late`` applies the request after it was answered."""
    moment: datetime | None = getattr(request.state, RECEIVED_AT, None)
    return moment or datetime.now(UTC)


class FaultMiddleware:
    """Applies the injected faults to requests before the simulator sees them."""

    def __init__(self, app: ASGIApp, state: SimState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fault = None
        if scope["type"] == "http":
            scope.setdefault("state", {})[RECEIVED_AT] = datetime.now(UTC)
            fault = self.state.take_fault(scope["path"], scope["method"])
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.kind in ("slow", "lost", "slow_lost"):
            answer = await self._apply(scope, receive)
            if fault.kind != "lost":
                await asyncio.sleep(fault.delay)
            if fault.kind == "slow":
                for message in answer:
                    await send(message)
                return
            if fault.drop:
                await send({"type": "http.response.start", "status": 200, "headers": LONG_BODY})
                raise ConnectionAbortedError("simulated: connection closed mid-answer")
            await Response(status_code=504)(scope, receive, send)
            return
        if fault.kind == "late":
            body = await _read_body(receive)
            self.state.start(self._apply_late(scope, body, fault.delay))
            response = Response(status_code=504)
        elif fault.kind == "timeout":
            await asyncio.sleep(fault.delay)
            response = Response(status_code=504)
        elif fault.kind == "rate_limit":
            response = Response(
                '{"message":"Too many requests"}',
                status_code=429,
                headers={"retry-after": str(fault.retry_after)},
                media_type="application/json",
            )
        else:
            response = Response(
                '{"message":"Injected failure"}',
                status_code=fault.status,
                media_type="application/json",
            )
        await response(scope, receive, send)

    async def _apply(self, scope: Scope, receive: Receive) -> list[Message]:
        """Let the simulator handle the request; its answer is kept, not sent."""
        answer: list[Message] = []

        async def keep(message: Message) -> None:
            answer.append(message)

        await self.app(scope, receive, keep)
        return answer

    async def _apply_late(self, scope: Scope, body: bytes, delay: float) -> None:
        await asyncio.sleep(delay)

        async def replay() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        await self._apply(scope, replay)


LONG_BODY = [(b"content-length", b"1000"), (b"content-type", b"application/json")]
"""Headers of an answer that is cut off: the client waits for bytes that never come."""


async def _read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        chunk: bytes = message.get("body", b"")
        body += chunk
        if not message.get("more_body"):
            return body


class ClockChange(BaseModel):
    advance: float | None = Field(default=None, description="seconds to move the clock forward")
    set: datetime | None = Field(default=None, description="the moment to set the clock to")


class WebhookTarget(BaseModel):
    url: str


def add_sim_controls(app: FastAPI, state: SimState) -> None:
    """Mount the shared ``/_sim/`` routes and the fault middleware on a simulator app."""
    app.add_middleware(FaultMiddleware, state=state)

    @app.get("/_sim/clock", tags=["simulator"])
    async def get_clock() -> dict[str, Any]:
        now = state.clock.now()
        return {"now": now.isoformat(), "unix": int(now.timestamp())}

    @app.post("/_sim/clock", tags=["simulator"])
    async def change_clock(change: ClockChange, request: Request) -> dict[str, Any]:
        if change.set is not None:
            state.clock.set(change.set if change.set.tzinfo else change.set.replace(tzinfo=UTC))
        if change.advance:
            state.clock.advance(change.advance)
        on_tick = getattr(request.app.state, "on_clock_change", None)
        if on_tick is not None:
            await on_tick()
        return await get_clock()

    @app.get("/_sim/faults", tags=["simulator"])
    async def pending_faults() -> dict[str, Any]:
        return {"pending": len(state.faults), "injected": dict(state.injected)}

    @app.post("/_sim/faults", tags=["simulator"])
    async def add_fault(fault: FaultSpec) -> dict[str, int]:
        state.faults.append(fault)
        return {"pending": len(state.faults)}

    @app.delete("/_sim/faults", tags=["simulator"])
    async def clear_faults() -> dict[str, int]:
        state.faults.clear()
        return {"pending": 0}

    @app.post("/_sim/webhooks", tags=["simulator"])
    async def register_webhook(target: WebhookTarget) -> dict[str, list[str]]:
        if target.url not in state.webhook_urls:
            state.webhook_urls.append(target.url)
        return {"urls": state.webhook_urls}

    @app.get("/_sim/webhooks", tags=["simulator"])
    async def list_deliveries(settle: bool = False) -> dict[str, Any]:
        if settle:
            await state.settle()
        return {
            "urls": state.webhook_urls,
            "deliveries": [d.__dict__ for d in state.deliveries],
        }
