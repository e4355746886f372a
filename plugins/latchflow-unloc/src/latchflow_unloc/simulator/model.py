"""The simulated Unloc world: locks, keys whose state follows the clock, jobs, tokens."""

from __future__ import annotations

import base64
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from latchflow.simulation import SimState
from latchflow_unloc.assumptions import (
    DAY_NAMES,
    JOB_FAILED_STATUSES,
    RECURRENCE_TIME_ZONE,
    SIM_CLIENT_ID,
    SIM_CLIENT_SECRET,
    SIM_INTEGRATOR_CLIENT_ID,
    SIM_INTEGRATOR_CLIENT_SECRET,
    SIM_JOB_DELAY_SECONDS,
    SIM_LOCK_HOLDER_ID,
    SIM_ORGANIZATION_ID,
    SIM_PROJECT_ID,
    SIM_WEBHOOK_ATTEMPTS,
    SIM_WEBHOOK_RETRY_DELAY,
    TOKEN_LIFETIME,
)

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return moment


@dataclass
class SimKey:
    id: str
    lock_id: str
    app_user_id: str
    start: datetime
    end: datetime | None
    created: datetime
    ready_at: datetime
    recurrence: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    failed: bool = False
    revoked_at: datetime | None = None

    def state(self, now: datetime, zone: ZoneInfo) -> str:
        if self.revoked_at is not None and self.revoked_at <= now:
            return "revoked"
        if now < self.ready_at:
            return "creating"
        if self.failed:
            return "error"
        if self.end is not None and now >= self.end:
            return "expired"
        if now < self.start:
            return "scheduled"
        if self.recurrence and not in_window(self.recurrence, now.astimezone(zone)):
            return "inactive"
        return "active"

    def v2(self, now: datetime, zone: ZoneInfo) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "lockId": self.lock_id,
            "appUser": {"id": self.app_user_id},
            "start": iso(self.start),
            "end": iso(self.end),
            "created": iso(self.created),
            "state": self.state(now, zone),
        }
        if self.recurrence:
            body["recurrence"] = self.recurrence
        if self.metadata:
            body["metadata"] = self.metadata
        return body

    def integrator(self, now: datetime, zone: ZoneInfo) -> dict[str, Any]:
        body = self.v2(now, zone)
        body.pop("appUser")
        body.pop("metadata", None)
        body["toUser"] = {"id": self.app_user_id, "name": "", "imageUrl": ""}
        return body


def in_window(recurrence: dict[str, Any], local: datetime) -> bool:
    window = recurrence.get(DAY_NAMES[local.weekday()])
    if not window:
        return False
    minute = local.hour * 60 + local.minute
    start = window["startHour"] * 60 + window["startMinute"]
    end = window["endHour"] * 60 + window["endMinute"]
    return bool(start <= minute < end)


@dataclass
class SimJob:
    """A Create Keys job: pending, then inProgress, then done after ``delay`` seconds."""

    id: str
    created: datetime
    delay: float
    keys: list[SimKey] = field(default_factory=list)
    forced: str | None = None

    def status(self, now: datetime) -> str:
        if self.forced:
            return self.forced
        elapsed = (now - self.created).total_seconds()
        if elapsed < self.delay / 2:
            return "pending"
        if elapsed < self.delay:
            return "inProgress"
        return "failedJob" if any(k.failed for k in self.keys) else "succeeded"

    def body(self, now: datetime, zone: ZoneInfo) -> dict[str, Any]:
        status = self.status(now)
        done = status not in ("pending", "inProgress")
        keys = [k.v2(now, zone) for k in self.keys]
        job: dict[str, Any] = {
            "id": self.id,
            "status": status,
            "resultData": {
                "creatingKeys": [] if done else keys,
                "createdKeys": [k for k in keys if k["state"] != "error"] if done else [],
                "failedKeys": [k for k in keys if k["state"] == "error"] if done else [],
            },
        }
        if status in JOB_FAILED_STATUSES:
            job["failureReason"] = {
                "failedValidation": "One or more keys failed validation",
                "failedJob": "The lock vendor's system could not create one or more keys",
                "timeout": "The job did not finish in time",
            }[status]
        return job


@dataclass
class SimToken:
    kind: str  # "v2" or "integrators"
    expires_at: datetime
    project_id: str | None = None
    organization_id: str | None = None
    lock_holder_ids: list[str] | None = None  # None = integrator.admin


@dataclass
class SimWebhook:
    kind: str  # "v2" or "integrators"
    url: str
    lock_id: str


def demo_locks() -> dict[str, dict[str, Any]]:
    locks = [
        ("d6d8812e-48a9-11ee-b8a1-db05e53ca3e5", "Front door", "Storgata 1", "0"),
        ("0634f1ba-e175-49e8-98bc-32b11505107b", "Apartment 101", "Storgata 1", "1"),
        ("ba193242-3cb2-4ac7-beef-d41668a009bb", "Gym", "Storgata 1", "-1"),
    ]
    return {
        lock_id: {
            "id": lock_id,
            "name": name,
            "vendor": "danalock",
            "address": {"street": street, "floor": floor, "visitorInstructions": ""},
            "batteryStatus": {"batteryLevel": 87},
        }
        for lock_id, name, street, floor in locks
    }


@dataclass
class UnlocWorld:
    """All state of one simulator instance."""

    sim: SimState = field(default_factory=SimState)
    locks: dict[str, dict[str, Any]] = field(default_factory=demo_locks)
    offline_locks: set[str] = field(default_factory=set)
    keys: dict[str, SimKey] = field(default_factory=dict)
    jobs: dict[str, SimJob] = field(default_factory=dict)
    tokens: dict[str, SimToken] = field(default_factory=dict)
    webhooks: list[SimWebhook] = field(default_factory=list)
    lock_holders: dict[str, dict[str, Any]] = field(default_factory=dict)
    job_delay: float = SIM_JOB_DELAY_SECONDS
    time_zone: str = RECURRENCE_TIME_ZONE
    project: dict[str, Any] = field(
        default_factory=lambda: {
            "id": SIM_PROJECT_ID,
            "name": "Demo project",
            "organizationId": SIM_ORGANIZATION_ID,
        }
    )
    clients: dict[str, tuple[str, str]] = field(
        default_factory=lambda: {
            SIM_CLIENT_ID: (SIM_CLIENT_SECRET, "v2"),
            SIM_INTEGRATOR_CLIENT_ID: (SIM_INTEGRATOR_CLIENT_SECRET, "integrators"),
        }
    )

    def __post_init__(self) -> None:
        self.sim.webhook_retries = SIM_WEBHOOK_ATTEMPTS
        self.sim.webhook_retry_delay = SIM_WEBHOOK_RETRY_DELAY
        self.lock_holders.setdefault(
            SIM_LOCK_HOLDER_ID,
            {
                "id": SIM_LOCK_HOLDER_ID,
                "name": "Demo lock holder",
                "countryIso": "NO",
                "organizationId": "demo-holder",
                "organizationIdSuffix": "",
                "lockIds": list(self.locks),
            },
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def now(self) -> datetime:
        return self.sim.clock.now()

    def issue_token(self, token: SimToken) -> str:
        parts = [
            base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode().rstrip("="),
            secrets.token_urlsafe(24),
            secrets.token_urlsafe(32),
        ]
        value = ".".join(parts)
        self.tokens[value] = token
        return value

    def token_expiry(self) -> datetime:
        return self.now() + timedelta(seconds=TOKEN_LIFETIME)

    def new_key(
        self, lock_id: str, app_user_id: str, item: dict[str, Any], ready_at: datetime
    ) -> SimKey:
        now = self.now()
        start = parse_iso(item["start"]) if item.get("start") else now
        end = parse_iso(item["end"]) if item.get("end") else None
        if end is None and item.get("durationMinutes"):
            end = start + timedelta(minutes=int(item["durationMinutes"]))
        key = SimKey(
            id=str(uuid.uuid4()),
            lock_id=lock_id,
            app_user_id=app_user_id,
            start=start,
            end=end,
            created=now,
            ready_at=ready_at,
            recurrence=item.get("recurrence") or None,
            metadata=item.get("metadata") or None,
            failed=lock_id in self.offline_locks,
        )
        self.keys[key.id] = key
        return key
