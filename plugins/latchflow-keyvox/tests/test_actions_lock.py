"""Smart Lock actions against the simulator over real HTTP."""

from __future__ import annotations

import pytest

from latchflow import FatalError, RetryableError
from latchflow.testing import make_context
from latchflow_keyvox.testing import Runner, Sim


def window(sim: Sim, start_in: int = 3600, hours: int = 24) -> tuple[int, int]:
    now = sim.world.now()
    return now + start_in, now + start_in + hours * 3600


async def test_list_units(sim: Sim, run: Runner) -> None:
    out = await run("keyvox.list_units", {})
    assert out["count"] == 3
    room = next(u for u in out["units"] if u["unitName"] == "Room 101")
    assert len(room["lockIds"]) == 16


async def test_create_lock_pin_generates_six_digits_and_accepts_iso_times(
    sim: Sim, run: Runner
) -> None:
    unit = sim.room()["unitId"]
    s, _ = window(sim)
    out = await run(
        "keyvox.create_lock_pin",
        {
            "unitId": unit,
            "startTime": s,
            "endTime": "2099-01-01T00:00:00+09:00",
            "targetName": "Guest",
        },
    )
    assert len(out["pinCode"]) == 6 and out["pinCode"].isdigit()
    assert out["shortQrUrl"].startswith("https://") and out["reused"] is False
    assert out["eTime"] == "4070876400" and out["targetName"] == "Guest"
    pins = sim.state()["pins"]
    assert [p["pinId"] for p in pins] == [out["pinId"]]


async def test_pin_rules_are_enforced(sim: Sim, run: Runner) -> None:
    unit = sim.room()["unitId"]
    s, e = window(sim)
    await run(
        "keyvox.create_lock_pin", {"unitId": unit, "startTime": s, "endTime": e, "pinCode": "4321"}
    )
    with pytest.raises(FatalError, match="E0005"):
        await run(
            "keyvox.create_lock_pin",
            {"unitId": unit, "startTime": s, "endTime": e, "pinCode": "4321", "targetName": "B"},
        )
    with pytest.raises(FatalError, match="E0005"):
        await run("keyvox.create_lock_pin", {"unitId": unit, "startTime": e, "endTime": s})
    with pytest.raises(FatalError, match="E0043"):
        await run("keyvox.create_lock_pin", {"unitId": "0" * 24, "startTime": s, "endTime": e})
    assert run.action("keyvox.create_lock_pin").input_schema["properties"]["pinCode"]["pattern"]


async def test_list_pins_walks_every_page(sim: Sim, run: Runner) -> None:
    room = sim.room()
    s, e = window(sim)
    for i in range(13):
        await run(
            "keyvox.create_lock_pin",
            {"unitId": room["unitId"], "startTime": s + i, "endTime": e, "pinCode": f"{1000 + i}"},
        )
    out = await run("keyvox.list_unit_pins", {"unitId": room["unitId"]})
    assert out["count"] == 13 and len({p["pinId"] for p in out["pins"]}) == 13
    limited = await run("keyvox.list_unit_pins", {"unitId": room["unitId"], "limit": 11})
    assert limited["count"] == 11
    by_lock = await run("keyvox.list_lock_pins", {"lockId": room["lockIds"]})
    assert by_lock["count"] == 13
    none = await run("keyvox.list_unit_pins", {"unitId": room["unitId"], "startTime": e + 10})
    assert none["count"] == 0


async def test_change_and_disable_pin(sim: Sim, run: Runner) -> None:
    unit = sim.room()["unitId"]
    s, e = window(sim)
    pin = await run("keyvox.create_lock_pin", {"unitId": unit, "startTime": s, "endTime": e})
    changed = await run(
        "keyvox.change_lock_pin", {"pinId": pin["pinId"], "pinCode": "77889900", "endTime": e + 60}
    )
    assert changed["pinCode"] == "77889900" and changed["eTime"] == str(e + 60)
    assert await run("keyvox.disable_lock_pin", {"pinId": pin["pinId"]}) == {
        "ok": True,
        "pinId": pin["pinId"],
    }
    assert sim.state()["pins"][0]["pinStatus"] == "4"
    with pytest.raises(FatalError, match="disabled"):
        await run("keyvox.change_lock_pin", {"pinId": pin["pinId"], "pinCode": "1234"})


async def test_pin_delivery_status_moves_from_20_to_30_on_the_batch(sim: Sim, run: Runner) -> None:
    unit = sim.room()["unitId"]
    now = sim.world.now()
    far = await run(
        "keyvox.create_lock_pin",
        {"unitId": unit, "startTime": now + 5 * 86400, "endTime": now + 6 * 86400},
    )
    near = await run(
        "keyvox.create_lock_pin", {"unitId": unit, "startTime": now + 3600, "endTime": now + 7200}
    )
    for pin in (far, near):
        status = await run("keyvox.get_lock_pin_status", {"pinId": pin["pinId"]})
        assert status == {
            "pinId": pin["pinId"],
            "pinCode": pin["pinCode"],
            "status": "20",
            "delivered": False,
        }
    sim.control("/_sim/clock", {"advance": 120})
    assert (await run("keyvox.get_lock_pin_status", {"pinId": near["pinId"]}))["status"] == "30"
    assert (await run("keyvox.get_lock_pin_status", {"pinId": far["pinId"]}))["status"] == "20"
    sim.control("/_sim/clock", {"advance": 2 * 86400})  # now within 72 h of the far start
    assert (await run("keyvox.get_lock_pin_status", {"pinId": far["pinId"]}))["delivered"] is True


async def test_unlock_lock_status_history_and_events(sim: Sim, run: Runner) -> None:
    lock_id = sim.room()["lockIds"]
    assert (await run("keyvox.get_lock_status", {"lockId": lock_id}))["status"] == "1"
    assert (await run("keyvox.unlock_door", {"lockId": lock_id}))["ok"] is True
    status = await run("keyvox.get_lock_status", {"lockId": lock_id})
    assert status["status"] == "0" and status["wifi"] == "1"
    await run("keyvox.lock_door", {"lockId": lock_id})
    history = await run("keyvox.get_lock_history", {"lockId": lock_id})
    assert [(h["etype"], h["userName"], h["value"]) for h in history["entries"]] == [
        ("9", "API", "0"),
        ("9", "API", "1"),
    ]
    other = sim.room(1)["lockIds"]
    sim.control("/_sim/door", {"lockId": other, "action": "unlock", "method": "button"})
    events = await run("keyvox.search_lock_events", {"etype": "5"})
    assert [e["lockId"] for e in events["events"]] == [other]
    by_lock = await run("keyvox.search_lock_events", {"lockId": lock_id})
    assert by_lock["count"] == 2


async def test_an_offline_lock_is_retryable_and_was_not_locked(sim: Sim, run: Runner) -> None:
    lock_id = sim.room()["lockIds"]
    sim.control(f"/_sim/locks/{lock_id}", {"online": False})
    with pytest.raises(RetryableError, match="E1012") as info:
        await run("keyvox.lock_door", {"lockId": lock_id})
    assert info.value.maybe_applied is False and info.value.retry_after == 60
    assert "keyvox.lock_door" in str(info.value) and "offline" in str(info.value)
    assert (await run("keyvox.get_lock_status", {"lockId": lock_id}))["wifi"] == "0"


async def test_issue_lock_key_sends_it_once(sim: Sim, run: Runner) -> None:
    unit = sim.room()["unitId"]
    s, e = window(sim)
    data = {
        "unitId": unit,
        "startTime": s,
        "endTime": e,
        "targetName": "Ken",
        "notificationMethod": "email",
        "notificationDetails": {"email": "ken@example.com"},
    }
    ctx = make_context(run.connection, run_id="run-9", step_id="key")
    first = await run("keyvox.issue_lock_key", data, ctx)
    again = await run("keyvox.issue_lock_key", data, ctx)
    assert first["shortQrUrl"] and again["reused"] is True and again["pinId"] == first["pinId"]
    assert len(sim.state()["pins"]) == 1
    with pytest.raises(FatalError, match="email"):
        await run("keyvox.issue_lock_key", {**data, "notificationDetails": {}, "targetName": "X"})


async def test_disable_unit_pins_of_one_holder_in_a_window(sim: Sim, run: Runner) -> None:
    unit = sim.room()["unitId"]
    s, e = window(sim)
    mine = await run(
        "keyvox.create_lock_pin",
        {"unitId": unit, "startTime": s, "endTime": e, "targetName": "Ann"},
    )
    theirs = await run(
        "keyvox.create_lock_pin",
        {"unitId": unit, "startTime": s, "endTime": e, "targetName": "Bob"},
    )
    later = await run(
        "keyvox.create_lock_pin",
        {"unitId": unit, "startTime": e + 10, "endTime": e + 99, "targetName": "Ann"},
    )
    out = await run(
        "keyvox.disable_unit_pins",
        {"unitId": unit, "startTime": s, "endTime": e, "targetName": "Ann"},
    )
    assert out == {"disabled": [mine["pinId"]], "count": 1}
    active = {p["pinId"] for p in sim.state()["pins"] if p["pinStatus"] == "1"}
    assert active == {theirs["pinId"], later["pinId"]}
    again = await run(
        "keyvox.disable_unit_pins",
        {"unitId": unit, "startTime": s, "endTime": e, "targetName": "Ann"},
    )
    assert again["count"] == 0


async def test_disable_unit_pins_refuses_an_empty_holder_name(sim: Sim, run: Runner) -> None:
    """An empty guest name must not turn into "every holder" (the over-revocation bug)."""
    unit = sim.room()["unitId"]
    s, e = window(sim)
    await run("keyvox.create_lock_pin", {"unitId": unit, "startTime": s, "endTime": e})
    with pytest.raises(FatalError, match=r"\$\.input\.targetName is empty"):
        await run(
            "keyvox.disable_unit_pins",
            {"unitId": unit, "startTime": s, "endTime": e, "targetName": ""},
        )
    assert [p["pinStatus"] for p in sim.state()["pins"]] == ["1"]
