"""Checkpoints of concurrent runs are written together; one bad row fails only its own run."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from latchflow.engine import Engine
from latchflow.runs.history import run_detail
from latchflow.storage import journal as checkpoints
from latchflow.storage.journal import Checkpoint, StepRow

from .support import flow

STEP = {"id": "a", "action": "acme.record", "input": {"name": "a"}}


def started(engine: Engine, count: int) -> list[checkpoints.RunRows]:
    record = engine.install_flow(flow([STEP]))
    ids = [engine.start(record.id, {"n": n}).run_id for n in range(count)]
    with engine.store.engine.connect() as connection:
        return checkpoints.load(connection, ids)


def finished(rows: checkpoints.RunRows, output: object) -> Checkpoint:
    run = rows.run
    run.status, run.step_index, run.output = "succeeded", 1, output
    step = StepRow(run.id, "a", 0, "acme.record", run.updated_at, status="succeeded")
    step.output = output
    return Checkpoint.of(run, [step])


async def test_concurrent_checkpoints_share_a_batch_and_a_bad_row_fails_only_its_run(
    engine: Engine,
) -> None:
    good, bad, other = started(engine, 3)
    writer = engine.executor.writer
    outcomes = await asyncio.gather(
        writer.commit(finished(good, {"ok": 1})),
        writer.commit(finished(bad, {"not json": object()})),
        writer.commit(finished(other, {"ok": 2})),
        return_exceptions=True,
    )
    assert outcomes[0] is True and outcomes[2] is True
    assert isinstance(outcomes[1], Exception)
    assert run_detail(engine.store, good.run.id)["output"] == {"ok": 1}
    assert run_detail(engine.store, other.run.id)["steps"][0]["status"] == "succeeded"
    assert run_detail(engine.store, bad.run.id)["status"] == "queued"  # nothing of it written


async def test_a_claim_that_no_longer_holds_writes_nothing(engine: Engine) -> None:
    (rows,) = started(engine, 1)
    now = engine.clock.now()
    assert engine.executor.claim_due() != []  # another worker's claim, taken meanwhile
    checkpoint = finished(rows, {"ok": 1})
    claiming = Checkpoint(
        checkpoint.run_id,
        checkpoint.run,
        checkpoint.new_steps,
        checkpoint.changed_steps,
        claim=("queued", 0, rows.run.due_at, now),
    )
    assert await engine.executor.writer.commit(claiming) is False
    detail = run_detail(engine.store, rows.run.id)
    assert detail["status"] == "queued" and detail["steps"] == []


@pytest.mark.parametrize("count", [1, 3])
async def test_load_reads_runs_with_their_trigger_and_steps(engine: Engine, count: int) -> None:
    loaded = started(engine, count)
    assert sorted(r.trigger["n"] for r in loaded) == list(range(count))
    assert all(r.steps == {} and r.run.status == "queued" for r in loaded)


async def test_a_checkpoint_awaits_the_write_lock_while_the_loop_goes_on(engine: Engine) -> None:
    (rows,) = started(engine, 1)
    holder = sqlite3.connect(str(engine.store.engine.url.database), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing, as a second run process would
    commit = asyncio.create_task(engine.executor.writer.commit(finished(rows, {"ok": 1})))
    for _ in range(20):  # SQLite's busy handler would hold the loop here instead
        await asyncio.sleep(0.002)
    assert not commit.done()
    holder.execute("ROLLBACK")  # only a loop that kept running gets here
    holder.close()
    assert await asyncio.wait_for(commit, timeout=10) is True
    assert run_detail(engine.store, rows.run.id)["output"] == {"ok": 1}
