"""Unloc: what its create actions make, counted in the simulator's state."""

from __future__ import annotations

import itertools

from latchflow import JSON
from latchflow_unloc.assumptions import SIM_LOCK_HOLDER_ID, SIM_PROJECT_ID
from latchflow_unloc.testing import APARTMENT, FRONT_DOOR

from . import LostAnswerCase, Simulated

KEYS = f"/v2/projects/{SIM_PROJECT_ID}/keys"
HOLDERS = "/integrators/v1/lock-holders/"
PHONES = (f"+4799{n:06d}" for n in itertools.count(1))
"""A phone number no other case uses, so each case counts only its own keys."""


async def _state(sim: Simulated) -> JSON:
    state: JSON = (await sim.http.get("/_sim/state")).json()
    return state


async def _live_keys(sim: Simulated, lock_id: str, phone: str) -> int:
    return sum(
        k["lockId"] == lock_id and k["appUser"]["id"] == phone and k["state"] != "revoked"
        for k in (await _state(sim))["keys"]
    )


async def _key_input(sim: Simulated) -> JSON:
    (await sim.http.post("/_sim/settings", json={"job_delay": 0})).raise_for_status()
    return {"lockId": FRONT_DOOR, "appUserId": next(PHONES), "pollInterval": 1}


async def _keys(sim: Simulated, data: JSON) -> int:
    return await _live_keys(sim, data["lockId"], data["appUserId"])


async def _batch_input(sim: Simulated) -> JSON:
    (await sim.http.post("/_sim/settings", json={"job_delay": 0})).raise_for_status()
    keys = [
        {"lockId": FRONT_DOOR, "appUserId": next(PHONES)},
        {"lockId": APARTMENT, "appUserId": next(PHONES)},
    ]
    return {"keys": keys, "pollInterval": 1}


async def _batches(sim: Simulated, data: JSON) -> int:
    """How many times the batch was made: each of its keys exists that often (else -1)."""
    counts = {await _live_keys(sim, k["lockId"], k["appUserId"]) for k in data["keys"]}
    return counts.pop() if len(counts) == 1 else -1


async def _integrators_key_input(sim: Simulated) -> JSON:
    return {"lockId": APARTMENT, "appUserId": next(PHONES)}


async def _holder_input(sim: Simulated) -> JSON:
    sim.config["lock_holder_ids"] = []  # creating lock holders needs the integrator.admin scope
    return {"name": "Acme Housing", "countryIso": "NO", "organizationId": "998877665"}


async def _holders(sim: Simulated, data: JSON) -> int:
    holders = (await _state(sim))["lockHolders"]
    return sum(h["organizationId"] == data["organizationId"] for h in holders)


CASES = [
    LostAnswerCase("unloc.create_key", KEYS, _key_input, _keys),
    LostAnswerCase("unloc.create_keys", KEYS, _batch_input, _batches),
    LostAnswerCase(
        "unloc_integrators.create_key",
        f"{HOLDERS}{SIM_LOCK_HOLDER_ID}/locks/{APARTMENT}/keys/",
        _integrators_key_input,
        _keys,
    ),
    LostAnswerCase("unloc_integrators.create_lock_holder", HOLDERS, _holder_input, _holders),
]
