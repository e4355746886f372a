"""Checking a credential provider against its vendor's simulator, the way grants use it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta

import httpx

from latchflow.plugin.access import CredentialProvider, CredentialRequest, VendorCredential
from latchflow.plugin.types import JSON, Connection, Pending, RunContext
from latchflow.testing.calls import make_context

Call = Callable[[RunContext], Awaitable[VendorCredential | Pending | None]]


async def settle(call: Call, ctx: RunContext, limit: int = 50) -> VendorCredential | None:
    """Await a provider call, calling again with its state while it answers ``Pending``
    (a vendor job that finishes on the simulator's own time)."""
    result = await call(ctx)
    for _ in range(limit):
        if not isinstance(result, Pending):
            return result
        await asyncio.sleep(0.05)
        result = await call(replace(ctx, state=result.state))
    raise AssertionError(f"still pending after {limit} calls: {result}")


def _context(connection: Connection, key: str, attempt: int = 1) -> RunContext:
    ctx = make_context(connection, run_id=key, step_id="issue", attempt=attempt)
    return replace(ctx, idempotency_key=key)


async def check_provider(
    provider: CredentialProvider,
    connection: Connection,
    request: CredentialRequest,
    sim_url: str,
    lost: JSON | None = None,
) -> list[str]:
    """Issue, inspect, change, revoke and issue again after a lost answer; return what went
    wrong (empty when the provider behaves as grants need). ``sim_url`` is the simulator the
    connection talks to; ``lost`` the fault that loses the issuing call's answer (default: the
    next POST's)."""
    problems: list[str] = []

    def mine(found: list[VendorCredential], issued: VendorCredential) -> list[VendorCredential]:
        return [c for c in found if c.ids == issued.ids]

    key = f"{request.credential_id}:issue:1"
    issued = await settle(lambda c: provider.issue(c, request), _context(connection, key))
    assert isinstance(issued, VendorCredential)
    if not issued.active:
        problems.append(f"issue returned an inactive credential: {issued}")
    inspect_ctx = _context(connection, f"{request.credential_id}:inspect")
    found = mine(
        await provider.inspect(inspect_ctx, request.resource_kind, request.resource), issued
    )
    if len(found) != 1 or not found[0].active:
        problems.append(f"inspect does not show the issued credential once, active: {found}")

    moved = replace(
        request,
        window=replace(
            request.window,
            starts_at=request.window.starts_at + timedelta(days=1),
            ends_at=request.window.ends_at + timedelta(days=1),
        ),
    )
    if provider.change is not None:
        change = provider.change
        ctx = _context(connection, f"{request.credential_id}:change:1")
        before = issued
        changed = await settle(lambda c: change(c, before, moved), ctx)
        assert isinstance(changed, VendorCredential)
        found = mine(
            await provider.inspect(inspect_ctx, moved.resource_kind, moved.resource), changed
        )
        if not found or found[0].ends_at != moved.window.ends_at:
            problems.append(f"after change, inspect does not show the moved window: {found}")
        issued = changed

    ctx = _context(connection, f"{request.credential_id}:revoke:1")
    last = issued
    await settle(lambda c: provider.revoke(c, last), ctx)
    await settle(lambda c: provider.revoke(c, last), ctx)  # gone already: fine
    found = mine(
        await provider.inspect(inspect_ctx, request.resource_kind, request.resource), issued
    )
    if any(c.active for c in found):
        problems.append(f"after revoke, inspect still shows it active: {found}")

    again = replace(request, credential_id=f"{request.credential_id}-again")
    key = f"{again.credential_id}:issue:1"
    async with httpx.AsyncClient(base_url=sim_url) as sim:
        fault = lost or {"kind": "lost", "count": 1, "method": "POST"}
        (await sim.post("/_sim/faults", json=fault)).raise_for_status()
        with contextlib.suppress(Exception):  # the lost answer, as the provider reports it
            await settle(lambda c: provider.issue(c, again), _context(connection, key))
            problems.append("issue did not fail when the vendor's answer was lost")
        await sim.delete("/_sim/faults")
    retried = await settle(lambda c: provider.issue(c, again), _context(connection, key, 2))
    assert isinstance(retried, VendorCredential)
    found = [
        c
        for c in await provider.inspect(inspect_ctx, again.resource_kind, again.resource)
        if c.active
    ]
    if len([c for c in found if c.ids == retried.ids]) != 1 or len(found) != 1:
        problems.append(
            f"after a lost answer and a second attempt, the vendor has {len(found)} active"
            f" credentials at {again.resource} instead of one: {found}"
        )
    return problems
