"""Smart Locker and IC Card actions against the simulator over real HTTP."""

from __future__ import annotations

import pytest

from latchflow import FatalError, RetryableError
from latchflow.testing import make_context
from latchflow_keyvox.testing import Runner, Sim


async def locker_id(run: Runner) -> str:
    out = await run("keyvox.list_lockers", {})
    assert out["count"] == 1
    return str(out["lockers"][0]["deviceId"])


async def test_find_box_create_pin_and_colour(sim: Sim, run: Runner) -> None:
    device = await locker_id(run)
    now = sim.world.now()
    window = {"startTime": now + 60, "endTime": now + 3600}
    medium = await run(
        "keyvox.find_available_boxes", {"deviceId": device, "boxSize": "2", **window}
    )
    assert [b["boxNum"] for b in medium["boxes"]] == ["00-03", "00-04"]
    box = medium["first"]["boxNum"]
    pin = await run(
        "keyvox.create_locker_pin",
        {"deviceId": device, "boxNum": box, "targetName": "Parcel 17", "singleUse": True, **window},
    )
    assert len(pin["pinCode"]) == 6
    again = await run("keyvox.find_available_boxes", {"deviceId": device, "boxSize": "2", **window})
    assert [b["boxNum"] for b in again["boxes"]] == ["00-04"]
    with pytest.raises(FatalError, match="not available"):
        await run("keyvox.create_locker_pin", {"deviceId": device, "boxNum": box, **window})
    assert await run(
        "keyvox.set_box_color", {"deviceId": device, "boxNum": box, "color": "green"}
    ) == {
        "boxNum": box,
        "color": "green",
    }
    status = await run("keyvox.get_locker_status", {"deviceId": device})
    row = next(b for b in status["boxes"] if b["boxNum"] == box)
    assert row["color"] == "green" and row["doorStatus"] == "0"
    changed = await run("keyvox.change_locker_pin", {"pinId": pin["pinId"], "pinCode": "2468"})
    assert changed["pinCode"] == "2468"
    await run("keyvox.unlock_locker_box", {"deviceId": device, "boxNum": box})
    status = await run("keyvox.get_locker_status", {"deviceId": device})
    assert next(b for b in status["boxes"] if b["boxNum"] == box)["doorStatus"] == "1"
    await run("keyvox.disable_locker_pin", {"pinId": pin["pinId"]})
    freed = await run("keyvox.find_available_boxes", {"deviceId": device, "boxSize": "2", **window})
    assert freed["count"] == 2


async def test_locker_status_can_take_a_box_out_of_service(sim: Sim, run: Runner) -> None:
    device = await locker_id(run)
    now = sim.world.now()
    out = await run(
        "keyvox.set_locker_status", {"deviceId": device, "boxNum": "00-01", "status": "0"}
    )
    assert next(b for b in out["boxes"] if b["boxNum"] == "00-01")["enabled"] == "0"
    small = await run(
        "keyvox.find_available_boxes",
        {"deviceId": device, "boxSize": "1", "startTime": now, "endTime": now + 60},
    )
    assert [b["boxNum"] for b in small["boxes"]] == ["00-02"]
    with pytest.raises(FatalError, match="color must be one of"):
        await run.action("keyvox.set_box_color").run(
            make_context(run.connection), {"deviceId": device, "boxNum": "00-02", "color": "uv"}
        )


async def test_lock_cards(sim: Sim, run: Runner) -> None:
    lock_id = sim.room()["lockIds"]
    now = sim.world.now()
    card = await run(
        "keyvox.set_card",
        {
            "lockId": lock_id,
            "cardCode": "04a1b2c3d4",
            "cardName": "Cleaner",
            "startTime": now,
            "endTime": now + 86400,
        },
    )
    assert card["cardCode"] == "04A1B2C3D4" and card["status"] == "20"
    with pytest.raises(FatalError, match="already registered"):
        await run(
            "keyvox.set_card",
            {"lockId": lock_id, "cardCode": "04A1B2C3D4", "startTime": now, "endTime": now + 60},
        )
    sim.control("/_sim/clock", {"advance": 120})
    status = await run("keyvox.get_card_status", {"cardId": card["cardId"]})
    assert status["status"] == "30" and status["state"] == "valid"
    updated = await run(
        "keyvox.update_card", {"cardId": card["cardId"], "cardName": "Night cleaner"}
    )
    assert updated["cardName"] == "Night cleaner"
    listed = await run("keyvox.list_lock_cards", {"lockId": lock_id})
    assert [c["cardId"] for c in listed["cards"]] == [card["cardId"]]
    await run("keyvox.disable_card", {"cardId": card["cardId"]})
    assert (await run("keyvox.get_card_status", {"cardId": card["cardId"]}))["state"] == "disabled"


async def test_locker_cards(sim: Sim, run: Runner) -> None:
    device = await locker_id(run)
    now = sim.world.now()
    card = await run(
        "keyvox.set_locker_card",
        {
            "deviceId": device,
            "boxNum": "00-05",
            "cardCode": "DEADBEEF01",
            "startTime": now,
            "endTime": now + 600,
        },
    )
    assert card["boxNum"] == "00-05"
    updated = await run(
        "keyvox.update_locker_card", {"cardId": card["cardId"], "endTime": now + 7200}
    )
    assert updated["eTime"] == str(now + 7200)
    with pytest.raises(FatalError, match="E0043"):
        await run("keyvox.update_card", {"cardId": card["cardId"], "cardName": "lock card api"})


async def test_set_card_after_a_lost_answer_finds_the_card_registered_as_asked(
    sim: Sim, run: Runner
) -> None:
    now = sim.world.now()
    data = {
        "lockId": sim.room()["lockIds"],
        "cardCode": "04a1b2c3d4",
        "cardName": "Cleaner",
        "startTime": now,
        "endTime": now + 86400,
    }
    sim.control("/_sim/faults", {"kind": "lost", "path": "/api/eagle-pms/v1/setCard"})
    with pytest.raises(RetryableError):
        await run("keyvox.set_card", data)
    card = await run("keyvox.set_card", data)
    assert card["cardCode"] == "04A1B2C3D4" and card["cardName"] == "Cleaner"
    assert [c["cardId"] for c in sim.state()["cards"]] == [card["cardId"]]
    # the same card asked for with another window is not what is registered: still refused
    with pytest.raises(FatalError, match="already registered"):
        await run("keyvox.set_card", {**data, "endTime": now + 60})
