"""The simulator behaves like the documented Unloc API (over real HTTP)."""

from __future__ import annotations

from typing import Any

import pytest

from latchflow import Connection, RetryableError
from latchflow.testing import make_context
from latchflow_unloc.assumptions import (
    SIM_CLIENT_ID,
    SIM_CLIENT_SECRET,
    SIM_INTEGRATOR_CLIENT_ID,
    SIM_INTEGRATOR_CLIENT_SECRET,
    SIM_LOCK_HOLDER_ID,
    SIM_PROJECT_ID,
)
from latchflow_unloc.client import UnlocClient
from latchflow_unloc.read_actions import LIST_KEYS, LIST_LOCKS
from latchflow_unloc.revoke_actions import REVOKE_KEY
from latchflow_unloc.testing import FRONT_DOOR, Sim

ACTION = "unloc.some_action"  # what the user configured; errors name it

TOKEN = {
    "grant_type": "client_credentials",
    "client_id": SIM_CLIENT_ID,
    "client_secret": SIM_CLIENT_SECRET,
    "scope": "project.admin",
    "project_id": SIM_PROJECT_ID,
}


async def token(sim: Sim, **form: Any) -> str:
    if form:
        response = await sim.http.post(f"{sim.url}/v2/auth/token/", data=form)
    else:
        response = await sim.http.post(f"{sim.url}/v2/auth/token/", json=TOKEN)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["expires_in"] == 3600 and body["scope"] == ["project.admin"]
    return str(body["access_token"])


async def test_token_accepts_form_bodies_and_expires_after_an_hour(sim: Sim) -> None:
    value = await token(sim, **TOKEN)
    url = f"{sim.url}/v2/projects/{SIM_PROJECT_ID}/locks"
    assert (
        await sim.http.get(url, headers={"authorization": f"Bearer {value}"})
    ).status_code == 200
    await sim.advance(3601)
    expired = await sim.http.get(url, headers={"authorization": f"Bearer {value}"})
    assert expired.status_code == 401 and expired.json() == {
        "error": "JsonWebTokenError",
        "errorDescription": "JWT expired",
    }
    other = await sim.http.get(
        f"{sim.url}/v2/projects/other/locks",
        headers={"authorization": f"Bearer {await token(sim)}"},
    )
    assert other.status_code == 403


async def test_client_survives_an_expired_token(sim: Sim, conn: Connection) -> None:
    client = UnlocClient(conn, ACTION)
    await client.all_locks()
    conn.cache["token"]["expires_at"] = sim.world.now().replace(
        year=2100
    )  # clock skew: cache thinks it is fresh
    await sim.advance(4000)
    assert len(await client.all_locks()) == 3


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ({"start": None}, "must be of type string"),
        ({"appUserId": "99887766"}, "E.164"),
        ({"end": "tomorrow"}, "date-time"),
        ({"colour": "red"}, "additional properties"),
        (
            {
                "recurrence": {
                    "mon": {"startHour": 25, "startMinute": 0, "endHour": 9, "endMinute": 0}
                }
            },
            "startHour",
        ),
        ({"lockId": "00000000-0000-0000-0000-000000000000"}, "must be the id of a lock"),
        ({"end": "2020-01-01T00:00:00.000Z"}, "keys[1].end must be in the future"),
        (
            {"start": "2020-01-01T00:00:00.000Z", "durationMinutes": 60},
            "keys[1].durationMinutes must be in the future",
        ),
        (
            {"start": "2099-01-02T00:00:00.000Z", "end": "2099-01-01T00:00:00.000Z"},
            "keys[1].end must be after start",
        ),
    ],
)
async def test_whole_batch_is_rejected_with_400_problem_json(
    sim: Sim, key: dict[str, Any], reason: str
) -> None:
    headers = {"authorization": f"Bearer {await token(sim)}"}
    good = {"lockId": FRONT_DOOR, "appUserId": "+4799887766"}
    response = await sim.http.post(
        f"{sim.url}/v2/projects/{SIM_PROJECT_ID}/keys",
        headers=headers,
        json={"keys": [good, {**good, **key}]},
    )
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 400 and body["invalidParams"][0]["name"].startswith("keys[1]")
    assert reason in body["invalidParams"][0]["name"] + " " + body["invalidParams"][0]["reason"]
    assert body["title"] == "Bad Request" and body["type"] == "about:blank"
    assert sim.world.keys == {} and sim.world.jobs == {}


async def test_revoking_an_expired_key_is_409_and_revoke_is_repeatable(
    sim: Sim, conn: Connection
) -> None:
    client = UnlocClient(conn, ACTION)
    now = sim.world.now()
    job = await client.create_keys([
        {"lockId": FRONT_DOOR, "appUserId": "+4799887766", "durationMinutes": 10},
        {"lockId": FRONT_DOOR, "appUserId": "+4741234567"},
    ])  # fmt: skip
    await sim.advance(3)
    created = (await client.get_job(job))["resultData"]["createdKeys"]
    short, long = (k["id"] for k in created)
    assert (await client.get_key(short))["end"] is not None and now
    await sim.advance(700)
    assert (await client.get_key(short))["state"] == "expired"
    assert await REVOKE_KEY.run(make_context(conn), {"keyId": short}) == {
        "keyId": short,
        "revoked": False,
        "state": "expired",
    }
    for _ in range(2):
        assert (await REVOKE_KEY.run(make_context(conn), {"keyId": long}))["revoked"] is True
    assert (await client.get_key(long))["state"] == "revoked"
    missing = await REVOKE_KEY.run(make_context(conn), {"keyId": "nope", "ignoreMissing": True})
    assert missing["revoked"] is False


async def test_listing_paginates_and_filters(sim: Sim, conn: Connection) -> None:
    client = UnlocClient(conn, ACTION)
    await client.create_keys(
        [{"lockId": FRONT_DOOR, "appUserId": f"+47900000{i:02d}"} for i in range(5)]
    )
    await sim.advance(3)
    page = await LIST_KEYS.run(make_context(conn), {"limit": 2})
    assert page["count"] == 2 and page["startAfterId"]
    rest = await LIST_KEYS.run(
        make_context(conn), {"limit": 2, "startAfterId": page["startAfterId"]}
    )
    assert {k["keyId"] for k in rest["keys"]}.isdisjoint(k["keyId"] for k in page["keys"])
    everything = await LIST_KEYS.run(make_context(conn), {"allPages": True, "lockId": FRONT_DOOR})
    assert everything["count"] == 5 and everything["startAfterId"] is None
    await client.revoke_keys(app_user_id="+4790000003")
    active = await LIST_KEYS.run(
        make_context(conn), {"allPages": True, "excludeStates": ["revoked"]}
    )
    assert active["count"] == 4
    one = await LIST_KEYS.run(make_context(conn), {"appUserId": "90000001", "defaultRegion": "NO"})
    assert [k["appUserId"] for k in one["keys"]] == ["+4790000001"]
    locks = await LIST_LOCKS.run(make_context(conn), {"allPages": True})
    assert locks["count"] == 3 and locks["locks"][0]["name"] == "Front door"


async def test_injected_faults_become_retryable_errors(sim: Sim, conn: Connection) -> None:
    await sim.control(
        "/_sim/faults", {"kind": "rate_limit", "path": "/v2/projects", "retry_after": 9}
    )
    with pytest.raises(RetryableError) as info:
        await UnlocClient(conn, ACTION).all_locks()
    assert info.value.retry_after == 9
    await sim.control("/_sim/faults", {"kind": "error", "status": 502, "path": "/v2/projects"})
    with pytest.raises(RetryableError, match="502"):
        await UnlocClient(conn, ACTION).all_locks()
    assert len(await UnlocClient(conn, ACTION).all_locks()) == 3


async def test_an_integrators_key_that_ended_already_is_refused(sim: Sim) -> None:
    response = await sim.http.post(
        f"{sim.url}/auth/v1/token/",
        json={
            "grant_type": "client_credentials",
            "client_id": SIM_INTEGRATOR_CLIENT_ID,
            "client_secret": SIM_INTEGRATOR_CLIENT_SECRET,
            "scope": "integrator.admin",
        },
    )
    headers = {"authorization": f"Bearer {response.json()['access_token']}"}
    path = f"/integrators/v1/lock-holders/{SIM_LOCK_HOLDER_ID}/locks/{FRONT_DOOR}/keys/"
    refused = await sim.http.post(
        sim.url + path,
        headers=headers,
        json={"userId": "+4799887766", "start": None, "end": "2020-01-01T00:00:00.000Z"},
    )
    assert refused.status_code == 400
    assert refused.json()["invalidParams"] == [{"name": "end", "reason": "must be in the future"}]
    assert sim.world.keys == {}


@pytest.mark.parametrize(
    ("query", "name", "reason"),
    [
        ({"appUserId": "99887766"}, "appUserId", "must be an E.164 phone number"),
        ({"lockId": "no-such-lock"}, "lockId", "must be the id of a lock in the project"),
        ({"appUser": "+4799887766"}, "appUser", "must NOT have additional properties"),
        ({"lockId": FRONT_DOOR, "excludeSubprojectKeys": "yes"}, "excludeSubprojectKeys", "must be boolean"),
    ],
)  # fmt: skip
async def test_a_revoke_many_with_an_invalid_filter_is_refused(
    sim: Sim, conn: Connection, query: dict[str, str], name: str, reason: str
) -> None:
    await UnlocClient(conn, ACTION).create_keys(
        [{"lockId": FRONT_DOOR, "appUserId": "+4799887766"}]
    )
    await sim.advance(3)
    response = await sim.http.delete(
        f"{sim.url}/v2/projects/{SIM_PROJECT_ID}/keys",
        params=query,
        headers={"authorization": f"Bearer {await token(sim)}"},
    )
    assert response.status_code == 400
    assert response.json()["invalidParams"] == [{"name": name, "reason": reason}]
    [key] = sim.world.keys.values()
    assert key.state(sim.world.now(), sim.world.zone) == "active"  # nothing revoked
