"""A step that cannot be retried safely stops its run as ``needs_attention`` when the vendor may
have applied it (an answer lost; a process that died during the call: see test_crash_resume),
and is tried again only when a person replays the run; a failure that never reached the vendor
is retried as usual."""

from __future__ import annotations

import httpx
import pytest

from latchflow.engine import Engine
from latchflow.plugin.clock import FakeClock
from latchflow.runs.history import cancel_run, replay_run, run_detail

from .support import AcmePlugin, RetryableError, flow

ONCE = flow([{"id": "pin", "action": "acme.once", "input": {"name": "pin"}}], id="once")


def lost_answer() -> RetryableError:
    request = httpx.Request("POST", "https://vendor.example/pins")
    try:
        raise httpx.ReadTimeout("the answer never came", request=request)
    except httpx.ReadTimeout as exc:
        try:
            raise RetryableError("acme: the answer was lost") from exc
        except RetryableError as wrapped:
            return wrapped


async def test_a_lost_answer_stops_the_run_for_a_person_who_replays_it(
    engine: Engine, acme: AcmePlugin, clock: FakeClock
) -> None:
    engine.install_flow(ONCE)
    acme.fail_next("pin", lost_answer())
    run_id = engine.start("once", {}).run_id
    assert await engine.executor.execute(run_id) == "needs_attention"
    detail = run_detail(engine.store, run_id)
    assert detail["steps"][0]["status"] == "needs_attention"
    assert detail["error"].startswith(
        "step 'pin' (acme.once): acme.once may have been applied by the vendor"
        " (acme: the answer was lost); it cannot be looked up, so it was not tried again."
    )
    assert "then replay the run" in detail["error"]
    clock.advance(3600)
    await engine.executor.execute(run_id)
    assert acme.calls == []  # nothing tried it again by itself

    replay_run(engine.store, run_id, from_start=False, now=clock.now())
    assert await engine.executor.execute(run_id) == "succeeded"
    assert [name for name, _ in acme.calls] == ["pin"]


async def test_a_run_that_needs_attention_can_be_cancelled(
    engine: Engine, acme: AcmePlugin, clock: FakeClock
) -> None:
    engine.install_flow(ONCE)
    acme.fail_next("pin", RetryableError("acme answered 504", maybe_applied=True))
    run_id = engine.start("once", {}).run_id
    assert await engine.executor.execute(run_id) == "needs_attention"
    assert cancel_run(engine.store, run_id, clock.now())
    assert run_detail(engine.store, run_id)["status"] == "cancelled"


@pytest.mark.parametrize(
    "error",
    [
        RetryableError("acme answered 503", status=503, maybe_applied=False),
        RetryableError("lock offline"),
    ],
    ids=["503", "device-offline"],
)
async def test_a_failure_that_did_not_reach_the_vendor_is_retried(
    engine: Engine, acme: AcmePlugin, clock: FakeClock, error: RetryableError
) -> None:
    engine.install_flow(ONCE)
    acme.fail_next("pin", error)
    run_id = engine.start("once", {}).run_id
    assert await engine.executor.execute(run_id) == "waiting"
    clock.advance(60)
    assert await engine.executor.execute(run_id) == "succeeded"


async def test_a_connection_that_was_never_made_is_retried(
    engine: Engine, acme: AcmePlugin, clock: FakeClock
) -> None:
    engine.install_flow(ONCE)
    refused = httpx.ConnectError("connection refused")
    acme.fail_next("pin", refused)
    run_id = engine.start("once", {}).run_id
    assert await engine.executor.execute(run_id) == "waiting"
    assert run_detail(engine.store, run_id)["steps"][0]["error"] == (
        "ConnectError: connection refused"
    )
