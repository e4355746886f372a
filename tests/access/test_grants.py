"""A grant over a KEYVOX room, an Unloc front door and a LivionKey key automat: issued at all
three simulators, moved, cancelled; and a revocation that fails before the vendor confirms it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from latchflow.storage.runs import RunFilter
from latchflow_unloc.testing import FRONT_DOOR

from .conftest import Sandbox

AUTOMAT = "000111/ar-apt-12"


async def places(sandbox: Sandbox) -> str:
    """Room 12 (a KEYVOX unit), the front door (an Unloc lock) and the key automat (a
    LivionKey V2 handover); returns the room's unit id."""
    keyvox = await sandbox.state("keyvox")
    room = next(u for u in keyvox["units"] if u["unitName"].startswith("Room"))["unitId"]
    grants = sandbox.engine.access.grants
    for name, connection, kind, resource in (
        ("Room 12", "keyvox", "keyvox.unit", room),
        ("Front door", "unloc", "unloc.lock", FRONT_DOOR),
        ("Key automat", "livionkey_v2", "livionkey.key_automat", AUTOMAT),
    ):
        grants.save_place(
            {
                "name": name,
                "timezone": "Europe/Oslo",
                "resources": [{"connection": connection, "kind": kind, "id": resource}],
            }
        )
    return str(room)


def booking(sandbox: Sandbox, days: int = 0) -> dict[str, Any]:
    start = sandbox.clock.now() + timedelta(hours=2, days=days)
    return {
        "reference": "B-1001",
        "person": {"name": "Ada Lovelace", "phone": "+47 998 87 766", "email": "ada@example.com"},
        "places": ["Room 12", "Front door", "Key automat"],
        "starts": start.isoformat(),
        "ends": (start + timedelta(days=2)).isoformat(),
    }


def _moment(value: Any) -> datetime:
    if isinstance(value, str) and value.isdigit():
        return datetime.fromtimestamp(int(value), UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


async def active(sandbox: Sandbox, room: str) -> dict[str, list[tuple[datetime, datetime]]]:
    """The windows of what works at each simulator: PINs on the room, keys on the front door,
    handover contracts at the automat."""
    pins = (await sandbox.state("keyvox"))["pins"]
    keys = (await sandbox.state("unloc"))["keys"]
    contracts = (await sandbox.state("livionkey_v2"))["contracts"]
    return {
        "keyvox": [
            (_moment(p["sTime"]), _moment(p["eTime"]))
            for p in pins
            if p.get("unitId") == room and p["pinStatus"] == "1"
        ],
        "unloc": [
            (_moment(k["start"]), _moment(k["end"]))
            for k in keys
            if k["lockId"] == FRONT_DOOR and k["state"] not in ("revoked", "expired")
        ],
        "livionkey": [
            (_moment(c["start"]), _moment(c["end"]))
            for c in contracts
            if c.get("keyAutomatId") == "000111" and c.get("state") != "deleted"
        ],
    }


def windows(data: dict[str, Any]) -> list[tuple[datetime, datetime]]:
    return [(_moment(data["starts"]), _moment(data["ends"]))]


async def test_a_grant_is_issued_moved_and_cancelled_at_every_vendor(sandbox: Sandbox) -> None:
    await issue_move_cancel(sandbox)


async def test_the_same_on_postgresql(pg_sandbox: Sandbox) -> None:
    await issue_move_cancel(pg_sandbox)


async def issue_move_cancel(sandbox: Sandbox) -> None:
    room = await places(sandbox)
    grants = sandbox.engine.access.grants
    first = booking(sandbox)
    grant = grants.grant(first, actor="test")
    await sandbox.settle(horizon=60)
    view = sandbox.engine.access.view(grant)
    assert [c["state"] for c in view["credentials"]] == ["issued"] * 3, view
    expected = windows(first)
    assert await active(sandbox, room) == {
        "keyvox": expected,
        "unloc": expected,
        "livionkey": expected,
    }

    moved = booking(sandbox, days=1)
    grants.update("B-1001", {"starts": moved["starts"], "ends": moved["ends"]}, actor="test")
    await sandbox.settle(horizon=60)
    expected = windows(moved)
    assert await active(sandbox, room) == {
        "keyvox": expected,
        "unloc": expected,
        "livionkey": expected,
    }

    grants.cancel("B-1001", actor="test")
    await sandbox.settle(horizon=60)
    assert await active(sandbox, room) == {"keyvox": [], "unloc": [], "livionkey": []}
    view = sandbox.engine.access.view(grants.records.grant("B-1001"))  # type: ignore[arg-type]
    assert [c["state"] for c in view["credentials"]] == ["revoked"] * 3


async def test_a_revocation_failing_three_times_is_revoked_on_the_fourth(sandbox: Sandbox) -> None:
    room = await places(sandbox)
    engine = sandbox.engine
    engine.install_flow(
        {
            "id": "overdue-alert",
            "name": "Tell the manager",
            "version": 1,
            "trigger": {"type": "access.revocation_overdue"},
            "steps": [
                {
                    "id": "note",
                    "action": "core.set",
                    "input": {"values": {"who": "{{ trigger.person }}"}},
                }
            ],
        }
    )
    grants = engine.access.grants
    grants.grant({**booking(sandbox), "places": ["Room 12"]}, actor="test")
    await sandbox.settle(horizon=60)
    fault = {"kind": "error", "status": 503, "count": 3, "path": "/api/eagle-pms/v1/disableLockPin"}
    (await sandbox.sims["keyvox"].post("/_sim/faults", json=fault)).raise_for_status()

    grants.cancel("B-1001", actor="test")
    await sandbox.settle(horizon=3600)

    assert (await active(sandbox, room))["keyvox"] == []
    faults = (await sandbox.sims["keyvox"].get("/_sim/faults")).json()
    assert faults["pending"] == 0
    (credential,) = engine.store.access.credentials()
    assert credential.state == "revoked"
    steps = [
        step
        for run in engine.store.history.runs(RunFilter(flow_id="access-reconcile", limit=100))
        for step in engine.store.history.detail(run.id)[2]
        if step.step_id == "reconcile" and step.attempts > 1
    ]
    assert [s.attempts for s in steps] == [4]
    alerts = engine.store.history.runs(RunFilter(flow_id="overdue-alert"))
    assert [(r.status, r.output) for r in alerts] == [("succeeded", {"who": "Ada Lovelace"})]
    actions = [e.action for e in engine.store.audit.events(subject=f"credential {credential.id}")]
    assert actions[:2] == ["credential.revoked", "credential.revocation_overdue"]


async def test_a_lost_answer_while_issuing_leaves_one_pin(sandbox: Sandbox) -> None:
    room = await places(sandbox)
    lost = {"kind": "lost", "path": "/api/eagle-pms/v1/createLockPin", "drop": True}
    (await sandbox.sims["keyvox"].post("/_sim/faults", json=lost)).raise_for_status()
    sandbox.engine.access.grants.grant({**booking(sandbox), "places": ["Room 12"]}, actor="test")
    await sandbox.settle(horizon=600)
    assert (await sandbox.sims["keyvox"].get("/_sim/faults")).json()["pending"] == 0
    assert len((await active(sandbox, room))["keyvox"]) == 1
    (credential,) = sandbox.engine.store.access.credentials()
    assert (credential.state, credential.issues) == ("issued", 1)


async def test_weekly_hours_move_from_one_occurrence_to_the_next(sandbox: Sandbox) -> None:
    room = await places(sandbox)
    oslo = ZoneInfo("Europe/Oslo")
    tomorrow = datetime.combine(sandbox.clock.now().astimezone(oslo).date(), time(), oslo)
    tomorrow += timedelta(days=1)
    every_day = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}
    grant = {
        **booking(sandbox),
        "places": ["Room 12"],
        "starts": tomorrow.isoformat(),
        "ends": (tomorrow + timedelta(days=7)).isoformat(),
        "weekly": {**every_day, "start": "08:00", "end": "10:00"},
    }
    sandbox.engine.access.grants.grant(grant, actor="test")
    await sandbox.settle(horizon=60)
    ((start, end),) = (await active(sandbox, room))["keyvox"]
    assert (start, end) == (tomorrow + timedelta(hours=8), tomorrow + timedelta(hours=10))

    sandbox.clock.set(end)
    await sandbox.settle(horizon=60)
    assert (await active(sandbox, room))["keyvox"] == [
        (start + timedelta(days=1), end + timedelta(days=1))
    ]


async def test_a_refused_credential_is_issued_once_the_grant_is_fixed(sandbox: Sandbox) -> None:
    await places(sandbox)
    engine = sandbox.engine
    engine.install_flow(
        {
            "id": "failed-alert",
            "name": "Tell the manager",
            "version": 1,
            "trigger": {"type": "access.credential_failed"},
            "steps": [
                {
                    "id": "note",
                    "action": "core.set",
                    "input": {"values": {"why": "{{ trigger.error }}"}},
                }
            ],
        }
    )
    no_phone = {**booking(sandbox), "places": ["Front door"], "person": {"name": "Ada Lovelace"}}
    engine.access.grants.grant(no_phone, actor="test")
    await sandbox.settle(horizon=60)
    (credential,) = engine.store.access.credentials()
    assert credential.state == "failed" and "phone number" in (credential.error or "")
    (alert,) = engine.store.history.runs(RunFilter(flow_id="failed-alert"))
    assert "phone number" in alert.output["why"]

    engine.access.grants.grant(
        {**no_phone, "person": {"name": "Ada Lovelace", "phone": "+4799887766"}}, actor="test"
    )
    await sandbox.settle(horizon=60)
    (credential,) = engine.store.access.credentials()
    assert (credential.state, credential.issues) == ("issued", 2)


async def test_a_room_given_back_while_its_revocation_is_under_way_gets_a_working_pin(
    sandbox: Sandbox,
) -> None:
    room = await places(sandbox)
    grants = sandbox.engine.access.grants
    grants.grant({**booking(sandbox), "places": ["Room 12", "Front door"]}, actor="test")
    await sandbox.settle(horizon=60)
    slow = {"kind": "slow", "delay": 1.0, "path": "/api/eagle-pms/v1/disableLockPin"}
    (await sandbox.sims["keyvox"].post("/_sim/faults", json=slow)).raise_for_status()
    grants.update("B-1001", {"places": ["Front door"]}, actor="test")
    revoking = asyncio.create_task(sandbox.dispatcher.drain())
    await asyncio.sleep(0.5)  # the room's PIN is being revoked at KEYVOX
    grants.update("B-1001", {"places": ["Room 12", "Front door"]}, actor="test")
    await revoking
    await sandbox.settle(horizon=600)

    room_credential = next(
        c for c in sandbox.engine.store.access.credentials() if c.resource_kind == "keyvox.unit"
    )
    assert (room_credential.state, room_credential.issues) == ("issued", 2)
    assert len((await active(sandbox, room))["keyvox"]) == 1
