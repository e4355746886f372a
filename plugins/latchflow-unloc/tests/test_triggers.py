"""Polling triggers over simulated time, and access-event webhooks end to end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from jsonschema import Draft202012Validator

from latchflow import (
    Connection,
    PollResult,
    TriggerEvent,
    UnmappedEvent,
    WebhookError,
    WebhookRequest,
)
from latchflow.testing import make_connection, make_context, serve_app
from latchflow_unloc.create_keys import CREATE_KEYS
from latchflow_unloc.revoke_actions import REVOKE_KEY
from latchflow_unloc.simulator.model import parse_iso
from latchflow_unloc.testing import APARTMENT, FRONT_DOOR, GYM, Sim, integrators_config, v2_config
from latchflow_unloc.triggers import KEY_EXPIRED, KEY_STATE_CHANGED, KEY_USED, LOCK_UNLOCKED
from latchflow_unloc.vendors import UNLOC, UNLOC_INTEGRATORS

WEEKDAYS_9_18 = {
    d: {"startHour": 9, "startMinute": 0, "endHour": 18, "endMinute": 0}
    for d in ("mon", "tue", "wed", "thu", "fri")
}
MONDAY_0800_OSLO = "2026-03-02T07:00:00+00:00"


class Poller:
    """Polls a trigger like the engine: keeps the cursor, dedupes by event id."""

    def __init__(
        self, conn: Connection, trigger: Any, config: dict[str, Any] | None = None
    ) -> None:
        self.conn, self.trigger, self.config = conn, trigger, config or {}
        self.cursor: dict[str, Any] | None = None
        self.seen: dict[str, TriggerEvent] = {}

    async def poll(self) -> list[TriggerEvent]:
        result: PollResult = await self.trigger.poll(self.conn, self.config, self.cursor)
        self.cursor = result.cursor
        validator = Draft202012Validator(self.trigger.output_schema)
        for event in result.events:
            validator.validate(event.data)
            assert event.id not in self.seen, f"event {event.id} delivered twice"
            self.seen[event.id] = event
        return result.events


def moves(events: list[TriggerEvent]) -> set[tuple[str, str | None, str]]:
    return {(e.data["keyId"], e.data["previousState"], e.data["state"]) for e in events}


async def create(sim: Sim, conn: Connection, keys: list[dict[str, Any]]) -> list[str]:
    result = await CREATE_KEYS.run(make_context(conn), {"keys": keys, "pollInterval": 1})
    assert not isinstance(result, dict)
    ids = [k.id for k in sim.world.keys.values()][-len(keys) :]
    return ids


async def test_each_key_state_transition_gives_exactly_one_event(
    sim: Sim, conn: Connection
) -> None:
    await sim.set_clock(MONDAY_0800_OSLO)
    now = parse_iso(MONDAY_0800_OSLO)
    changes = Poller(conn, KEY_STATE_CHANGED)
    expiries = Poller(conn, KEY_EXPIRED)
    stay, staff, guest = await create(
        sim,
        conn,
        [
            {
                "lockId": APARTMENT,
                "appUserId": "+4799887766",
                "start": (now + timedelta(hours=1)).isoformat(),
                "end": (now + timedelta(hours=3)).isoformat(),
            },
            {"lockId": FRONT_DOOR, "appUserId": "+4741234567", "recurrence": WEEKDAYS_9_18},
            {"lockId": GYM, "appUserId": "+4790000001"},
        ],
    )
    assert await changes.poll() == [] and await expiries.poll() == []  # first poll: cursor only

    await sim.advance(3)  # the job finished: every key left "creating"
    first = await changes.poll()
    assert moves(first) == {
        (stay, "creating", "scheduled"),
        (staff, "creating", "inactive"),
        (guest, "creating", "active"),
    }
    assert await changes.poll() == []  # nothing new
    assert await expiries.poll() == []

    # Polling again from an older cursor (e.g. after a crash) yields the same event ids.
    replay = await KEY_STATE_CHANGED.poll(
        conn, {}, {"keys": {k: ["creating", 1] for k in (stay, staff, guest)}}
    )
    assert {e.id for e in replay.events} == {e.id for e in first}

    await sim.advance(3600)  # 09:00 in Oslo: the stay starts, the staff window opens
    assert moves(await changes.poll()) == {
        (stay, "scheduled", "active"),
        (staff, "inactive", "active"),
    }

    assert await expiries.poll() == []
    await REVOKE_KEY.run(make_context(conn), {"keyId": guest})
    assert moves(await changes.poll()) == {(guest, "active", "revoked")}

    await sim.advance(2 * 3600)  # the stay ends
    assert moves(await changes.poll()) == {(stay, "active", "expired")}
    assert moves(await expiries.poll()) == {(stay, "active", "expired")}

    await sim.advance(7 * 3600)  # 18:00 in Oslo: the staff window closes
    assert moves(await changes.poll()) == {(staff, "active", "inactive")}
    await sim.advance(15 * 3600)  # Tuesday 09:00: open again
    assert moves(await changes.poll()) == {(staff, "inactive", "active")}
    assert await changes.poll() == [] and await expiries.poll() == []
    assert len(changes.seen) == 9 and len(expiries.seen) == 1
    [expired] = expiries.seen.values()
    assert expired.trigger == "unloc.key_expired"


async def test_filters_and_vanished_keys(sim: Sim, conn: Connection) -> None:
    poller = Poller(conn, KEY_STATE_CHANGED, {"lockId": GYM, "states": ["revoked"]})
    await poller.poll()
    gym, door = await create(
        sim,
        conn,
        [
            {"lockId": GYM, "appUserId": "+4790000001"},
            {"lockId": FRONT_DOOR, "appUserId": "+4790000001"},
        ],
    )
    await sim.advance(3)
    assert await poller.poll() == []  # active is not a wanted state
    del sim.world.keys[gym]  # revoked in Control Center and gone from the listing
    sim.world.keys[door].revoked_at = sim.world.now()  # other lock: not this flow's
    [event] = await poller.poll()
    assert (
        event.data["keyId"] == gym
        and event.data["state"] == "revoked"
        and event.data["vanished"] is True
    )
    assert KEY_STATE_CHANGED.matches({"lockId": GYM, "states": ["revoked"]}, event.data)
    assert not KEY_STATE_CHANGED.matches({"lockId": GYM, "states": ["active"]}, event.data)
    assert KEY_STATE_CHANGED.matches(
        {"appUserId": "90000001", "defaultRegion": "NO"},
        {"appUserId": "+4790000001", "state": "active"},
    )


# --- webhooks -----------------------------------------------------------------------------


def receiver(sim_url: str) -> FastAPI:
    """Stands in for latchflow's ``/vendors/{vendor}/{connection}`` route."""
    app = FastAPI()
    app.state.events = []
    vendors = {
        "unloc": (UNLOC, v2_config(sim_url)),
        "unloc_integrators": (UNLOC_INTEGRATORS, integrators_config(sim_url)),
    }

    @app.post("/vendors/{vendor}/{connection_id}")
    async def hook(vendor: str, connection_id: str, request: Request) -> JSONResponse:
        plugin_vendor, config = vendors[vendor]
        conn = make_connection(vendor, config, connection_id=connection_id)
        body = WebhookRequest(
            method="POST",
            url=str(request.url),
            headers=dict(request.headers),
            body=await request.body(),
        )
        try:
            assert plugin_vendor.webhook is not None
            events = await plugin_vendor.webhook(body, conn)
        except WebhookError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status_code)
        finally:
            await conn.http.aclose()
        app.state.events += events
        return JSONResponse({"accepted": len(events)}, status_code=202)

    return app


@pytest.fixture
def hooks(sim: Sim) -> Iterator[tuple[str, FastAPI]]:
    app = receiver(sim.url)
    with serve_app(app) as url:
        yield url, app


async def test_access_events_arrive_through_the_registered_webhooks(
    sim: Sim, conn: Connection, hooks: tuple[str, FastAPI]
) -> None:
    url, app = hooks
    assert UNLOC.sandbox is not None and UNLOC_INTEGRATORS.sandbox is not None
    config = await UNLOC.sandbox(sim.url, f"{url}/vendors/unloc/sandbox-unloc")
    assert config == v2_config(sim.url)
    await UNLOC_INTEGRATORS.sandbox(
        sim.url, f"{url}/vendors/unloc_integrators/sandbox-unloc_integrators"
    )
    [key_id] = await create(sim, conn, [{"lockId": FRONT_DOOR, "appUserId": "+4799887766"}])

    refused = await sim.http.post(f"{sim.url}/_sim/locks/{FRONT_DOOR}/open", json={"keyId": key_id})
    assert refused.status_code == 403  # still creating
    await sim.advance(3)
    opened = await sim.http.post(
        f"{sim.url}/_sim/locks/{FRONT_DOOR}/open", json={"keyId": key_id, "userName": "Kari"}
    )
    assert opened.status_code == 200 and opened.json()["delivered"] == 2
    await sim.settle()  # Unloc sends webhooks after its answer: wait for their delivery

    by_trigger = {e.trigger: e for e in app.state.events}
    assert set(by_trigger) == {"unloc.lock_unlocked", "unloc_integrators.key_used"}
    v2 = by_trigger["unloc.lock_unlocked"]
    Draft202012Validator(LOCK_UNLOCKED.output_schema).validate(v2.data)
    Draft202012Validator(KEY_USED.output_schema).validate(
        by_trigger["unloc_integrators.key_used"].data
    )
    assert v2.id == opened.json()["event"]["id"]
    assert v2.data | {"created": None} == {
        "eventId": v2.id, "action": "unlocked", "created": None, "keyId": key_id,
        "lockId": FRONT_DOOR, "lockName": "Front door", "appUserId": "+4799887766", "userName": "Kari",
    }  # fmt: skip
    assert LOCK_UNLOCKED.matches({"lockId": FRONT_DOOR}, v2.data)
    assert not LOCK_UNLOCKED.matches({"lockId": GYM}, v2.data)

    # An event naming a key that is not on that lock is refused.
    async with httpx.AsyncClient() as http:
        forged = {**opened.json()["event"], "lockId": GYM}
        answer = await http.post(f"{url}/vendors/unloc/sandbox-unloc", json=forged)
        assert answer.status_code == 403 and "not a key for lock" in answer.json()["error"]
        answer = await http.post(f"{url}/vendors/unloc/sandbox-unloc", json={"hello": "world"})
        assert answer.status_code == 400 and "$.id" in answer.json()["error"]
        answer = await http.post(
            f"{url}/vendors/unloc_integrators/x", json={**forged, "keyId": "nope"}
        )
        assert answer.status_code == 403
    assert len(app.state.events) == 2


def delivery(body: dict[str, Any]) -> WebhookRequest:
    return WebhookRequest(
        "POST", "http://latchflow.test/vendors/unloc/c", {}, json.dumps(body).encode()
    )


async def test_event_types_map_per_connection_and_unmapped_events_are_kept(
    sim: Sim, conn: Connection, iconn: Connection
) -> None:
    assert UNLOC.webhook is not None and UNLOC_INTEGRATORS.webhook is not None
    [key_id] = await create(sim, conn, [{"lockId": FRONT_DOOR, "appUserId": "+4799887766"}])
    event = {"id": "e1", "action": "unlocked", "keyId": key_id, "lockId": FRONT_DOOR}
    [unlocked] = await UNLOC.webhook(delivery(event), conn)
    assert isinstance(unlocked, TriggerEvent) and unlocked.trigger == "unloc.lock_unlocked"
    [locked] = await UNLOC.webhook(delivery({**event, "id": "e2", "action": "locked"}), conn)
    assert locked == UnmappedEvent(
        "locked", "e2", {**unlocked.data, "eventId": "e2", "action": "locked"}
    )

    conn.config["eventTypes"] = {"unlocked": "", "locked": "unloc.lock_unlocked"}
    Draft202012Validator(UNLOC.connection_schema).validate(conn.config)
    [off] = await UNLOC.webhook(delivery(event), conn)
    [on] = await UNLOC.webhook(delivery({**event, "id": "e2", "action": "locked"}), conn)
    assert isinstance(off, UnmappedEvent) and off.vendor_type == "unlocked"
    assert isinstance(on, TriggerEvent) and on.trigger == "unloc.lock_unlocked"
    bad = {**conn.config, "eventTypes": {"unlocked": "unloc.no_such_trigger"}}
    assert not Draft202012Validator(UNLOC.connection_schema).is_valid(bad)

    used = {**event, "userId": "+4799887766"}
    for action, mapped in (("unlocked", True), ("locked", True), ("jammed", False)):
        [result] = await UNLOC_INTEGRATORS.webhook(delivery({**used, "action": action}), iconn)
        assert isinstance(result, TriggerEvent) is mapped, action
    assert isinstance(result, UnmappedEvent) and result.vendor_type == "jammed"
