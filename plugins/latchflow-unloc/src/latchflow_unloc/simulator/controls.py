"""Unloc-specific ``/_sim/`` routes: state, settings, locks going offline, opening a lock with
a key."""

from __future__ import annotations

import uuid
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import FastAPI
from pydantic import BaseModel, Field

from latchflow_unloc.simulator.common import Problem
from latchflow_unloc.simulator.model import UnlocWorld, iso


class Settings(BaseModel):
    job_delay: float | None = Field(
        default=None, ge=0, description="seconds a Create Keys job takes"
    )
    time_zone: str | None = Field(default=None, description="IANA zone of recurrence windows")


class LockChange(BaseModel):
    online: bool = Field(
        description="false: new keys for this lock end in state error (job failedJob)"
    )


class NewLock(BaseModel):
    id: str | None = None
    name: str


class OpenLock(BaseModel):
    keyId: str = Field(description="the key used to open the lock")
    userName: str = ""


class ForceJob(BaseModel):
    status: str = Field(
        pattern="^(pending|inProgress|succeeded|failedValidation|failedJob|timeout)$"
    )


def add_unloc_controls(app: FastAPI, world: UnlocWorld) -> None:
    @app.get("/_sim/state", tags=["simulator"])
    async def state() -> dict[str, Any]:
        """Every key (revoked ones too, with their metadata), job and lock holder."""
        now, zone = world.now(), world.zone
        return {
            "keys": [k.v2(now, zone) for k in world.keys.values()],
            "jobs": [j.body(now, zone) for j in world.jobs.values()],
            "lockHolders": list(world.lock_holders.values()),
        }

    @app.post("/_sim/settings", tags=["simulator"])
    async def settings(change: Settings) -> dict[str, Any]:
        if change.job_delay is not None:
            world.job_delay = change.job_delay
        if change.time_zone is not None:
            try:
                ZoneInfo(change.time_zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise Problem(
                    400, "Bad Request", f"unknown time zone {change.time_zone!r}"
                ) from None
            world.time_zone = change.time_zone
        return {"job_delay": world.job_delay, "time_zone": world.time_zone}

    @app.post("/_sim/locks", tags=["simulator"], status_code=201)
    async def add_lock(lock: NewLock) -> dict[str, Any]:
        lock_id = lock.id or str(uuid.uuid4())
        world.locks[lock_id] = {
            "id": lock_id,
            "name": lock.name,
            "vendor": "danalock",
            "address": {"street": "", "floor": "", "visitorInstructions": ""},
            "batteryStatus": {"batteryLevel": 100},
        }
        for holder in world.lock_holders.values():
            holder["lockIds"].append(lock_id)
            break
        return {"lock": world.locks[lock_id]}

    @app.post("/_sim/locks/{lock_id}", tags=["simulator"])
    async def change_lock(lock_id: str, change: LockChange) -> dict[str, Any]:
        if lock_id not in world.locks:
            raise Problem(404, "Not Found", f"Lock {lock_id} not found")
        if change.online:
            world.offline_locks.discard(lock_id)
        else:
            world.offline_locks.add(lock_id)
        return {"lockId": lock_id, "online": change.online}

    @app.post("/_sim/jobs/{job_id}", tags=["simulator"])
    async def force_job(job_id: str, change: ForceJob) -> dict[str, Any]:
        job = world.jobs.get(job_id)
        if job is None:
            raise Problem(404, "Not Found", f"Job {job_id} not found")
        job.forced = change.status
        return {"id": job_id, "status": change.status}

    @app.post("/_sim/locks/{lock_id}/open", tags=["simulator"])
    async def open_lock(lock_id: str, attempt: OpenLock) -> dict[str, Any]:
        """A user opens the lock in the Unloc app: access-event webhooks go out if the key works."""
        lock = world.locks.get(lock_id)
        key = world.keys.get(attempt.keyId)
        if lock is None or key is None or key.lock_id != lock_id:
            raise Problem(404, "Not Found", "no such key on this lock")
        state = key.state(world.now(), world.zone)
        if state != "active":
            raise Problem(403, "Forbidden", f"the key is {state}, not active")
        event_id, created = str(uuid.uuid4()), iso(world.now())
        common = {
            "id": event_id,
            "action": "unlocked",
            "created": created,
            "keyId": key.id,
            "lockId": lock_id,
            "lockName": lock["name"],
            "userName": attempt.userName,
        }
        v2_body = {**common, "appUserId": key.app_user_id}
        v1_body = {**common, "userId": key.app_user_id}
        targets = [
            (h.url, v2_body if h.kind == "v2" else v1_body)
            for h in world.webhooks
            if h.lock_id == lock_id
        ]
        targets += [(url, v2_body) for url in world.sim.webhook_urls]
        for url, body in targets:
            await world.sim.deliver(body, urls=[url])
        return {"event": v2_body, "delivered": len(targets)}
