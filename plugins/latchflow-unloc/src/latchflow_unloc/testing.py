"""Test helpers for flows and plugins that use Unloc: the simulator's demo locks, connection
settings for it, and a handle to drive a running simulator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from latchflow_unloc.simulator import UnlocWorld
from latchflow_unloc.vendors import integrators_config as integrators_config
from latchflow_unloc.vendors import v2_config as v2_config

FRONT_DOOR = "d6d8812e-48a9-11ee-b8a1-db05e53ca3e5"
APARTMENT = "0634f1ba-e175-49e8-98bc-32b11505107b"
GYM = "ba193242-3cb2-4ac7-beef-d41668a009bb"


@dataclass
class Sim:
    """A running simulator: its base URL, its state, and calls to its ``/_sim/`` controls."""

    url: str
    world: UnlocWorld
    http: httpx.AsyncClient

    async def advance(self, seconds: float) -> None:
        response = await self.http.post(f"{self.url}/_sim/clock", json={"advance": seconds})
        response.raise_for_status()

    async def set_clock(self, moment: str) -> None:
        response = await self.http.post(f"{self.url}/_sim/clock", json={"set": moment})
        response.raise_for_status()

    async def settle(self) -> None:
        """Wait until the webhook deliveries and late requests under way have ended."""
        response = await self.http.get(f"{self.url}/_sim/webhooks", params={"settle": "true"})
        response.raise_for_status()

    async def control(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(f"{self.url}{path}", json=body)
        response.raise_for_status()
        return dict(response.json())
