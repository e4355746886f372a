"""The integrators v1 connection and actions against the simulator."""

from __future__ import annotations

from datetime import timedelta

import pytest
from jsonschema import Draft202012Validator

from latchflow import ConfigurationError, Connection, FatalError, Pending, parse_moment
from latchflow.testing import make_connection, make_context
from latchflow_unloc import integrator_actions as ia
from latchflow_unloc import integrator_creates as ic
from latchflow_unloc.markers import marked_start
from latchflow_unloc.testing import APARTMENT, Sim, integrators_config
from latchflow_unloc.vendors import UNLOC_INTEGRATORS


async def test_lock_holders_locks_and_keys(sim: Sim, iconn: Connection) -> None:
    ctx = make_context(iconn)
    holders = await ia.LIST_LOCK_HOLDERS.run(ctx, {})
    assert holders["count"] == 1
    locks = await ia.LIST_LOCKS.run(ctx, {})
    assert locks["count"] == 3
    lock = await ia.GET_LOCK.run(ctx, {"lockId": APARTMENT})
    assert lock["name"] == "Apartment 101"
    start = sim.world.now() + timedelta(days=1)
    key = await ic.CREATE_KEY.run(
        ctx,
        {"lockId": APARTMENT, "appUserId": "+52 33 7736 0555", "start": start.isoformat(), "skipInviteNotification": True,
         "recurrence": {"sat": {"startHour": 14, "startMinute": 45, "endHour": 16, "endMinute": 30}}},
    )  # fmt: skip
    Draft202012Validator(ic.CREATE_KEY.output_schema).validate(key)
    assert key["state"] == "creating" and key["appUserId"] == "+523377360555" and key["end"] is None
    await sim.advance(3)
    keys = await ia.LIST_KEYS.run(ctx, {"lockId": APARTMENT})
    assert [k["state"] for k in keys["keys"]] == ["scheduled"] and keys["keys"][0]["recurrence"][
        "sat"
    ]["startHour"] == 14
    [everywhere] = (await ia.LIST_KEYS.run(ctx, {}))["keys"]
    assert everywhere["recurrence"] is None  # only the per-lock listing shows it
    assert (await UNLOC_INTEGRATORS.test_connection(iconn))["ok"] is True


async def test_creating_lock_holders_needs_integrator_admin(sim: Sim, iconn: Connection) -> None:
    with pytest.raises(ConfigurationError, match=r"integrator\.admin"):
        await ic.CREATE_LOCK_HOLDER.run(
            make_context(iconn),
            {"name": "Acme Housing", "countryIso": "NO", "organizationId": "998877665"},
        )
    admin = make_connection(
        "unloc_integrators", {**integrators_config(sim.url), "lock_holder_ids": []}
    )
    holder = await ic.CREATE_LOCK_HOLDER.run(
        make_context(admin),
        {"name": "Acme Housing", "countryIso": "NO", "organizationId": "998877665"},
    )
    assert holder["name"] == "Acme Housing" and holder["organizationIdSuffix"] == ""
    assert (await ia.LIST_LOCK_HOLDERS.run(make_context(admin), {}))["count"] == 2
    with pytest.raises(FatalError, match="lockHolderId"):
        await ia.LIST_LOCKS.run(make_context(admin), {})
    with pytest.raises(FatalError, match="organizationId"):
        await ic.CREATE_LOCK_HOLDER.run(
            make_context(admin), {"name": "Acme", "countryIso": "NO", "organizationId": "x y"}
        )
    await admin.http.aclose()


async def test_a_retried_key_creation_adopts_the_key_marked_by_its_start(
    sim: Sim, iconn: Connection
) -> None:
    start = (sim.world.now() + timedelta(days=1)).replace(microsecond=0)
    input = {"lockId": APARTMENT, "appUserId": "+4799887766", "start": start.isoformat()}
    made = await ic.CREATE_KEY.run(make_context(iconn), input)
    assert isinstance(made, dict)
    marked = parse_moment(made["start"])
    assert marked.replace(microsecond=0) == start and marked.microsecond % 1000 == 0
    again = await ic.CREATE_KEY.run(make_context(iconn, attempt=2), input)
    assert again == made and len(sim.world.keys) == 1
    # Another step (another run) with the same start marks its key otherwise: a second key.
    other_run = make_context(iconn, run_id="another-run", attempt=2)
    assert marked_start(other_run, start) != marked
    other = await ic.CREATE_KEY.run(other_run, input)
    assert isinstance(other, Pending) and len(sim.world.keys) == 2  # made: checked later


async def test_a_retried_lock_holder_creation_adopts_the_holder(sim: Sim) -> None:
    admin = make_connection(
        "unloc_integrators", {**integrators_config(sim.url), "lock_holder_ids": []}
    )
    input = {"name": "Acme Housing", "countryIso": "NO", "organizationId": "998877665"}
    made = await ic.CREATE_LOCK_HOLDER.run(make_context(admin), input)
    again = await ic.CREATE_LOCK_HOLDER.run(make_context(admin, attempt=2), input)
    assert isinstance(made, dict) and isinstance(again, dict) and again["id"] == made["id"]
    other = {**input, "organizationIdSuffix": "2"}
    second = await ic.CREATE_LOCK_HOLDER.run(make_context(admin, attempt=2), other)
    assert isinstance(second, Pending)  # none like it: made, and checked later for a copy
    assert len(sim.world.lock_holders) == 3
    await admin.http.aclose()
