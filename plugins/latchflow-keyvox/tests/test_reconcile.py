"""Creates that reconcile: a retried, replayed or late-applied create step leaves exactly one
object at KEYVOX (simulator state checked), with the simulator's own faults."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from latchflow import JSON, FakeClock, FatalError, Pending, RetryableError, RunContext
from latchflow.testing import make_context
from latchflow_keyvox.markers import marker
from latchflow_keyvox.simulator.world import Box, Locker
from latchflow_keyvox.testing import Runner, Sim

API = "/api/eagle-pms/v1"


def attempt(
    run: Runner, n: int, state: JSON | None = None, clock: FakeClock | None = None
) -> RunContext:
    """Attempt ``n`` of one step (same run, same idempotency key)."""
    return make_context(
        run.connection, run_id="run-7", step_id="make", attempt=n, state=state, clock=clock
    )


async def lost_then_retried(sim: Sim, run: Runner, key: str, function: str, data: JSON) -> JSON:
    """The first attempt is applied and its answer lost; the result of the second."""
    sim.control("/_sim/faults", {"kind": "lost", "path": f"{API}/{function}"})
    with pytest.raises(RetryableError) as info:
        await run(key, data, attempt(run, 1))
    assert info.value.maybe_applied is True
    retried: JSON = await run(key, data, attempt(run, 2))
    return retried


def lock_pin_input(sim: Sim, **extra: object) -> JSON:
    now = sim.world.now()
    return {"unitId": sim.room()["unitId"], "startTime": now + 60, "endTime": now + 7200, **extra}


def locker_pin_input(sim: Sim) -> JSON:
    now = sim.world.now()
    device = sim.state()["lockers"][0]["deviceId"]
    return {"deviceId": device, "boxNum": "00-05", "startTime": now, "endTime": now + 3600}


def booking_input(sim: Sim) -> JSON:
    now = sim.world.now()
    room = sim.room()
    place = sim.state()["places"][0]["placeId"]
    return {
        "placeId": place,
        "unitId": room["unitId"],
        "guestName": "Hanako",
        "checkIn": now + 86400,
        "checkOut": now + 2 * 86400,
    }


def lock_pins(sim: Sim) -> list[JSON]:
    return [p for p in sim.state()["pins"] if p["pinStatus"] == "1" and "unitId" in p]


def locker_pins(sim: Sim) -> list[JSON]:
    return [p for p in sim.state()["pins"] if p["pinStatus"] == "1" and "deviceId" in p]


def bookings(sim: Sim) -> list[JSON]:
    return [b for b in sim.state()["bookings"] if b["orderStateCode"] != "C"]


Prepare = Callable[[Sim], JSON]
Count = Callable[[Sim], list[JSON]]


async def test_replayed_create_pin_step_does_not_create_a_second_pin(sim: Sim, run: Runner) -> None:
    data = lock_pin_input(sim, targetName="Hanako")
    first = await run("keyvox.create_lock_pin", data, attempt(run, 1))
    replay = await run("keyvox.create_lock_pin", data, attempt(run, 1))  # replayed from start
    assert replay["pinId"] == first["pinId"] and replay["pinCode"] == first["pinCode"]
    assert (first["reused"], replay["reused"]) == (False, True)
    assert replay["targetName"] == "Hanako"
    pins = sim.state()["pins"]
    assert len(pins) == 1 and pins[0]["targetName"] == "Hanako" + marker("run-7:make")

    # another run of the same flow is another step: it gets its own PIN
    other = await run("keyvox.create_lock_pin", data)
    assert other["pinId"] != first["pinId"]
    assert len(sim.state()["pins"]) == 2


@pytest.mark.parametrize(
    ("key", "function", "prepare", "made_at_keyvox"),
    [
        ("keyvox.create_lock_pin", "createLockPin", lock_pin_input, lock_pins),
        ("keyvox.issue_lock_key", "issueLockKey", lock_pin_input, lock_pins),
        ("keyvox.create_locker_pin", "createLockerPin", locker_pin_input, locker_pins),
        ("keyvox.create_booking", "createBooking", booking_input, bookings),
    ],
)
async def test_a_retry_after_a_lost_answer_adopts_what_keyvox_made(
    sim: Sim, run: Runner, key: str, function: str, prepare: Prepare, made_at_keyvox: Count
) -> None:
    """Before, create_locker_pin and create_booking failed here with "not available"."""
    made = await lost_then_retried(sim, run, key, function, prepare(sim))
    assert made["reused"] is True and made["duplicatesRemoved"] == []
    assert len(made_at_keyvox(sim)) == 1


async def test_a_pin_keyvox_applied_late_is_revoked_after_the_verify_delay(
    sim: Sim, run: Runner
) -> None:
    """The audit: "a PIN the vendor applied 45 s late gave two active PINs"."""
    clock = FakeClock(sim.world.sim.clock.now())
    data = lock_pin_input(sim, targetName="Hanako", verifyAfterSeconds=90)
    sim.control("/_sim/faults", {"kind": "late", "path": f"{API}/createLockPin", "delay": 0.2})
    with pytest.raises(RetryableError):
        await run("keyvox.create_lock_pin", data, attempt(run, 1, clock=clock))
    action = run.action("keyvox.create_lock_pin")
    waiting = await action.run(attempt(run, 2, clock=clock), data)  # before KEYVOX applied it
    assert isinstance(waiting, Pending)
    assert waiting.check_at == clock.now() + timedelta(seconds=90)
    sim.settle()  # KEYVOX applies the first attempt late
    assert len(lock_pins(sim)) == 2
    checked = await run("keyvox.create_lock_pin", data, attempt(run, 2, state=waiting.state))
    assert checked["pinId"] == waiting.state["made"] and checked["reused"] is False
    [late] = checked["duplicatesRemoved"]
    assert late != checked["pinId"] and checked["targetName"] == "Hanako"
    assert [p["pinId"] for p in lock_pins(sim)] == [checked["pinId"]]


@pytest.mark.parametrize(
    ("key", "function", "prepare", "made_at_keyvox"),
    [
        ("keyvox.create_locker_pin", "createLockerPin", locker_pin_input, locker_pins),
        ("keyvox.create_booking", "createBooking", booking_input, bookings),
    ],
)
async def test_a_late_create_that_keyvox_refuses_leaves_one(
    sim: Sim, run: Runner, key: str, function: str, prepare: Prepare, made_at_keyvox: Count
) -> None:
    """A box or a room is taken once: the late attempt fails at KEYVOX; the check finds one."""
    data = prepare(sim)
    sim.control("/_sim/faults", {"kind": "late", "path": f"{API}/{function}", "delay": 0.2})
    with pytest.raises(RetryableError):
        await run(key, data, attempt(run, 1))
    waiting = await run.action(key).run(attempt(run, 2), data)
    assert isinstance(waiting, Pending)
    sim.settle()  # KEYVOX applied the first attempt late: it found the box or room taken
    checked = await run(key, data, attempt(run, 2, state=waiting.state))
    assert checked["duplicatesRemoved"] == []
    assert [o.get("orderId", o.get("pinId")) for o in made_at_keyvox(sim)] == [
        checked.get("orderId", checked.get("pinId"))
    ]


async def test_a_retry_refused_because_a_late_attempt_took_the_box_adopts_it(
    sim: Sim, run: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KEYVOX applies the first attempt between the retry's look-up and its create."""
    data = {**locker_pin_input(sim), "targetName": "Parcel 17"}
    box = sim.world.box

    def apply_first_attempt_now(device_id: str, box_num: str) -> tuple[Locker, Box]:
        monkeypatch.setattr(sim.world, "box", box)
        name = "Parcel 17" + marker("run-7:make")
        where = {"deviceId": device_id, "boxNum": box_num}
        sim.world.new_pin(where, int(data["startTime"]), int(data["endTime"]), None, name)
        return box(device_id, box_num)

    monkeypatch.setattr(sim.world, "box", apply_first_attempt_now)  # createLockerPin's lookup
    made = await run("keyvox.create_locker_pin", data, attempt(run, 2))
    assert made["reused"] is True and made["targetName"] == "Parcel 17"
    assert len(locker_pins(sim)) == 1


async def test_the_check_fails_when_the_object_it_made_is_gone(sim: Sim, run: Runner) -> None:
    data = lock_pin_input(sim)
    made = await run("keyvox.create_lock_pin", data, attempt(run, 1))
    await run("keyvox.disable_lock_pin", {"pinId": made["pinId"]})
    with pytest.raises(FatalError, match=f"keyvox.create_lock_pin: the PIN {made['pinId']}"):
        await run("keyvox.create_lock_pin", data, attempt(run, 2, state={"made": made["pinId"]}))
