"""Verification against the vendors' truth: a PIN deleted at the vendor is issued again; a PIN
made at the vendor for a cancelled grant is reported, or revoked when so configured."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from latchflow.testing import make_context

from .conftest import Sandbox
from .test_grants import active, booking, places


async def call(sandbox: Sandbox, action: str, data: dict[str, Any]) -> Any:
    """Call a KEYVOX action directly, as staff at the vendor's console would act."""
    live = await sandbox.engine.connections.get("keyvox")
    ctx = make_context(live.connection, run_id="staff", step_id=action)
    return await sandbox.engine.registry.actions[action].run(ctx, data)


async def verify(sandbox: Sandbox) -> dict[str, Any]:
    accepted = sandbox.engine.start("access-verify", {})
    await sandbox.settle(horizon=60)
    run = sandbox.engine.run(accepted.run_id)
    assert run is not None and run.status == "succeeded", run
    return run.output  # type: ignore[no-any-return]


async def test_a_pin_deleted_at_the_vendor_is_issued_again(sandbox: Sandbox) -> None:
    room = await places(sandbox)
    sandbox.engine.access.grants.grant({**booking(sandbox), "places": ["Room 12"]}, actor="test")
    await sandbox.settle(horizon=60)
    (credential,) = sandbox.engine.store.access.credentials()
    assert credential.vendor_ids is not None
    await call(sandbox, "keyvox.disable_lock_pin", credential.vendor_ids)
    assert (await active(sandbox, room))["keyvox"] == []

    found = await verify(sandbox)

    assert [d["problem"] for d in found["drift"]] == ["missing at the vendor: issued again"]
    (again,) = sandbox.engine.store.access.credentials()
    assert (again.state, again.issues) == ("issued", 2)
    assert again.vendor_ids != credential.vendor_ids
    assert len((await active(sandbox, room))["keyvox"]) == 1
    assert (await verify(sandbox))["drift"] == []


@pytest.mark.parametrize("revoke", [False, True], ids=["reported", "revoked"])
async def test_a_pin_made_at_the_vendor_for_a_cancelled_grant(
    sandbox: Sandbox, revoke: bool
) -> None:
    room = await places(sandbox)
    grants = sandbox.engine.access.grants
    grants.grant({**booking(sandbox), "places": ["Room 12"]}, actor="test")
    await sandbox.settle(horizon=60)
    grants.cancel("B-1001", actor="test")
    await sandbox.settle(horizon=60)
    now = sandbox.clock.now()
    window = {
        "startTime": int(now.timestamp()),
        "endTime": int((now + timedelta(days=1)).timestamp()),
    }
    await call(
        sandbox,
        "keyvox.create_lock_pin",
        {"unitId": room, "targetName": "Ada Lovelace (staff)", **window},
    )
    sandbox.engine.access.verifier.revoke_unknown = revoke  # LATCHFLOW_ACCESS_UNKNOWN=revoke

    found = await verify(sandbox)

    (drift,) = found["drift"]
    assert "granted by nobody" in drift["problem"]
    assert "looks like Ada Lovelace of cancelled grant" in drift["problem"]
    assert len((await active(sandbox, room))["keyvox"]) == (0 if revoke else 1)
    (entry, *_) = sandbox.engine.store.audit.events(subject=f"resource {room}")
    assert entry.action == "drift.found"
