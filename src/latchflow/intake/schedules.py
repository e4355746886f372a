"""Schedule fires and polls (both backends), and the embedded backend's clock.

``ScheduleFires`` is what a fire or a poll stores; both the embedded ``Scheduler`` (APScheduler
3.x, used in this module only, decides *when* to look) and the PostgreSQL backend's periodic
``cron_tick`` call it. The database decides *what* happens. Each schedule fire is stored as an event under the key
``schedule:<flow id>:<tick in UTC>``, so two fires for the same tick give one run, and the last
tick handled is kept in the flow's ``PollCursor`` row, so fires missed while latchflow was down
are found and caught up per the flow's ``catch_up`` ("skip" or "once"). Polling triggers commit
their new cursor together with the runs a poll creates.

The embedded ``Scheduler`` keeps each flow's next fire or poll in a heap and one APScheduler job
at the earliest of them, so 10,000 schedules cost 10,000 small heap entries, not 10,000 jobs. The
heap is rebuilt from the database (one query) at start-up and whenever flows change
(``rebuild``).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Row, and_, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from latchflow.backends.embedded.dispatcher import Dispatcher
from latchflow.engine import Engine
from latchflow.flows.document import Flow
from latchflow.intake.events import Accepted, accept_batch
from latchflow.plugin.errors import RateLimitedError
from latchflow.plugin.timeparse import parse_moment
from latchflow.plugin.types import JSON, Trigger
from latchflow.storage.models import FlowRecord, FlowVersion, PollCursor

log = logging.getLogger("latchflow.scheduler")

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
"""Interval schedules tick at EPOCH + k * interval, so every process computes the same ticks."""
ON_TIME = timedelta(seconds=60)
"""A tick handled within this long after its time is a normal fire, not a missed one."""
WAKE_SECONDS = 5.0
"""How often the scheduler nudges the dispatcher to re-read due work (a safety net)."""
BATCH = 500
"""Rows read or written at a time when (re)building the schedule."""
RETRY_SECONDS = 10.0
"""When a fire that failed (e.g. the database was busy) is tried again."""
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


class ScheduleFires:
    """What a schedule fire or a poll stores; called by whichever backend keeps the time."""

    def __init__(self, engine: Engine, dispatcher: Dispatcher) -> None:
        self.engine = engine
        self.store = engine.store
        self.clock = engine.clock
        self.dispatcher = dispatcher

    @staticmethod
    def polls(trigger: Trigger, flow: Flow) -> bool:
        """Whether a flow's trigger is polled (see ``polled``)."""
        return polled(trigger, flow.document)

    def _flows(self, trigger_type: str | None = None) -> list[FlowRecord]:
        return [
            r
            for r in self.store.list_flows()
            if r.enabled and (trigger_type is None or r.trigger_type == trigger_type)
        ]

    def timed_flows(self) -> Iterator[Row[str, str, JSON, str | None, Any, datetime | None]]:
        """Every enabled schedule or pollable flow as (id, trigger type, current document, cursor
        row's flow id or None, cursor, last polled), in one streamed query."""
        pollable = [key for key, t in self.engine.registry.triggers.items() if t.poll is not None]
        query = (
            select(
                col(FlowRecord.id),
                col(FlowRecord.trigger_type),
                col(FlowVersion.document),
                col(PollCursor.flow_id),
                col(PollCursor.cursor),
                col(PollCursor.polled_at),
            )
            .join(
                FlowVersion,
                and_(
                    col(FlowVersion.flow_id) == col(FlowRecord.id),
                    col(FlowVersion.version) == col(FlowRecord.version),
                ),
            )
            .outerjoin(PollCursor, col(PollCursor.flow_id) == col(FlowRecord.id))
            .where(
                col(FlowRecord.enabled),
                or_(
                    col(FlowRecord.trigger_type) == "schedule",
                    col(FlowRecord.trigger_type).in_(pollable),
                ),
            )
        )
        with self.store.session() as session:
            yield from session.execute(query).yield_per(BATCH)

    # schedules

    def fire_due(self, flow_id: str) -> list[Accepted]:
        """Fire a schedule flow for the ticks that came since it last fired, per its catch_up."""
        record = self.store.get_flow(flow_id)
        if record is None or not record.enabled or record.trigger_type != "schedule":
            return []
        return self._fire_due(record, self.store.flow_version(record.id, record.version))

    def _fire_due(self, record: FlowRecord, flow: Flow) -> list[Accepted]:
        flow_id, config = record.id, flow.trigger_input
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
        connections = self.engine.connections
        connection_id = None
        try:
            connection_id = connections.resolve(
                trigger.connection or "", flow.trigger_connection, "$.trigger"
            )
            cooling = connections.cooling_until(connection_id)
            if cooling is not None:  # a 429 told us to leave this account alone for now
                log.info("flow %s: not polling until %s (rate limited)", flow_id, cooling)
                return []
            live = await connections.get(connection_id)
            with self.store.session() as session:
                row = session.get(PollCursor, flow_id)
                cursor = (row.cursor or {}).get("poll") if row else None
            result = await trigger.poll(live.connection, flow.trigger_input, cursor)
        except Exception as exc:
            if isinstance(exc, RateLimitedError) and connection_id is not None:
                connections.cool_down(connection_id, exc.retry_after or trigger.poll_interval)
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
    """The embedded backend's clock: every flow's next fire or poll in a heap, one APScheduler job
    at the earliest of them, and one that wakes the dispatcher.

    ``rebuild`` may run in a request's worker thread while the loop fires, so both hold a lock.
    """

    def __init__(
        self, engine: Engine, dispatcher: Dispatcher, wake_seconds: float = WAKE_SECONDS
    ) -> None:
        super().__init__(engine, dispatcher)
        self.wake_seconds = wake_seconds
        self._aps: AsyncIOScheduler | None = None
        self._lock = threading.Lock()
        self._next: dict[str, datetime] = {}
        """When each job (``schedule:<flow id>`` or ``poll:<flow id>``) is next due."""
        self._heap: list[tuple[datetime, str]] = []
        """(due, job) pairs; a pair whose time is no longer the job's in ``_next`` is stale."""
        self._intervals: dict[str, float] = {}
        self._polling: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # lifecycle

    async def start(self) -> None:
        """Start APScheduler (needs the running loop), build the jobs, catch up missed fires."""
        self._aps = AsyncIOScheduler(timezone=UTC)
        self._aps.start()
        self._aps.add_job(
            self._wake, IntervalTrigger(seconds=self.wake_seconds), id="wake", coalesce=True
        )
        self.rebuild()

    def shutdown(self) -> None:
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None

    def jobs(self) -> list[str]:
        """The wake-up and every flow's next fire (``schedule:<id>``) or poll (``poll:<id>``)."""
        return ["wake", *self._next] if self._aps else []

    def rebuild(self) -> None:
        """Recompute every enabled flow's next fire or poll from the database, fire the schedules
        whose ticks passed while nobody looked (per catch_up), and start new schedules' cursors."""
        if self._aps is None:
            return
        with self._lock:
            now = self.clock.now()
            upcoming: dict[str, datetime] = {}
            intervals: dict[str, float] = {}
            fresh: list[str] = []  # schedules without a cursor row: start one at now
            look: list[str] = []  # schedules with a passed tick or a cursor row without a tick
            for flow_id, trigger_type, document, cursor_row, cursor, _ in self.timed_flows():
                try:
                    if trigger_type == "schedule":
                        trigger = schedule_trigger(document["trigger"].get("input") or {})
                        last = (cursor or {}).get("last_tick")
                        tick = next_tick(trigger, parse_moment(last) if last else now)
                        if last is None and cursor_row is None:
                            fresh.append(flow_id)
                        elif last is None or (tick is not None and tick <= now):
                            look.append(flow_id)
                            tick = next_tick(trigger, now)
                        if tick is not None:
                            upcoming[f"schedule:{flow_id}"] = tick
                        continue
                    trigger_def = self.engine.registry.triggers[trigger_type]
                    if polled(trigger_def, document):  # a new one now, the others keep their pace
                        upcoming[f"poll:{flow_id}"] = self._next.get(f"poll:{flow_id}", now)
                        intervals[f"poll:{flow_id}"] = trigger_def.poll_interval
                except Exception as exc:  # one broken flow must not stop the others' schedules
                    log.warning("flow %s is not scheduled: %s", flow_id, exc)
            self._next, self._intervals = upcoming, intervals
            self._heap = [(when, job) for job, when in upcoming.items()]
            heapq.heapify(self._heap)
            self._start_cursors(fresh, now)
            for flow_id in look:
                self._try(f"schedule:{flow_id}", self.fire_due, flow_id)
            self._arm()

    def _start_cursors(self, flow_ids: list[str], now: datetime) -> None:
        """New schedules start from now (nothing before was missed): their cursors in one commit."""
        if not flow_ids:
            return
        cursor = {"last_tick": now.isoformat()}
        with self.store.session() as session:
            try:
                for start in range(0, len(flow_ids), BATCH):  # batches keep the peak memory low
                    rows = [
                        {"flow_id": f, "cursor": cursor, "polled_at": now}
                        for f in flow_ids[start : start + BATCH]
                    ]
                    session.execute(insert(PollCursor), rows)
                session.commit()
                return
            except IntegrityError:  # another writer started some of them: one at a time
                session.rollback()
        for flow_id in flow_ids:
            self._try(f"schedule:{flow_id}", self.fire_due, flow_id)

    # the clock

    def _arm(self) -> None:
        """Point the APScheduler job at the earliest due job (called with the lock held).

        The delay is taken from the engine's clock, so an injected clock never spins the loop.
        """
        while self._heap and self._next.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        if self._aps is None:
            return
        if not self._heap:
            if self._aps.get_job("due") is not None:
                self._aps.remove_job("due")
            return
        delay = max(self._heap[0][0] - self.clock.now(), timedelta(0))
        self._aps.add_job(
            self._due,
            DateTrigger(run_date=datetime.now(UTC) + delay),
            id="due",
            replace_existing=True,
            misfire_grace_time=None,
        )

    def _set(self, job: str, when: datetime) -> None:
        self._next[job] = when
        heapq.heappush(self._heap, (when, job))

    async def _due(self) -> None:
        """Fire the schedules and start the polls whose time came, then re-arm."""
        with self._lock:
            now = self.clock.now()
            while self._heap and self._heap[0][0] <= now:
                when, job = heapq.heappop(self._heap)
                if self._next.get(job) != when:
                    continue
                kind, flow_id = job.split(":", 1)
                if kind == "schedule":
                    self._fire_schedule(job, flow_id)
                else:
                    self._start_poll(job, flow_id, when, now)
            self._arm()

    def _fire_schedule(self, job: str, flow_id: str) -> None:
        """Fire a schedule and set its next tick; a flow no longer scheduled leaves the heap."""
        record = self._try(job, self.store.get_flow, flow_id)
        if record is False:
            return
        if record is None or not record.enabled or record.trigger_type != "schedule":
            self._next.pop(job, None)
            return
        flow = self._try(job, self.store.flow_version, record.id, record.version)
        if flow is False or self._try(job, self._fire_due, record, flow) is False:
            return
        tick = next_tick(schedule_trigger(flow.trigger_input), self.clock.now())
        if tick is None:
            self._next.pop(job, None)
        else:
            self._set(job, tick)

    def _try(self, job: str, call: Any, *args: Any) -> Any:
        """``call(*args)``, or False after logging its failure and retrying the job later."""
        try:
            return call(*args)
        except Exception:
            log.exception("%s failed; trying again in %.0f s", job, RETRY_SECONDS)
            self._set(job, self.clock.now() + timedelta(seconds=RETRY_SECONDS))
            return False

    def _start_poll(self, job: str, flow_id: str, when: datetime, now: datetime) -> None:
        """Start a poll unless the last one is still running; its next poll is one interval on."""
        interval = timedelta(seconds=self._intervals.get(job, 60.0))
        following = when + interval
        self._set(job, following if following > now else now + interval)
        if flow_id in self._polling:
            return
        self._polling.add(flow_id)
        task = asyncio.get_running_loop().create_task(self._poll(flow_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _poll(self, flow_id: str) -> None:
        try:
            await self.poll_flow(flow_id)
        finally:
            self._polling.discard(flow_id)

    async def _wake(self) -> None:
        self.dispatcher.notify()
