"""A replayed or retried create-PIN step never issues a second PIN (simulator state checked)."""

from __future__ import annotations

import httpx

from latchflow.testing import make_connection, make_context
from latchflow_keyvox.testing import Runner, Sim


async def test_replayed_create_pin_step_does_not_create_a_second_pin(sim: Sim, run: Runner) -> None:
    unit = sim.room()["unitId"]
    now = sim.world.now()
    data = {"unitId": unit, "startTime": now + 60, "endTime": now + 86400, "targetName": "Hanako"}
    ctx = make_context(run.connection, run_id="run-42", step_id="pin")
    first = await run("keyvox.create_lock_pin", data, ctx)
    replay = await run(
        "keyvox.create_lock_pin",
        data,
        make_context(run.connection, run_id="run-42", step_id="pin", attempt=2),
    )
    assert replay["pinId"] == first["pinId"] and replay["pinCode"] == first["pinCode"]
    assert (first["reused"], replay["reused"]) == (False, True)
    assert replay["targetName"] == "Hanako"
    pins = sim.state()["pins"]
    assert len(pins) == 1 and pins[0]["targetName"].startswith("Hanako #lf-")

    # another run of the same flow is another step: it gets its own PIN
    other = await run(
        "keyvox.create_lock_pin", data, make_context(run.connection, run_id="run-43", step_id="pin")
    )
    assert other["pinId"] != first["pinId"]
    assert len(sim.state()["pins"]) == 2


async def test_a_retry_after_a_lost_answer_finds_the_pin(sim: Sim, run: Runner) -> None:
    """The vendor created the PIN but the answer never arrived: the retry must not add one."""
    unit = sim.room()["unitId"]
    now = sim.world.now()
    data = {"unitId": unit, "startTime": now + 60, "endTime": now + 7200}
    drop = {"armed": True}

    async def lose_create_answer(request: httpx.Request) -> httpx.Response:
        async with httpx.AsyncClient() as real:
            response = await real.send(
                real.build_request(
                    request.method, request.url, headers=request.headers, content=request.content
                )
            )
            body = await response.aread()
        if request.url.path.endswith("/createLockPin") and drop["armed"]:
            drop["armed"] = False
            raise httpx.ReadTimeout("answer lost", request=request)
        return httpx.Response(response.status_code, headers=response.headers, content=body)

    conn = make_connection("keyvox", sim.config, transport=httpx.MockTransport(lose_create_answer))
    flaky = Runner(run.registry, conn)
    ctx = make_context(conn, run_id="run-7", step_id="pin")
    try:
        try:
            await flaky("keyvox.create_lock_pin", data, ctx)
            raise AssertionError("the lost answer should have raised")
        except Exception as exc:  # the engine would retry a RetryableError
            assert type(exc).__name__ == "RetryableError"
        assert len(sim.state()["pins"]) == 1  # the vendor did create it
        retried = await flaky(
            "keyvox.create_lock_pin",
            data,
            make_context(conn, run_id="run-7", step_id="pin", attempt=2),
        )
        assert retried["reused"] is True
        assert len(sim.state()["pins"]) == 1
    finally:
        await conn.http.aclose()
