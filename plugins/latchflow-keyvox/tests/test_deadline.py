"""Remote openings have a deadline: past it they fail as "not opened in time" and do not open.

The clock the step sees is injected: ``started_at`` (the step's first attempt) and ``now``.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from latchflow import JSON, FakeClock, FatalError, RetryableError, RetryPolicy, RunContext
from latchflow.testing import make_context
from latchflow_keyvox.actions.deadline import DEFAULT_DEADLINE_SECONDS
from latchflow_keyvox.testing import Runner, Sim


def asked(run: Runner, seconds_ago: float, attempt: int = 2) -> RunContext:
    """The context of an attempt of a step first tried ``seconds_ago``."""
    clock = FakeClock()
    started_at = clock.now() - timedelta(seconds=seconds_ago)
    return make_context(
        run.connection, step_id="open", attempt=attempt, clock=clock, started_at=started_at
    )


def open_boxes(sim: Sim) -> list[str]:
    return [
        n for locker in sim.world.lockers.values() for n, b in locker.boxes.items() if b.doorOpen
    ]


async def test_an_unlock_past_its_deadline_fails_and_does_not_open(sim: Sim, run: Runner) -> None:
    lock_id = sim.room()["lockIds"]
    with pytest.raises(FatalError, match="not opened in time") as info:
        await run("keyvox.unlock_door", {"lockId": lock_id}, asked(run, 31))
    assert "keyvox.unlock_door" in str(info.value) and "deadlineSeconds is 30" in str(info.value)
    assert sim.world.locks[lock_id].locked is True and sim.world.locks[lock_id].history == []


async def test_an_unlock_within_its_deadline_opens(sim: Sim, run: Runner) -> None:
    lock_id = sim.room()["lockIds"]
    await run("keyvox.unlock_door", {"lockId": lock_id}, asked(run, 29))
    assert sim.world.locks[lock_id].locked is False
    late = {"lockId": sim.room(1)["lockIds"], "deadlineSeconds": 120}
    await run("keyvox.unlock_door", late, asked(run, 90))  # a step may allow longer
    assert sim.world.locks[late["lockId"]].locked is False


async def test_an_offline_lock_is_retried_within_the_deadline(sim: Sim, run: Runner) -> None:
    """KEYVOX's E1012 asks for a minute; the next attempt must come before the deadline."""
    lock_id = sim.room()["lockIds"]
    sim.control(f"/_sim/locks/{lock_id}", {"online": False})
    with pytest.raises(RetryableError, match="E1012") as info:
        await run("keyvox.unlock_door", {"lockId": lock_id}, asked(run, 0, attempt=1))
    assert info.value.retry_after is None and info.value.maybe_applied is False
    policy = run.action("keyvox.unlock_door").retry
    waits = sum(policy.delay(n, 0.999) for n in range(1, policy.max_attempts))
    assert waits < DEFAULT_DEADLINE_SECONDS


async def test_a_locker_box_has_a_deadline_too(sim: Sim, run: Runner) -> None:
    data: JSON = {"deviceId": sim.state()["lockers"][0]["deviceId"], "boxNum": "00-01"}
    with pytest.raises(FatalError, match=r"keyvox\.unlock_locker_box: not opened in time"):
        await run("keyvox.unlock_locker_box", data, asked(run, 45))
    assert open_boxes(sim) == []
    await run("keyvox.unlock_locker_box", data, asked(run, 3))
    assert open_boxes(sim) == ["00-01"]


def test_locking_has_no_deadline(run: Runner) -> None:
    """Locking late does no harm: lock_door keeps the engine's default retries."""
    schema = run.action("keyvox.lock_door").input_schema["properties"]
    assert "deadlineSeconds" not in schema
    assert run.action("keyvox.lock_door").retry == RetryPolicy()
