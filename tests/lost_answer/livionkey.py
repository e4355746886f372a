"""LivionKey (API V1 and V2): what its create actions make, counted in the simulators' state."""

from __future__ import annotations

import time

from latchflow import JSON

from . import LostAnswerCase, Simulated

V2 = "livionkey_v2"


async def _v1_state(sim: Simulated) -> JSON:
    state: JSON = (await sim.http.get("/_sim/v1/state")).json()
    return state


async def _v2_state(sim: Simulated) -> JSON:
    state: JSON = (await sim.http.get("/_sim/v2/state")).json()
    return state


async def _key_input(sim: Simulated) -> JSON:
    return {"deviceId": "000111", "keyId": "lost-answer-key", "keyName": "Lost answer"}


async def _keys(sim: Simulated, data: JSON) -> int:
    return sum(k["keyId"] == data["keyId"] for k in (await _v1_state(sim))["keys"])


async def _contract_input(sim: Simulated) -> JSON:
    now = time.time()
    return {
        "deviceId": "000111",
        "keyId": "apt-102",
        "person": "Ada",
        "contacts": [{"email": "ada@example.com", "phoneNumber": "+358401234567"}],
        "start": now + 3600,
        "end": now + 7200,
    }


async def _contracts(sim: Simulated, data: JSON) -> int:
    key = {"id": data["deviceId"], "keyId": data["keyId"]}
    return sum(key in c["devices"] for c in (await _v1_state(sim))["contracts"])


async def _handover_input(sim: Simulated) -> JSON:
    now = time.time()
    return {
        "keyAutomatId": "000111",
        "numberOfKeys": 1,
        "accessRightIds": ["ar-main-door"],
        "start": now + 3600,
        "end": now + 7200,
        "contact": {"name": "Aino Jääskeläinen", "email": "aino@example.com"},
    }


async def _handovers(sim: Simulated, data: JSON) -> int:
    contracts = (await _v2_state(sim))["contracts"]
    return sum(c["keyAutomatId"] == data["keyAutomatId"] for c in contracts)


async def _group_input(sim: Simulated) -> JSON:
    return {"name": "Lost answer group", "customerId": "cust-demo"}


async def _groups(sim: Simulated, data: JSON) -> int:
    return sum(g["name"] == data["name"] for g in (await _v2_state(sim))["groups"])


CASES = [
    LostAnswerCase("livionkey.create_key", "/keys", _key_input, _keys),
    LostAnswerCase("livionkey.create_contract", "/contracts", _contract_input, _contracts),
    LostAnswerCase(
        "livionkey.create_iloq_contract",
        "/v2/iloq/keycontracts",
        _handover_input,
        _handovers,
        vendor=V2,
    ),
    LostAnswerCase("livionkey.create_group", "/v2/groups", _group_input, _groups, vendor=V2),
]
