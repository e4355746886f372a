"""Helpers for testing flows and plugins against the KEYVOX simulator."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import httpx
from jsonschema import Draft202012Validator

from latchflow import JSON, Action, Connection, RunContext
from latchflow.testing import Registry, make_context
from latchflow_keyvox import assumptions as A
from latchflow_keyvox.simulator import World


@dataclass
class Sim:
    """A running simulator: its base URL and its world (state)."""

    url: str
    world: World

    @property
    def config(self) -> JSON:
        return {
            "apiKey": A.SIM_DEMO_API_KEY,
            "apiSecret": A.SIM_DEMO_API_SECRET,
            "baseUrl": self.url + "/api/eagle-pms/v1",
        }

    def control(self, path: str, body: JSON | None = None) -> Any:
        response = httpx.post(self.url + path, json=body or {}, timeout=10)
        response.raise_for_status()
        return response.json()

    def settle(self) -> list[JSON]:
        """Wait for the webhook deliveries (and late requests) under way; every delivery."""
        answer = httpx.get(self.url + "/_sim/webhooks", params={"settle": "true"}, timeout=30)
        deliveries: list[JSON] = answer.json()["deliveries"]
        return deliveries

    def state(self) -> JSON:
        state: JSON = httpx.get(self.url + "/_sim/state", timeout=10).json()
        return state

    def room(self, n: int = 0) -> JSON:
        rooms: list[JSON] = [u for u in self.state()["units"] if u["unitName"].startswith("Room")]
        return rooms[n]


class Runner:
    """Runs actions as the engine would: input and output validated against the schemas.
    Each call without a ``ctx`` is a step of its own run (its own idempotency key)."""

    def __init__(self, registry: Registry, connection: Connection) -> None:
        self.registry = registry
        self.connection = connection
        self.calls = itertools.count(1)

    def action(self, key: str) -> Action:
        return self.registry.actions[key]

    async def __call__(self, key: str, data: JSON, ctx: RunContext | None = None) -> JSON:
        action = self.action(key)
        errors = list(Draft202012Validator(action.input_schema).iter_errors(data))
        assert not errors, f"{key} input invalid: {errors[0].message}"
        ctx = ctx or make_context(self.connection, run_id=f"run-{next(self.calls)}", step_id=key)
        result = await action.run(ctx, data)
        assert isinstance(result, dict)
        errors = list(Draft202012Validator(action.output_schema).iter_errors(result))
        assert not errors, f"{key} output invalid: {errors[0].message}"
        return result


@dataclass
class Receiver:
    """Collects the webhooks a simulator posts (body and raw bytes)."""

    url: str
    bodies: list[Any] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
