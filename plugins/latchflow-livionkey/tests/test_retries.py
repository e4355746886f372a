"""Calls whose answer is lost, or applied late, make one object; errors say what happened.

Each action is called as the engine calls it: attempt 1, then attempt 2 after an ambiguous
failure, then (for a create made on a retry) again with its ``Pending`` state.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from latchflow import (
    Connection,
    FakeClock,
    FatalError,
    Pending,
    RateLimitedError,
    RetryableError,
)
from latchflow.testing import free_port, make_connection

LATE = 0.5  # seconds until the simulator applies a call it answered 504 for


def contract_input(v1: Connection, key: str = "apt-102") -> dict[str, Any]:
    now = v1.clock.now()
    return {
        "deviceId": "000111",
        "keyId": key,
        "person": "Ada",
        "contacts": [{"email": "ada@example.com", "phoneNumber": "+358401234567"}],
        "start": (now + timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(hours=2)).isoformat(),
    }


async def test_v1_creates_adopt_what_a_lost_answer_made(
    v1: Connection, v1_url: str, act: Any, simpost: Any, simget: Any
) -> None:
    key = {"deviceId": "000111", "keyId": "apt-105", "keyName": "Apartment 105"}
    await simpost(v1_url, "/_sim/faults", {"kind": "lost", "path": "/keys", "drop": True})
    with pytest.raises(RetryableError, match="reset or closed") as lost:
        await act(v1, "livionkey.create_key", key, step="key")
    assert lost.value.maybe_applied is True
    adopted = await act(v1, "livionkey.create_key", key, step="key", attempt=2)
    keys = [k for k in (await simget(v1_url, "/_sim/v1/state"))["keys"] if k["keyId"] == "apt-105"]
    assert [adopted["lockerIndex"]] == [k["lockerIndex"] for k in keys]

    data = contract_input(v1)
    await simpost(v1_url, "/_sim/faults", {"kind": "lost", "path": "/contracts"})
    with pytest.raises(RetryableError, match="HTTP 504") as lost:
        await act(v1, "livionkey.create_contract", data, step="contract")
    assert lost.value.maybe_applied is True
    made = await act(v1, "livionkey.create_contract", data, step="contract", attempt=2)
    contracts = (await simget(v1_url, "/_sim/v1/state"))["contracts"]
    assert [c["id"] for c in contracts] == [made["id"]]
    assert made["pincode"] == contracts[0]["pincode"]


async def test_v1_creates_applied_late_make_one(
    v1: Connection, v1_url: str, act: Any, simpost: Any, simget: Any, settle: Any
) -> None:
    key = {"deviceId": "000111", "keyId": "apt-106", "keyName": "Apartment 106"}
    data = contract_input(v1, "apt-101")
    for path, action, step_input in [
        ("/keys", "livionkey.create_key", key),
        ("/contracts", "livionkey.create_contract", data),
    ]:
        await simpost(v1_url, "/_sim/faults", {"kind": "late", "path": path, "delay": LATE})
        with pytest.raises(RetryableError):
            await act(v1, action, step_input, step=action)
        await act(v1, action, step_input, step=action, attempt=2)  # made before the late one
        await settle(v1_url)  # the late call is applied now, and refused as a second one
    state = await simget(v1_url, "/_sim/v1/state")
    assert [k["keyId"] for k in state["keys"]].count("apt-106") == 1
    assert len(state["contracts"]) == 1


async def test_v1_delete_whose_answer_was_lost_counts_as_deleted(
    v1: Connection, v1_url: str, act: Any, simpost: Any
) -> None:
    made = await act(v1, "livionkey.create_contract", contract_input(v1))
    await simpost(v1_url, "/_sim/faults", {"kind": "lost", "path": f"/contracts/{made['id']}"})
    with pytest.raises(RetryableError):
        await act(v1, "livionkey.delete_contract", {"id": made["id"]}, step="delete")
    again = await act(v1, "livionkey.delete_contract", {"id": made["id"]}, step="delete", attempt=2)
    assert again == {"deleted": True, "message": "the contract did not exist (already deleted)"}


def handover(**more: Any) -> dict[str, Any]:
    return {
        "numberOfKeys": 2,
        "accessRightIds": ["ar-main-door"],
        "start": time.time() + 3600,
        "end": time.time() + 7200,
        "contact": {"name": "Aino Jääskeläinen", "email": "aino@example.com"},
        **more,
    }


async def test_v2_handover_adopts_what_a_lost_answer_made(
    v2: Connection, v2_url: str, act: Any, simpost: Any, simget: Any
) -> None:
    data = handover(keyAutomatId="000111")
    fault = {"kind": "lost", "path": "/v2/iloq/keycontracts", "drop": True}
    await simpost(v2_url, "/_sim/faults", fault)
    with pytest.raises(RetryableError) as lost:
        await act(v2, "livionkey.create_iloq_contract", data, step="handover")
    assert lost.value.maybe_applied is True
    adopted = await act(v2, "livionkey.create_iloq_contract", data, step="handover", attempt=2)
    (contract,) = (await simget(v2_url, "/_sim/v2/state"))["contracts"]
    assert adopted["id"] == contract["id"] and adopted["duplicatesRemoved"] == []
    assert adopted["pincodes"] == [k["storageInfo"]["pincode"] for k in contract["keys"]]
    assert adopted["contact"]["name"] == "Aino Jääskeläinen"


async def test_v2_handover_applied_late_is_found_and_deleted(
    v2: Connection, v2_url: str, act: Any, simpost: Any, simget: Any, settle: Any
) -> None:
    # Two of Kamppi's four keys are booked for the stay: the handover takes the other two,
    # and the late copy of its call finds Kamppi empty and takes Kallio's keys.
    await act(v2, "livionkey.create_iloq_contract", handover(keyAutomatId="000111"))
    data = handover(groupId="grp-helsinki", verifyAfterSeconds=60)
    fault = {"kind": "late", "path": "/v2/iloq/keycontracts", "delay": LATE}
    await simpost(v2_url, "/_sim/faults", fault)
    with pytest.raises(RetryableError, match="HTTP 504"):
        await act(v2, "livionkey.create_iloq_contract", data, step="handover")
    before = v2.clock.now()
    pending = await act(v2, "livionkey.create_iloq_contract", data, step="handover", attempt=2)
    assert isinstance(pending, Pending)
    assert pending.check_at - before >= timedelta(seconds=60)
    await settle(v2_url)
    in_group = [
        c
        for c in (await simget(v2_url, "/_sim/v2/state"))["contracts"]
        if c["groupId"] == "grp-helsinki"
    ]
    assert {c["keys"][0]["storageInfo"]["deviceId"] for c in in_group} == {"000111", "000112"}

    done = await act(
        v2,
        "livionkey.create_iloq_contract",
        data,
        step="handover",
        attempt=2,
        state=pending.state,
    )
    (copy,) = [c["id"] for c in in_group if c["id"] != done["id"]]
    assert done["duplicatesRemoved"] == [copy] and done["deviceId"] == "000111"
    left = [c["id"] for c in (await simget(v2_url, "/_sim/v2/state"))["contracts"]]
    assert done["id"] in left and copy not in left and len(left) == 2


async def test_v2_group_applied_late_is_found_and_deleted(
    v2: Connection, v2_url: str, act: Any, simpost: Any, simget: Any, settle: Any
) -> None:
    data = {"name": "Airport T2", "customerId": "cust-demo"}
    await simpost(v2_url, "/_sim/faults", {"kind": "late", "path": "/v2/groups", "delay": LATE})
    with pytest.raises(RetryableError):
        await act(v2, "livionkey.create_group", data, step="group")
    pending = await act(v2, "livionkey.create_group", data, step="group", attempt=2)
    assert isinstance(pending, Pending)
    await settle(v2_url)
    state = pending.state
    done = await act(v2, "livionkey.create_group", data, step="group", attempt=2, state=state)
    groups = [
        g for g in (await simget(v2_url, "/_sim/v2/state"))["groups"] if g["name"] == data["name"]
    ]
    assert [g["id"] for g in groups] == [done["id"]] and len(done["duplicatesRemoved"]) == 1


async def test_errors_name_the_call_and_carry_the_vendor_answer(
    v1: Connection, v1_url: str, v2: Connection, v2_url: str, act: Any, simpost: Any
) -> None:
    device = {"deviceId": "000111"}
    await simpost(v1_url, "/_sim/faults", {"kind": "error", "status": 500, "path": "/devices"})
    with pytest.raises(RetryableError) as failed:
        await act(v1, "livionkey.get_device", device)
    assert str(failed.value) == (
        "LivionKey API V1 GET /devices/000111: LivionKey answered HTTP 500 (Injected failure)"
    )
    assert (failed.value.maybe_applied, failed.value.status) == (True, 500)

    await simpost(v1_url, "/_sim/faults", {"kind": "rate_limit", "retry_after": 7})
    with pytest.raises(RateLimitedError, match="rate-limited the call") as limited:
        await act(v1, "livionkey.get_device", device)
    assert (limited.value.retry_after, limited.value.maybe_applied) == (7, False)

    await simpost(v1_url, "/_sim/faults", {"kind": "error", "status": 409})
    with pytest.raises(RetryableError, match="reserved or busy") as busy:
        await act(v1, "livionkey.get_device", device)
    assert busy.value.maybe_applied is False

    v1.config["timeoutSeconds"] = 0.3
    await simpost(v1_url, "/_sim/faults", {"kind": "timeout", "delay": 1})
    with pytest.raises(RetryableError, match=r"no answer within 0.3 s \(timed out\)") as slow:
        await act(v1, "livionkey.get_device", device)
    assert slow.value.maybe_applied is True

    nowhere = make_connection(
        "livionkey", {**v1.config, "base_url": f"http://127.0.0.1:{free_port()}"}
    )
    with pytest.raises(RetryableError, match="could not connect") as refused:
        await act(nowhere, "livionkey.get_device", device)
    assert refused.value.maybe_applied is False
    await nowhere.http.aclose()

    with pytest.raises(FatalError) as missing:
        await act(v2, "livionkey.get_iloq_contract", {"id": "nope"})
    assert str(missing.value) == (
        "LivionKey API V2 GET /iloq/keycontracts/nope was refused"
        " (HTTP 404 Not Found (Contract nope not found))"
    )
    await simpost(v2_url, "/_sim/faults", {"kind": "error", "status": 502})
    with pytest.raises(RetryableError, match="answered HTTP 502") as bad_gateway:
        await act(v2, "livionkey.list_groups", {})
    assert bad_gateway.value.maybe_applied is True


async def test_a_locker_opens_only_within_its_deadline(
    v1: Connection, v1_url: str, v2: Connection, act: Any, simpost: Any, simget: Any
) -> None:
    door = {"deviceId": "000111", "lockerIndex": 2}
    now = v1.clock.now()
    late = now - timedelta(seconds=31)
    await simpost(v1_url, "/_sim/faults", {"kind": "error", "status": 409, "path": "/devices"})
    with pytest.raises(FatalError, match="locker not opened in time"):
        await act(v1, "livionkey.open_locker_door", door, started_at=late)
    assert (await simget(v1_url, "/_sim/faults"))["pending"] == 1  # nothing was sent
    with pytest.raises(RetryableError, match="reserved or busy"):  # retried within the deadline
        await act(v1, "livionkey.open_locker_door", door, started_at=now)

    await simpost(v1_url, "/_sim/faults", {"kind": "rate_limit", "retry_after": 60})
    with pytest.raises(FatalError, match="locker not opened in time"):  # cannot wait 60 s
        await act(v1, "livionkey.open_locker_door", door, started_at=now)

    # A call never waits past the deadline for its answer, and then it is too late.
    await simpost(v1_url, "/_sim/faults", {"kind": "timeout", "delay": 1})
    almost = now - timedelta(seconds=29.7)
    with pytest.raises(RetryableError, match=r"no answer within 0.3 s"):
        await act(v1, "livionkey.open_locker_door", door, started_at=almost)
    assert isinstance(v1.clock, FakeClock)
    v1.clock.advance(0.3)
    with pytest.raises(FatalError, match="locker not opened in time"):
        await act(v1, "livionkey.open_locker_door", door, started_at=almost)

    opened = await act(
        v1, "livionkey.open_locker_door", {**door, "deadlineSeconds": 60}, started_at=late
    )
    assert opened["sent"] is True

    pincode = {"automatId": "000111", "pincode": "123456"}
    with pytest.raises(FatalError, match="locker not opened in time"):
        await act(
            v2, "livionkey.send_pincode", pincode, started_at=v2.clock.now() - timedelta(seconds=31)
        )
