"""The LivionKey example flows, run by the engine against both simulators: each revokes exactly
what its booking made; and a locker step that cannot open in time fails instead of opening late."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request

from latchflow import FakeClock
from latchflow.engine import Engine
from latchflow.storage.database import Settings
from latchflow.testing import load_registry, serve_app
from latchflow_livionkey.connection import sandbox_v1, sandbox_v2

FLOWS = Path(__file__).resolve().parents[3] / "flows"


@pytest.fixture
def replies() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Where the flows' http.request steps post, and what they posted."""
    bodies: list[dict[str, Any]] = []
    app = FastAPI()

    @app.post("/receiver")
    async def receive(request: Request) -> dict[str, bool]:
        bodies.append(await request.json())
        return {"ok": True}

    with serve_app(app) as base:
        yield f"{base}/receiver", bodies


@pytest.fixture
async def engine(
    tmp_path: Path,
    v1_url: str,
    v2_url: str,
    replies: tuple[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Engine]:
    monkeypatch.setenv("LATCHFLOW_HTTP_ALLOW_NETWORKS", "127.0.0.0/8")
    clock = FakeClock(datetime.now(UTC))
    engine = Engine(
        Settings.from_environment(tmp_path / "data"), registry=load_registry(), clock=clock
    )
    unused = "http://127.0.0.1:9/unused"
    await engine.connections.save(
        "sandbox-livionkey", "livionkey", "Sandbox V1", await sandbox_v1(v1_url, unused)
    )
    await engine.connections.save(
        "sandbox-livionkey_v2", "livionkey_v2", "Sandbox V2", await sandbox_v2(v2_url, unused)
    )
    for path in FLOWS.glob("livionkey-*.json"):
        flow = json.loads(path.read_text())
        for step in flow["steps"]:
            if step["action"] == "http.request":
                step["input"]["url"] = replies[0]
        engine.install_flow(flow)
    yield engine
    await engine.close()


def advance(engine: Engine) -> Callable[[float], Awaitable[None]]:
    async def wait(seconds: float) -> None:
        assert isinstance(engine.clock, FakeClock)
        engine.clock.advance(seconds)

    return wait


async def run(engine: Engine, flow_id: str, data: dict[str, Any]) -> Any:
    accepted = engine.start(flow_id, data)
    return await engine.run_until_done(accepted.run_id, wait=advance(engine))


def posted(booking: dict[str, Any]) -> dict[str, Any]:
    return {"body": {"booking": booking}, "headers": {}, "received_at": "2026-03-01T10:00:00Z"}


async def test_v1_cancellation_deletes_exactly_its_bookings_contract(
    engine: Engine, v1_url: str, replies: Any, simget: Any
) -> None:
    now = datetime.now(UTC)
    for booking_id, key in (("B-1", "apt-101"), ("B-2", "apt-102")):
        booking = {
            "id": booking_id,
            "deviceId": "000111",
            "keyId": key,
            "checkIn": (now + timedelta(hours=2)).isoformat(),
            "checkOut": (now + timedelta(days=2)).isoformat(),
            "guestName": "Aino Jääskeläinen",
            "email": "aino@example.com",
            "phone": "040 1234567",
        }
        made = await run(engine, "livionkey-booking-pincode", posted(booking))
        assert made.status == "succeeded", made.error
    contracts = (await simget(v1_url, "/_sim/v1/state"))["contracts"]
    assert sorted(c["contractId"] for c in contracts) == ["booking-B-1", "booking-B-2"]
    assert {r["pincode"] for r in replies[1]} == {c["pincode"] for c in contracts}

    cancel = {"id": "B-1", "deviceId": "000111"}
    cancelled = await run(engine, "livionkey-booking-cancelled", posted(cancel))
    assert cancelled.status == "succeeded", cancelled.error
    left = (await simget(v1_url, "/_sim/v1/state"))["contracts"]
    assert [c["contractId"] for c in left] == ["booking-B-2"]
    deleted = next(c["id"] for c in contracts if c["contractId"] == "booking-B-1")
    assert replies[1][-1] == {"bookingId": "B-1", "deletedContract": deleted}

    never_booked = await run(
        engine, "livionkey-booking-cancelled", posted({"id": "B-3", "deviceId": "000111"})
    )
    assert never_booked.status == "filtered"
    assert len((await simget(v1_url, "/_sim/v1/state"))["contracts"]) == 1

    overdue = {
        "deviceId": "000111",
        "keyId": "apt-102",
        "lockerIndex": "1",
        "contractId": "booking-B-2",
        "contractObjectId": left[0]["id"],
        "state": "key-not-returned",
        "time": now.isoformat(),
    }
    alert = await run(engine, "livionkey-key-not-returned-alert", overdue)
    assert alert.status == "succeeded", alert.error
    assert replies[1][-1]["holder"] == "Aino Jääskeläinen"


async def test_v2_cancellation_deletes_exactly_its_bookings_handover(
    engine: Engine, v2_url: str, replies: Any, simget: Any
) -> None:
    now = datetime.now(UTC)
    for booking_id, email in (("B-1", "aino@example.com"), ("B-2", "bo@example.com")):
        booking = {
            "id": booking_id,
            "automatGroupId": "grp-helsinki",
            "accessRightIds": ["ar-main-door"],
            "checkIn": (now + timedelta(hours=2)).isoformat(),
            "checkOut": (now + timedelta(days=2)).isoformat(),
            "guestName": "Aino Jääskeläinen",
            "email": email,
            "phone": "040 1234567",
        }
        made = await run(engine, "livionkey-booking-iloq-handover", posted(booking))
        assert made.status == "succeeded", made.error
    first, second = replies[1]
    contracts = (await simget(v2_url, "/_sim/v2/state"))["contracts"]
    assert {c["id"] for c in contracts} == {first["contractId"], second["contractId"]}

    wrong_guest = {"id": "B-2", "livionkeyContractId": second["contractId"], "email": "x@y.z"}
    refused = await run(engine, "livionkey-iloq-booking-cancelled", posted(wrong_guest))
    assert refused.status == "filtered"
    cancel = {"id": "B-1", "livionkeyContractId": first["contractId"], "email": "aino@example.com"}
    cancelled = await run(engine, "livionkey-iloq-booking-cancelled", posted(cancel))
    assert cancelled.status == "succeeded", cancelled.error
    left = (await simget(v2_url, "/_sim/v2/state"))["contracts"]
    assert [c["id"] for c in left] == [second["contractId"]]

    fetched = {
        "eventId": "msg_1",
        "eventType": "key-status",
        "state": "key-fetched",
        "storageType": "device",
        "deviceId": second["automatId"],
        "keyId": left[0]["keys"][0]["id"],
        "contractId": second["contractId"],
        "occurredAt": now.isoformat(),
    }
    notified = await run(engine, "livionkey-iloq-key-fetched", fetched)
    assert notified.status == "succeeded", notified.error
    assert replies[1][-1]["contractId"] == second["contractId"]


async def test_a_locker_that_stays_busy_is_not_opened_late(
    engine: Engine, v1_url: str, simpost: Any
) -> None:
    engine.install_flow(
        {
            "id": "open-door",
            "name": "Open a locker",
            "version": 1,
            "trigger": {"type": "manual"},
            "steps": [
                {
                    "id": "open",
                    "action": "livionkey.open_locker_door",
                    "connection": "sandbox-livionkey",
                    "input": {"deviceId": "000111", "lockerIndex": 2},
                }
            ],
        }
    )
    busy = {"kind": "error", "status": 409, "path": "/devices/000111/opendoor", "count": 1000}
    await simpost(v1_url, "/_sim/faults", busy)
    started = engine.clock.now()
    failed = await run(engine, "open-door", {})
    assert failed.status == "failed"
    assert failed.error.startswith(
        "step 'open' (livionkey.open_locker_door): locker not opened in time:"
    )
    # failed at the first attempt after 30 s, at most one wait (5 s, jitter 20 %) later
    assert timedelta(seconds=30) <= failed.finished_at - started < timedelta(seconds=36)
    _, _, (step,) = engine.store.history.detail(failed.id)
    assert step.attempts > 3  # retried while it could still open in time
