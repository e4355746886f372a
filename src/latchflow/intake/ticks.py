"""Schedule ticks: when a ``schedule`` flow fires, which fires were missed, and which flows poll.

Ticks are computed with APScheduler's triggers (cron in a time zone, or every N seconds from a
fixed epoch, so every process computes the same ticks). Each fire is stored under the key
``schedule:<flow id>:<tick in UTC>``, so two fires for the same tick give one run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from latchflow.plugin.types import JSON, Trigger

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
"""Interval schedules tick at EPOCH + k * interval, so every process computes the same ticks."""
ON_TIME = timedelta(seconds=60)
"""A tick handled within this long after its time is a normal fire, not a missed one."""
PROBES = (
    timedelta(minutes=1),
    timedelta(hours=1),
    timedelta(days=1),
    timedelta(days=31),
    timedelta(days=366),
)


def schedule_trigger(config: JSON) -> BaseTrigger:
    """The APScheduler trigger for a ``schedule`` flow's settings (one per distinct setting:
    triggers only compute times, so flows with the same schedule share one)."""
    cron = config.get("cron") or None
    interval = None if cron else float(config["interval_seconds"])
    return _trigger(cron, interval, config.get("timezone") or "UTC")


@lru_cache(maxsize=1024)
def _trigger(cron: str | None, interval: float | None, timezone: str) -> BaseTrigger:
    tz = ZoneInfo(timezone)
    if cron:
        return CronTrigger.from_crontab(cron, timezone=tz)
    return IntervalTrigger(seconds=interval, start_date=EPOCH, timezone=tz)


def next_tick(trigger: BaseTrigger, after: datetime) -> datetime | None:
    """The first tick strictly after ``after``."""
    result: datetime | None = trigger.get_next_fire_time(None, after + timedelta(microseconds=1))
    return result.astimezone(UTC) if result else None


def ticks_between(
    trigger: BaseTrigger, last: datetime, now: datetime
) -> tuple[int, datetime | None]:
    """How many ticks fall in (last, now] (one, or 2 for "missed some"), and the latest."""
    first = next_tick(trigger, last)
    if first is None or first > now:
        return 0, None
    latest = first
    for probe in PROBES:  # find a start near now so long downtimes do not walk every tick
        start = max(last, now - probe)
        candidate = next_tick(trigger, start)
        if candidate is not None and candidate <= now:
            latest = candidate
            break
    while (following := next_tick(trigger, latest)) is not None and following <= now:
        latest = following
    return (1 if latest == first else 2), latest


def tick_key(flow_id: str, tick: datetime) -> str:
    return f"schedule:{flow_id}:{tick.astimezone(UTC).isoformat()}"


def late_ticks(trigger: BaseTrigger, last: datetime, now: datetime) -> list[datetime]:
    """Every tick in (last, now] when the first of them is at most ON_TIME old (a late look, not
    downtime), else none."""
    ticks: list[datetime] = []
    tick = next_tick(trigger, last)
    if tick is None or now - tick > ON_TIME:
        return ticks
    while tick is not None and tick <= now:
        ticks.append(tick)
        tick = next_tick(trigger, tick)
    return ticks


def polled(trigger: Trigger, document: JSON) -> bool:
    """Whether a flow document's trigger is polled: it can be, and webhooks do not deliver it
    instead."""
    if trigger.poll is None:
        return False
    return not trigger.webhook or bool(document["trigger"].get("poll"))
