"""Parts every vendor simulator shares: a controllable clock, fault injection, webhook delivery.

A simulator is a FastAPI app; ``add_sim_controls(app, sim)`` mounts the shared ``/_sim/``
routes and the fault-injection middleware:

- ``GET /_sim/clock`` · ``POST /_sim/clock {"advance": seconds}`` or ``{"set": iso8601}``
- ``POST /_sim/faults {"kind": "error"|"timeout"|"rate_limit"|"slow", "count": n, ...}`` ·
  ``DELETE /_sim/faults``
- ``POST /_sim/webhooks {"url": ...}`` · ``GET /_sim/webhooks`` (deliveries and their outcome)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send


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

    kind: str = Field(pattern="^(error|timeout|rate_limit|slow)$")
    count: int = Field(default=1, ge=1)
    path: str = Field(default="", description="only requests whose path starts with this")
    status: int = Field(default=503, description="HTTP status for kind=error")
    delay: float = Field(default=2.0, ge=0, description="seconds, for kind=slow and kind=timeout")
    retry_after: int = Field(default=1, ge=0, description="seconds, for kind=rate_limit")


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

    def take_fault(self, path: str) -> FaultSpec | None:
        for fault in self.faults:
            if path.startswith(fault.path) and not path.startswith("/_sim/"):
                fault.count -= 1
                if fault.count == 0:
                    self.faults.remove(fault)
                return fault
        return None

    async def deliver(
        self,
        body: Any,
        headers: Headers | None = None,
        *,
        urls: list[str] | None = None,
        accepted: Callable[[int], bool] = lambda status: status < 500,
    ) -> None:
        """POST ``body`` as JSON to ``urls`` (default: every registered URL), retrying failures.

        ``headers`` may be a function of the raw body, called before every attempt, for
        signatures that carry a timestamp. An answer ends the retries when ``accepted(status)``.
        """
        raw = json.dumps(body, separators=(",", ":")).encode()
        async with httpx.AsyncClient(timeout=5.0) as client:
            for url in list(self.webhook_urls if urls is None else urls):
                delivery = Delivery(url=url, body=body)
                self.deliveries.append(delivery)
                await self._deliver_one(client, delivery, raw, headers, accepted)

    async def _deliver_one(
        self,
        client: httpx.AsyncClient,
        delivery: Delivery,
        raw: bytes,
        headers: Headers | None,
        accepted: Callable[[int], bool],
    ) -> None:
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


class FaultMiddleware:
    """Applies the injected faults to requests before the simulator sees them."""

    def __init__(self, app: ASGIApp, state: SimState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fault = self.state.take_fault(scope["path"]) if scope["type"] == "http" else None
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay)
            await self.app(scope, receive, send)
            return
        if fault.kind == "timeout":
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
    async def list_deliveries() -> dict[str, Any]:
        return {
            "urls": state.webhook_urls,
            "deliveries": [d.__dict__ for d in state.deliveries],
        }
