"""unloc.create_key / create_keys against the simulator: a job followed across wake-ups."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from latchflow import Connection, FatalError, Pending
from latchflow.testing import make_context
from latchflow_unloc.create_key import CREATE_KEY
from latchflow_unloc.create_keys import CREATE_KEYS
from latchflow_unloc.read_actions import GET_JOB
from latchflow_unloc.testing import APARTMENT, FRONT_DOOR, Sim


async def run_until_done(
    sim: Sim,
    conn: Connection,
    action: Any,
    input: dict[str, Any],
    max_wakeups: int = 50,
    attempt: int = 1,
) -> tuple[dict[str, Any], list[Pending]]:
    """Call the action like the executor would: again at each check_at, with its state."""
    pendings: list[Pending] = []
    state = None
    for _ in range(max_wakeups):
        result = await action.run(make_context(conn, state=state, attempt=attempt), input)
        if not isinstance(result, Pending):
            Draft202012Validator(action.output_schema).validate(result)
            return result, pendings
        pendings.append(result)
        state = result.state
        wait = (result.check_at - sim.world.now()).total_seconds()
        await sim.advance(max(wait, 0))
    raise AssertionError("the action never finished")


async def test_create_key_spans_several_wakeups_until_the_job_succeeds(
    sim: Sim, conn: Connection
) -> None:
    await sim.control("/_sim/settings", {"job_delay": 12})
    input = {"lockId": FRONT_DOOR, "appUserId": "+47 998 87 766", "pollInterval": 3}
    first = await CREATE_KEY.run(make_context(conn), input)
    assert isinstance(first, Pending)
    assert set(first.state) >= {"job_id"}
    assert abs((first.check_at - sim.world.now()).total_seconds() - 3) < 1
    job = await GET_JOB.run(make_context(conn), {"jobId": first.state["job_id"]})
    assert job["status"] == "pending"

    seen_status = []
    state = first.state
    result: dict[str, Any] | Pending = first
    while isinstance(result, Pending):
        await sim.advance((result.check_at - sim.world.now()).total_seconds())
        seen_status.append(
            (await GET_JOB.run(make_context(conn), {"jobId": state["job_id"]}))["status"]
        )
        result = await CREATE_KEY.run(make_context(conn, state=state), input)
        if isinstance(result, Pending):
            state = result.state
    assert "inProgress" in seen_status and seen_status[-1] == "succeeded"
    assert len(seen_status) >= 3  # job delay 12 s > poll interval 3 s: several wake-ups
    assert result["state"] == "active" and result["appUserId"] == "+4799887766"
    assert result["jobId"] == first.state["job_id"]
    assert list(sim.world.keys) == [result["keyId"]]


async def test_a_retried_step_adopts_the_key_its_lost_attempt_made(
    sim: Sim, conn: Connection
) -> None:
    input = {"lockId": FRONT_DOOR, "appUserId": "+4799887766", "pollInterval": 1}
    done, _ = await run_until_done(sim, conn, CREATE_KEY, input)
    assert done["metadata"] == {"latchflowRef": "run-test:step"}
    again, _ = await run_until_done(sim, conn, CREATE_KEY, input, attempt=2)  # same run, step
    assert again["keyId"] == done["keyId"] and again["jobId"] is None
    assert again["duplicatesRemoved"] == [] and len(sim.world.keys) == 1
    other = await CREATE_KEY.run(make_context(conn, run_id="another-run", attempt=2), input)
    assert isinstance(other, Pending) and other.state.get("job_id")  # nothing to adopt: made


async def test_an_adopted_key_still_creating_is_waited_for(sim: Sim, conn: Connection) -> None:
    await sim.control("/_sim/settings", {"job_delay": 20})
    input = {"lockId": FRONT_DOOR, "appUserId": "+4799887766", "pollInterval": 5}
    lost = await CREATE_KEY.run(make_context(conn), input)  # its answer never arrives
    assert isinstance(lost, Pending)
    result, pendings = await run_until_done(sim, conn, CREATE_KEY, input, attempt=2)
    assert result["state"] == "active" and len(pendings) >= 3
    assert list(sim.world.keys) == [result["keyId"]]


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        ("offline", "failedJob.*state error"),
        ("timeout", "timed out"),
    ],
)
async def test_failed_jobs_are_fatal_with_a_clear_message(
    sim: Sim, conn: Connection, setup: str, words: str
) -> None:
    if setup == "offline":
        await sim.control(f"/_sim/locks/{FRONT_DOOR}", {"online": False})
    input = {"lockId": FRONT_DOOR, "appUserId": "+4799887766", "pollInterval": 1}
    first = await CREATE_KEY.run(make_context(conn), input)
    assert isinstance(first, Pending)
    if setup == "timeout":
        await sim.control(f"/_sim/jobs/{first.state['job_id']}", {"status": "timeout"})
    await sim.advance(5)
    with pytest.raises(FatalError, match=f"^unloc.create_key: Unloc job .*{words}"):
        await CREATE_KEY.run(make_context(conn, state=first.state), input)


async def test_a_key_for_an_unknown_lock_is_refused_at_once(sim: Sim, conn: Connection) -> None:
    input = {"lockId": "00000000-0000-0000-0000-000000000000", "appUserId": "+4799887766"}
    with pytest.raises(FatalError) as info:
        await CREATE_KEY.run(make_context(conn), input)
    assert str(info.value) == (
        "unloc.create_key: create keys (POST /v2/projects/5b8f0a3e-9c1d-4e7a-8f00-0000000000a1"
        "/keys): Unloc refused the request (HTTP 400 Bad Request: One or more keys are invalid;"
        " no job was started; keys[0].lockId: must be the id of a lock in the project)"
    )
    assert sim.world.keys == {} and sim.world.jobs == {}


async def test_a_job_that_never_finishes_fails_after_max_wait(sim: Sim, conn: Connection) -> None:
    input = {"lockId": FRONT_DOOR, "appUserId": "+4799887766", "pollInterval": 2, "maxWait": 5}
    first = await CREATE_KEY.run(make_context(conn), input)
    assert isinstance(first, Pending)
    await sim.control(f"/_sim/jobs/{first.state['job_id']}", {"status": "inProgress"})
    await sim.advance(6)
    with pytest.raises(FatalError, match=r"still inProgress after 5\.0 s"):
        await CREATE_KEY.run(make_context(conn, state=first.state), input)


async def test_wait_for_active_sleeps_until_the_start(sim: Sim, conn: Connection) -> None:
    start = sim.world.now() + timedelta(hours=5)
    input = {
        "lockId": APARTMENT,
        "appUserId": "+4799887766",
        "start": start.isoformat(),
        "end": (start + timedelta(days=2)).isoformat(),
        "waitFor": "active",
        "pollInterval": 1,
    }
    result, pendings = await run_until_done(sim, conn, CREATE_KEY, input)
    assert result["state"] == "active"
    assert any(
        abs((p.check_at - start).total_seconds()) < 1 for p in pendings
    )  # slept to the start
    assert len(pendings) < 10


async def test_null_start_never_reaches_unloc(sim: Sim, conn: Connection) -> None:
    result, _ = await run_until_done(
        sim,
        conn,
        CREATE_KEY,
        {"lockId": FRONT_DOOR, "appUserId": "+4799887766", "start": None, "end": None},
    )
    assert result["end"] is None and result["state"] == "active"


async def test_create_keys_batch(sim: Sim, conn: Connection) -> None:
    now = sim.world.now()
    input = {
        "keys": [
            {"lockId": FRONT_DOOR, "appUserId": "99887766"},
            {
                "lockId": APARTMENT,
                "appUserId": "+4741234567",
                "start": (now + timedelta(days=1)).isoformat(),
                "durationMinutes": 60,
            },
        ],
        "defaultRegion": "NO",
        "pollInterval": 1,
    }
    result, pendings = await run_until_done(sim, conn, CREATE_KEYS, input)
    assert result["status"] == "succeeded" and pendings
    assert sorted(k["state"] for k in result["keys"]) == ["active", "scheduled"]
    scheduled = next(k for k in result["keys"] if k["state"] == "scheduled")
    assert scheduled["end"] is not None and scheduled["appUserId"] == "+4741234567"


async def test_create_keys_with_one_bad_key_creates_nothing(sim: Sim, conn: Connection) -> None:
    input = {
        "keys": [
            {"lockId": FRONT_DOOR, "appUserId": "+4799887766"},
            {"lockId": "nope", "appUserId": "+4741234567"},
        ],
        "pollInterval": 1,
    }
    with pytest.raises(FatalError, match=r"HTTP 400 .*keys\[1\]\.lockId: must be the id of a lock"):
        await run_until_done(sim, conn, CREATE_KEYS, input)
    assert sim.world.keys == {} and sim.world.jobs == {}


async def test_a_retried_batch_adopts_the_keys_its_lost_attempt_made(
    sim: Sim, conn: Connection
) -> None:
    keys = [
        {"lockId": FRONT_DOOR, "appUserId": "+4799887766"},
        {"lockId": APARTMENT, "appUserId": "+4741234567", "metadata": {"booking": "R-7"}},
    ]
    input = {"keys": keys, "pollInterval": 1}
    lost = await CREATE_KEYS.run(make_context(conn), input)  # its answer never arrives
    assert isinstance(lost, Pending)
    result, _ = await run_until_done(sim, conn, CREATE_KEYS, input, attempt=2)
    assert result["jobId"] is None and result["status"] == "succeeded"
    assert sorted(k["keyId"] for k in result["keys"]) == sorted(sim.world.keys)
    assert [k["metadata"] for k in result["keys"]] == [
        {"latchflowRef": "run-test:step#0"},
        {"booking": "R-7", "latchflowRef": "run-test:step#1"},
    ]


async def test_a_retry_that_finds_two_copies_keeps_the_oldest_and_revokes_the_other(
    sim: Sim, conn: Connection
) -> None:
    input = {"lockId": FRONT_DOOR, "appUserId": "+4799887766", "pollInterval": 1}
    for _ in range(2):  # two attempts whose answers were both lost, both carried out
        assert isinstance(await CREATE_KEY.run(make_context(conn), input), Pending)
        await sim.advance(1)
    oldest, newer = sorted(sim.world.keys.values(), key=lambda k: k.created)
    result, _ = await run_until_done(sim, conn, CREATE_KEY, input, attempt=3)
    assert result["keyId"] == oldest.id and result["duplicatesRemoved"] == [newer.id]
    assert newer.state(sim.world.now(), sim.world.zone) == "revoked"
