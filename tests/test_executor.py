"""The run executor: order, checkpoints, retries, waits, skips, filters, failures, replay."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from latchflow.engine import Engine
from latchflow.flows import expressions
from latchflow.plugin.clock import FakeClock
from latchflow.plugin.errors import FatalError, RetryableError, SkipError
from latchflow.runs.history import replay_run, run_detail

from .support import AcmePlugin, flow


def steps(*names: str) -> list[dict[str, object]]:
    return [{"id": n, "action": "acme.record", "input": {"name": n}} for n in names]


async def run_flow(
    engine: Engine, document: dict[str, object], event: dict[str, object] | None = None
) -> str:
    record = engine.install_flow(document)
    accepted = engine.start(record.id, event or {})
    await engine.executor.execute(accepted.run_id)
    return accepted.run_id


async def test_steps_run_in_order_and_see_earlier_outputs(engine: Engine, acme: AcmePlugin) -> None:
    document = flow(
        [
            {
                "id": "a",
                "action": "acme.record",
                "input": {"name": "a", "value": "{{ trigger.guest }}"},
            },
            {
                "id": "b",
                "action": "acme.record",
                "input": {"name": "b", "value": "{{ steps.a.value }}!"},
            },
        ]
    )
    run_id = await run_flow(engine, document, {"guest": "Ada"})
    detail = run_detail(engine.store, run_id)
    assert detail["status"] == "succeeded"
    assert [c[0] for c in acme.calls] == ["a", "b"]
    assert detail["steps"][1]["output"] == {"name": "b", "value": "Ada!"}
    assert detail["output"] == {"name": "b", "value": "Ada!"}
    assert acme.calls[0][1]["key"] == f"{run_id}:a"


async def test_retry_after_reschedules_the_step_to_that_time(
    engine: Engine, acme: AcmePlugin, clock: FakeClock
) -> None:
    acme.fail_next("a", RetryableError("vendor busy", retry_after=30))
    run_id = await run_flow(engine, flow(steps("a", "b")))
    run = engine.run(run_id)
    assert run is not None and run.status == "waiting"
    assert run.due_at == clock.now() + timedelta(seconds=30)
    assert acme.calls == []
    assert engine.executor.claim_due() == []
    clock.advance(29)
    assert engine.executor.claim_due() == []
    clock.advance(1)
    (claimed,) = engine.executor.claim_due()
    assert claimed.run.id == run_id
    assert engine.executor.claim_due() == []  # claimed: no other worker takes it
    assert await engine.executor.execute(run_id, claimed=claimed) == "succeeded"
    assert engine.run(run_id).claimed_by is None  # type: ignore[union-attr]
    detail = run_detail(engine.store, run_id)
    assert detail["steps"][0]["attempts"] == 2
    assert [c[0] for c in acme.calls] == ["a", "b"]


async def test_backoff_grows_and_gives_up_after_max_attempts(
    engine: Engine, acme: AcmePlugin, clock: FakeClock
) -> None:
    acme.fail_next("a", *[RetryableError("down") for _ in range(3)])
    document = flow(
        [
            {
                "id": "a",
                "action": "acme.record",
                "input": {"name": "a"},
                "retry": {"max_attempts": 3, "jitter": 0},
            }
        ]
    )
    run_id = await run_flow(engine, document)
    delays = []
    for _ in range(2):
        run = engine.run(run_id)
        assert run is not None and run.status == "waiting" and run.due_at is not None
        delays.append((run.due_at - clock.now()).total_seconds())
        clock.set(run.due_at)
        await engine.executor.execute(run_id)
    assert delays == [5.0, 15.0]
    detail = run_detail(engine.store, run_id)
    assert detail["status"] == "failed"
    assert "gave up after 3 attempts: down" in detail["error"]


async def test_fatal_error_fails_the_run_and_later_steps_do_not_run(
    engine: Engine, acme: AcmePlugin
) -> None:
    acme.fail_next("a", FatalError("unit 42 not found"))
    run_id = await run_flow(engine, flow(steps("a", "b")))
    detail = run_detail(engine.store, run_id)
    assert detail["status"] == "failed"
    assert detail["error"] == "step 'a' (acme.record): unit 42 not found"
    assert detail["steps"][0]["status"] == "failed"
    assert len(detail["steps"]) == 1


async def test_if_false_and_skip_error_skip_the_step(engine: Engine, acme: AcmePlugin) -> None:
    acme.fail_next("b", SkipError("nothing to do"))
    document = flow(
        [
            {"id": "a", "action": "acme.record", "input": {"name": "a"}, "if": "{{ trigger.vip }}"},
            *steps("b", "c"),
        ]
    )
    run_id = await run_flow(engine, document, {"vip": False})
    detail = run_detail(engine.store, run_id)
    assert detail["status"] == "succeeded"
    assert [s["status"] for s in detail["steps"]] == ["skipped", "skipped", "succeeded"]
    assert [c[0] for c in acme.calls] == ["c"]


async def test_filter_ends_the_run_as_filtered(engine: Engine, acme: AcmePlugin) -> None:
    document = flow(
        [
            {
                "id": "gate",
                "action": "core.filter",
                "input": {"condition": "{{ trigger.n > `5` }}", "reason": "small"},
            },
            *steps("a"),
        ]
    )
    run_id = await run_flow(engine, document, {"n": 1})
    detail = run_detail(engine.store, run_id)
    assert (detail["status"], detail["error"]) == ("filtered", "small")
    assert acme.calls == []


async def test_pending_action_is_called_again_at_its_time_without_holding_a_worker(
    engine: Engine, acme: AcmePlugin, clock: FakeClock
) -> None:
    document = flow([{"id": "j", "action": "acme.job", "input": {"name": "j"}}, *steps("after")])
    run_id = await run_flow(engine, document)
    for _ in range(2):
        run = engine.run(run_id)
        assert run is not None and run.status == "waiting" and run.claimed_by is None
        clock.advance(10)
        await engine.executor.execute(run_id)
    assert run_detail(engine.store, run_id)["status"] == "succeeded"
    assert [c for c in acme.calls if c[0] == "j"] == [("j", {"checks": n}) for n in range(3)]
    assert run_detail(engine.store, run_id)["steps"][0]["attempts"] == 1


async def test_durable_delay_waits_until_its_moment(
    engine: Engine, acme: AcmePlugin, clock: FakeClock
) -> None:
    document = flow(
        [{"id": "wait", "action": "core.delay", "input": {"seconds": 3600}}, *steps("after")]
    )
    run_id = await run_flow(engine, document)
    assert acme.calls == []
    clock.advance(3599)
    assert engine.executor.claim_due() == []
    clock.advance(1)
    assert await engine.executor.execute(run_id) == "succeeded"
    assert [c[0] for c in acme.calls] == ["after"]


async def test_bad_rendered_input_fails_with_its_json_path(engine: Engine) -> None:
    document = flow(
        [{"id": "a", "action": "acme.record", "input": {"name": "{{ trigger.count }}"}}]
    )
    run_id = await run_flow(engine, document, {"count": 3})
    detail = run_detail(engine.store, run_id)
    assert detail["status"] == "failed"
    assert "$.steps[0].input.name: 3 is not of type 'string'" in detail["error"]


async def test_replay_from_the_failed_step_keeps_finished_steps_and_keys(
    engine: Engine, acme: AcmePlugin, clock: FakeClock
) -> None:
    acme.fail_next("b", FatalError("lock offline for good"))
    run_id = await run_flow(engine, flow(steps("a", "b", "c")))
    assert run_detail(engine.store, run_id)["status"] == "failed"
    replay_run(engine.store, run_id, from_start=False, now=clock.now())
    assert await engine.executor.execute(run_id) == "succeeded"
    assert [c[0] for c in acme.calls] == ["a", "b", "c"]
    assert acme.calls[1][1]["key"] == f"{run_id}:b"


async def test_cannot_replay_an_active_run(
    engine: Engine, acme: AcmePlugin, clock: FakeClock
) -> None:
    acme.fail_next("a", RetryableError("busy"))
    run_id = await run_flow(engine, flow(steps("a")))
    with pytest.raises(Exception, match="still waiting"):
        replay_run(engine.store, run_id, from_start=True, now=clock.now())


async def test_a_claimed_run_is_not_run_by_a_second_worker(engine: Engine) -> None:
    record = engine.install_flow(flow(steps("a")))
    accepted = engine.start(record.id, {})
    assert [rows.run.id for rows in engine.executor.claim_due()] == [accepted.run_id]
    assert await engine.executor.execute(accepted.run_id) is None


BUSY = "length(map(&to_string(@), trigger.items))"  # some milliseconds of work
HEAVY = (
    "trigger.x" + " | [@, @]" * 20 + " | [" + ", ".join(["length(@" + "[*]" * 20 + ")"] * 48) + "]"
)


async def test_a_long_render_runs_aside_and_gives_the_same_result(
    engine: Engine, acme: AcmePlugin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(expressions, "ON_LOOP_SECONDS", 0)  # every render goes to a worker
    document = flow(
        [
            {
                "id": "a",
                "if": "{{ " + BUSY + " > `0` }}",
                "action": "acme.record",
                "input": {"name": "a", "value": "{{ to_string(" + BUSY + ") }}"},
            },
            {"id": "b", "action": "acme.record", "input": {"name": "{{ trigger.items }}"}},
        ],
        output={"count": "{{ " + BUSY + " }}"},
    )
    run_id = await run_flow(engine, document, {"items": list(range(1000))})
    detail = run_detail(engine.store, run_id)
    assert detail["status"] == "failed"
    assert acme.calls[0][1]["value"] == "1000"
    assert "$.steps[1].input.name: [0, 1, 2" in detail["error"]  # errors keep where they were
    assert "is not of type 'string'" in detail["error"]
    document["steps"] = document["steps"][:1]  # type: ignore[index]
    document["version"] = 2
    run_id = await run_flow(engine, document, {"items": list(range(1000))})
    assert run_detail(engine.store, run_id)["output"] == {"count": 1000}


async def test_a_heavy_expression_neither_blocks_other_runs_nor_escapes_the_budget(
    engine: Engine,
) -> None:
    heavy = engine.install_flow(
        flow(
            [{"id": "h", "action": "core.set", "input": {"values": {"v": "{{ " + HEAVY + " }}"}}}],
            id="heavy",
        )
    )
    light = engine.install_flow(
        flow(
            [{"id": "l", "action": "core.set", "input": {"values": {"v": "{{ trigger.x }}"}}}],
            id="light",
        )
    )
    heavy_run = engine.start(heavy.id, {"x": "x"}).run_id
    light_run = engine.start(light.id, {"x": "x"}).run_id
    rendering = asyncio.create_task(engine.executor.execute(heavy_run))
    await asyncio.sleep(0)  # the heavy run starts first
    assert await engine.executor.execute(light_run) == "succeeded"
    assert not rendering.done()  # the light run finished while the heavy one was rendering
    assert await rendering == "failed"
    error = run_detail(engine.store, heavy_run)["error"]
    assert error.startswith(
        "step 'h' (core.set): $.steps[0].input.values.v: the expression took longer than"
    )
