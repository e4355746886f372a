"""The Unloc credential provider against the simulator, the way access grants use it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from latchflow import (
    AccessWindow,
    Connection,
    CredentialKind,
    CredentialRequest,
    FatalError,
    Holder,
    WeeklyHours,
)
from latchflow.testing import check_provider, load_registry, make_context
from latchflow_unloc.access import LOCK, PROVIDER
from latchflow_unloc.assumptions import SIM_PROJECT_ID
from latchflow_unloc.client import UnlocClient
from latchflow_unloc.keys import iso_utc
from latchflow_unloc.testing import FRONT_DOOR, Sim

LOST_CREATE = {
    "kind": "lost",
    "count": 1,
    "method": "POST",
    "path": f"/v2/projects/{SIM_PROJECT_ID}/keys",
}


@pytest.fixture
async def fast_jobs(sim: Sim) -> Sim:
    """Create Keys jobs that finish a moment after they start (still one Pending or more)."""
    await sim.control("/_sim/settings", {"job_delay": 0.1})
    return sim


def request(sim: Sim, weekly: WeeklyHours | None = None) -> CredentialRequest:
    now = sim.world.now().replace(microsecond=0)
    return CredentialRequest(
        credential_id="cred-1",
        resource_kind=LOCK,
        resource=FRONT_DOOR,
        kind=CredentialKind.MOBILE_KEY,
        holder=Holder(name="Kari Nordmann", phone="+4799887766"),
        window=AccessWindow(
            starts_at=now + timedelta(hours=1),
            ends_at=now + timedelta(days=2),
            timezone="Europe/Oslo",
            weekly=weekly,
        ),
        label="Kari Nordmann · B-1001",
    )


async def test_provider_issues_inspects_revokes_and_adopts_after_a_lost_answer(
    fast_jobs: Sim, conn: Connection
) -> None:
    problems = await check_provider(PROVIDER, conn, request(fast_jobs), fast_jobs.url, LOST_CREATE)
    assert problems == []


async def test_weekly_hours_become_the_keys_recurrence(fast_jobs: Sim, conn: Connection) -> None:
    weekly = WeeklyHours(days=("mon", "wed"), start="08:00", end="17:30")
    wanted = request(fast_jobs, weekly)
    assert await check_provider(PROVIDER, conn, wanted, fast_jobs.url, LOST_CREATE) == []
    window = {"startHour": 8, "startMinute": 0, "endHour": 17, "endMinute": 30}
    live = [k for k in fast_jobs.world.keys.values() if k.revoked_at is None]
    assert [k.recurrence for k in live] == [{"mon": window, "wed": window}]
    assert live[0].metadata is not None and live[0].metadata["label"] == wanted.label


async def test_inspect_finds_a_key_made_outside_latchflow(sim: Sim, conn: Connection) -> None:
    await sim.control("/_sim/settings", {"job_delay": 0})
    ends = sim.world.now().replace(microsecond=0) + timedelta(days=1)
    client = UnlocClient(conn, "test")
    await client.create_keys(
        [{"lockId": FRONT_DOOR, "appUserId": "+4791234567", "end": iso_utc(ends)}]
    )
    (made,) = sim.world.keys.values()
    found = await PROVIDER.inspect(make_context(conn), LOCK, FRONT_DOOR)
    assert len(found) == 1
    key = found[0]
    assert key.ids == {"keyId": made.id} and key.active and key.status == "active"
    assert key.holder == "+4791234567" and key.ends_at == ends
    assert key.kind is CredentialKind.MOBILE_KEY and key.resource == FRONT_DOOR


async def test_resources_list_the_projects_locks(fast_jobs: Sim, conn: Connection) -> None:
    assert PROVIDER.resources is not None
    locks = await PROVIDER.resources(make_context(conn), LOCK)
    assert FRONT_DOOR in [r.id for r in locks]
    assert sorted(r.id for r in locks) == sorted(fast_jobs.world.locks)
    assert all(r.name and r.name != r.id for r in locks)
    for lock in locks:
        assert await PROVIDER.inspect(make_context(conn), LOCK, lock.id) == []
    wanted = replace(request(fast_jobs), resource=locks[-1].id)
    assert await check_provider(PROVIDER, conn, wanted, fast_jobs.url, LOST_CREATE) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"holder": Holder(name="Ola")}, "a mobile key needs the person's phone number"),
        ({"kind": CredentialKind.PIN}, "mobile keys only"),
        ({"holder": Holder(name="Ola", phone="12")}, "holder.phone"),
    ],
)
async def test_impossible_requests_fail_saying_what_is_missing(
    sim: Sim, conn: Connection, change: dict[str, object], message: str
) -> None:
    impossible = replace(request(sim), **change)  # type: ignore[arg-type]
    with pytest.raises(FatalError, match=message):
        await PROVIDER.issue(make_context(conn), impossible)
    assert sim.world.keys == {}


async def test_weekly_hours_across_midnight_are_refused(sim: Sim, conn: Connection) -> None:
    overnight = request(sim, WeeklyHours(days=("fri",), start="22:00", end="06:00"))
    with pytest.raises(FatalError, match="cannot cross midnight"):
        await PROVIDER.issue(make_context(conn), overnight)


def test_the_plugin_registers_the_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATCHFLOW_LOAD_PLUGINS", "unloc")
    provider = load_registry().providers[LOCK]
    assert provider is PROVIDER
    assert provider.vendor == "unloc" and provider.weekly_hours and provider.change is None
    assert provider.resource_kinds[0].credentials == (CredentialKind.MOBILE_KEY,)
