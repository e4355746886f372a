"""The integrators v1 connection and actions against the simulator."""

from __future__ import annotations

from datetime import timedelta

import pytest
from jsonschema import Draft202012Validator

from latchflow import ConfigurationError, Connection, FatalError
from latchflow.testing import make_connection, make_context
from latchflow_unloc import integrator_actions as ia
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
    key = await ia.CREATE_KEY.run(
        ctx,
        {"lockId": APARTMENT, "appUserId": "+52 33 7736 0555", "start": start.isoformat(), "skipInviteNotification": True,
         "recurrence": {"sat": {"startHour": 14, "startMinute": 45, "endHour": 16, "endMinute": 30}}},
    )  # fmt: skip
    Draft202012Validator(ia.CREATE_KEY.output_schema).validate(key)
    assert key["state"] == "creating" and key["appUserId"] == "+523377360555" and key["end"] is None
    await sim.advance(3)
    keys = await ia.LIST_KEYS.run(ctx, {"lockId": APARTMENT})
    assert [k["state"] for k in keys["keys"]] == ["scheduled"] and keys["keys"][0]["recurrence"][
        "sat"
    ]["startHour"] == 14
    assert (await ia.LIST_KEYS.run(ctx, {}))["count"] == 1
    assert (await UNLOC_INTEGRATORS.test_connection(iconn))["ok"] is True


async def test_creating_lock_holders_needs_integrator_admin(sim: Sim, iconn: Connection) -> None:
    with pytest.raises(ConfigurationError, match=r"integrator\.admin"):
        await ia.CREATE_LOCK_HOLDER.run(
            make_context(iconn),
            {"name": "Acme Housing", "countryIso": "NO", "organizationId": "998877665"},
        )
    admin = make_connection(
        "unloc_integrators", {**integrators_config(sim.url), "lock_holder_ids": []}
    )
    holder = await ia.CREATE_LOCK_HOLDER.run(
        make_context(admin),
        {"name": "Acme Housing", "countryIso": "NO", "organizationId": "998877665"},
    )
    assert holder["name"] == "Acme Housing" and holder["organizationIdSuffix"] == ""
    assert (await ia.LIST_LOCK_HOLDERS.run(make_context(admin), {}))["count"] == 2
    with pytest.raises(FatalError, match="lockHolderId"):
        await ia.LIST_LOCKS.run(make_context(admin), {})
    with pytest.raises(FatalError, match="organizationId"):
        await ia.CREATE_LOCK_HOLDER.run(
            make_context(admin), {"name": "Acme", "countryIso": "NO", "organizationId": "x y"}
        )
    await admin.http.aclose()
