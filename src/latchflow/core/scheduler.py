"""Schedule fires and polls (both backends), and the embedded backend's clock.

``ScheduleFires`` is what a fire or a poll stores; both the embedded ``Scheduler`` (APScheduler
3.x, used in this module only, decides *when* to look) and the PostgreSQL backend's periodic
``cron_tick`` call it. The database decides *what* happens. Each schedule fire is stored as an event under the key
``schedule:<flow id>:<tick in UTC>``, so two fires for the same tick give one run, and the last
tick handled is kept in the flow's ``PollCursor`` row, so fires missed while latchflow was down
are found and caught up per the flow's ``catch_up`` ("skip" or "once"). Polling triggers commit
their new cursor together with the runs a poll creates. Jobs are rebuilt from the database at
start-up and whenever flows change (``rebuild``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from latchflow.core.dispatch import Dispatcher
from latchflow.core.engine import Engine
from latchflow.core.flows import Flow
from latchflow.core.intake import Accepted, accept_batch
from latchflow.core.models import FlowRecord, PollCursor
from latchflow.core.timeparse import parse_moment
from latchflow.core.types import JSON, Trigger

log = logging.getLogger("latchflow.scheduler")

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
"""Interval schedules tick at EPOCH + k * interval, so every process computes the same ticks."""
ON_TIME = timedelta(seconds=60)
"""A tick handled within this long after its time is a normal fire, not a missed one."""
WAKE_SECONDS = 5.0
"""How often the scheduler nudges the dispatcher to re-read due work (a safety net)."""
PROBES = (
    timedelta(minutes=1),
    timedelta(hours=1),
    timedelta(days=1),
    timedelta(days=31),
    timedelta(days=366),
)


def schedule_trigger(config: JSON) -> BaseTrigger:
    """The APScheduler trigger for a ``schedule`` flow's settings."""
    tz = ZoneInfo(config.get("timezone") or "UTC")
    if config.get("cron"):
        return CronTrigger.from_crontab(config["cron"], timezone=tz)
    return IntervalTrigger(seconds=float(config["interval_seconds"]), start_date=EPOCH, timezone=tz)


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


class ScheduleFires:
    """What a schedule fire or a poll stores; called by whichever backend keeps the time."""

    def __init__(self, engine: Engine, dispatcher: Dispatcher) -> None:
        self.engine = engine
        self.store = engine.store
        self.clock = engine.clock
        self.dispatcher = dispatcher

    @staticmethod
    def polls(trigger: Trigger, flow: Flow) -> bool:
        """Whether a flow's trigger is polled: it can be, and webhooks do not deliver it instead."""
        if trigger.poll is None:
            return False
        return not trigger.webhook or bool(flow.document["trigger"].get("poll"))

    def _flows(self, trigger_type: str | None = None) -> list[FlowRecord]:
        return [
            r
            for r in self.store.list_flows()
            if r.enabled and (trigger_type is None or r.trigger_type == trigger_type)
        ]

    # schedules

    def fire_due(self, flow_id: str) -> list[Accepted]:
        """Fire a schedule flow for the ticks that came since it last fired, per its catch_up."""
        record = self.store.get_flow(flow_id)
        if record is None or not record.enabled or record.trigger_type != "schedule":
            return []
        flow = self.store.flow_version(record.id, record.version)
        config = flow.trigger_input
        catch_up = config.get("catch_up") or flow.document["trigger"].get("catch_up") or "once"
        now = self.clock.now()
        with self.store.session() as session:
            row = session.get(PollCursor, flow_id)
            last_text = (row.cursor or {}).get("last_tick") if row else None
            if last_text is None:  # a new schedule starts from now; nothing before it was missed
                accept_batch(session, record, [], now, cursor={"last_tick": now.isoformat()})
                return []
            trigger, last = schedule_trigger(config), parse_moment(last_text)
            late = late_ticks(trigger, last, now)
            if late:  # looked late (a busy node), not after downtime: every tick fires
                return self._fire(session, record, late, now, config, late[-1])
            count, latest = ticks_between(trigger, last, now)
            if latest is None:
                return []
            on_time = count == 1 and now - latest <= ON_TIME
            fire = on_time or catch_up == "once"
            if not fire:
                log.info(
                    "flow %s: skipping missed fires up to %s (catch_up: skip)", flow_id, latest
                )
            return self._fire(session, record, [latest] if fire else [], now, config, latest)

    def fire(self, flow_id: str, tick: datetime) -> Accepted:
        """Insert the fire for one tick (a repeat of the same tick is recorded as a duplicate)."""
        record = self.store.get_flow(flow_id)
        if record is None:
            raise KeyError(flow_id)
        flow = self.store.flow_version(record.id, record.version)
        with self.store.session() as session:
            (accepted,) = self._fire(
                session, record, [tick], self.clock.now(), flow.trigger_input, None
            )
            return accepted

    def _fire(
        self,
        session: Any,
        record: FlowRecord,
        ticks: list[datetime],
        now: datetime,
        config: JSON,
        handled: datetime | None,
    ) -> list[Accepted]:
        items = []
        zone = ZoneInfo(config.get("timezone") or "UTC")
        for tick in ticks:
            data = {"scheduled_for": tick.astimezone(zone).isoformat(), "fired_at": now.isoformat()}
            items.append((tick_key(record.id, tick), data))
        cursor = {"last_tick": handled.isoformat()} if handled is not None else None
        accepted = accept_batch(session, record, items, now, cursor=cursor)
        if any(a.created for a in accepted):
            self.dispatcher.notify()
        return accepted

    # polling

    async def poll_flow(self, flow_id: str) -> list[Accepted]:
        """Poll a flow's trigger once; its events and new cursor are committed together."""
        record = self.store.get_flow(flow_id)
        if record is None or not record.enabled:
            return []
        trigger = self.engine.registry.triggers.get(record.trigger_type)
        if trigger is None or trigger.poll is None:
            return []
        flow = self.store.flow_version(record.id, record.version)
        try:
            connection_id = self.engine.connections.resolve(
                trigger.connection or "", flow.trigger_connection, "$.trigger"
            )
            live = await self.engine.connections.get(connection_id)
            with self.store.session() as session:
                row = session.get(PollCursor, flow_id)
                cursor = (row.cursor or {}).get("poll") if row else None
            result = await trigger.poll(live.connection, flow.trigger_input, cursor)
        except Exception as exc:
            log.warning("flow %s: polling %s failed: %s", flow_id, trigger.key, exc)
            return []
        items, filtered = [], []
        for event in result.events:
            key = f"{event.trigger}:{event.id}"
            if event.trigger != record.trigger_type:
                continue
            if trigger.matches(flow.trigger_input, event.data):
                items.append((key, event.data))
            else:
                filtered.append((key, event.data, "the event does not match the trigger settings"))
        with self.store.session() as session:
            accepted = accept_batch(
                session,
                record,
                items,
                self.clock.now(),
                cursor={"poll": result.cursor},
                filtered=filtered,
            )
        if any(a.created for a in accepted):
            self.dispatcher.notify()
        return accepted


class Scheduler(ScheduleFires):
    """The embedded backend's clock: APScheduler jobs for fires, polls and dispatcher wake-ups."""

    def __init__(
        self, engine: Engine, dispatcher: Dispatcher, wake_seconds: float = WAKE_SECONDS
    ) -> None:
        super().__init__(engine, dispatcher)
        self.wake_seconds = wake_seconds
        self._aps: AsyncIOScheduler | None = None

    # lifecycle

    async def start(self) -> None:
        """Start APScheduler (needs the running loop), build the jobs, catch up missed fires."""
        self._aps = AsyncIOScheduler(timezone=UTC)
        self._aps.start()
        self.rebuild()

    def shutdown(self) -> None:
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None

    def rebuild(self) -> None:
        """Replace every job with those the enabled flows in the database call for."""
        if self._aps is None:
            return
        self._aps.remove_all_jobs()
        self._aps.add_job(
            self._wake, IntervalTrigger(seconds=self.wake_seconds), id="wake", coalesce=True
        )
        for record in self._flows():
            try:
                flow = self.store.flow_version(record.id, record.version)
                self._add_jobs(record, flow)
            except Exception as exc:  # one broken flow must not stop the others' schedules
                log.warning("flow %s is not scheduled: %s", record.id, exc)
        for record in self._flows("schedule"):  # catch up, or start a new schedule's cursor
            self.fire_due(record.id)

    def _add_jobs(self, record: FlowRecord, flow: Flow) -> None:
        assert self._aps is not None
        common: dict[str, Any] = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        if record.trigger_type == "schedule":
            self._aps.add_job(
                self._fire_job,
                schedule_trigger(flow.trigger_input),
                args=[record.id],
                id=f"schedule:{record.id}",
                **common,
            )
            return
        trigger = self.engine.registry.triggers.get(record.trigger_type)
        if trigger is not None and self.polls(trigger, flow):
            self._aps.add_job(
                self.poll_flow,
                IntervalTrigger(seconds=trigger.poll_interval),
                args=[record.id],
                id=f"poll:{record.id}",
                next_run_time=datetime.now(UTC),
                **common,
            )

    def jobs(self) -> list[str]:
        return [job.id for job in self._aps.get_jobs()] if self._aps else []

    async def _wake(self) -> None:
        self.dispatcher.notify()

    async def _fire_job(self, flow_id: str) -> None:
        self.fire_due(flow_id)
