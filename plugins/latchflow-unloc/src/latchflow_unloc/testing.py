"""Test helpers for flows and plugins that use Unloc: the simulator's demo locks, connection
settings for it, and a handle to drive a running simulator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from latchflow_unloc.assumptions import (
    SIM_CLIENT_ID,
    SIM_CLIENT_SECRET,
    SIM_INTEGRATOR_CLIENT_ID,
    SIM_INTEGRATOR_CLIENT_SECRET,
    SIM_LOCK_HOLDER_ID,
    SIM_PROJECT_ID,
)
from latchflow_unloc.simulator import UnlocWorld

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

    async def control(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(f"{self.url}{path}", json=body)
        response.raise_for_status()
        return dict(response.json())


def v2_config(url: str) -> dict[str, Any]:
    """``unloc`` connection settings for the simulator at ``url`` (its demo credentials)."""
    return {
        "base_url": url,
        "client_id": SIM_CLIENT_ID,
        "client_secret": SIM_CLIENT_SECRET,
        "project_id": SIM_PROJECT_ID,
    }


def integrators_config(url: str) -> dict[str, Any]:
    """``unloc_integrators`` connection settings for the simulator at ``url``."""
    return {
        "base_url": url,
        "client_id": SIM_INTEGRATOR_CLIENT_ID,
        "client_secret": SIM_INTEGRATOR_CLIENT_SECRET,
        "lock_holder_ids": [SIM_LOCK_HOLDER_ID],
    }
