"""The embedded backend's clock: when each schedule fires and each polled flow is polled.

Every enabled flow's next fire or poll is kept in a heap with one APScheduler (3.x) job at the
earliest of them, so 10,000 schedules cost 10,000 small heap entries, not 10,000 jobs. The heap
is rebuilt from the database (one query) at start-up and whenever flows change (``rebuild``);
what a fire or a poll stores is ``ScheduleFires``'s business.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from latchflow.backends.base import Dispatcher
from latchflow.intake.schedules import ScheduleFires
from latchflow.intake.ticks import next_tick, polled, schedule_trigger
from latchflow.plugin.host import Registry
from latchflow.plugin.timeparse import parse_moment
from latchflow.runs.connections import Connections
from latchflow.storage.store import Store

log = logging.getLogger("latchflow.scheduler")

WAKE_SECONDS = 5.0
"""How often the scheduler nudges the dispatcher to re-read due work (a safety net)."""
RETRY_SECONDS = 10.0
"""When a fire that failed (e.g. the database was busy) is tried again."""


class Scheduler(ScheduleFires):
    """The embedded backend's clock: every flow's next fire or poll in a heap, one APScheduler job
    at the earliest of them, and one that wakes the dispatcher.

    ``rebuild`` may run in a request's worker thread while the loop fires, so both hold a lock.
    """

    def __init__(
        self,
        store: Store,
        registry: Registry,
        connections: Connections,
        dispatcher: Dispatcher,
        wake_seconds: float = WAKE_SECONDS,
    ) -> None:
        super().__init__(store, registry, connections, dispatcher.notify)
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
                    trigger_def = self.registry.triggers[trigger_type]
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
        if self.store.cursors.start(flow_ids, {"last_tick": now.isoformat()}, now):
            return
        # another writer started some of them: one at a time
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
            self.run_due,
            DateTrigger(run_date=datetime.now(UTC) + delay),
            id="due",
            replace_existing=True,
            misfire_grace_time=None,
        )

    def _set(self, job: str, when: datetime) -> None:
        self._next[job] = when
        heapq.heappush(self._heap, (when, job))

    async def run_due(self) -> None:
        """Fire the schedules and start the polls whose time came by the engine's clock, then
        re-arm (APScheduler calls this when the earliest job is due; a test that steps the
        clock calls it, then ``polls_done``)."""
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
        if flow is False or self._try(job, self.fire_due_for, record, flow) is False:
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

    async def polls_done(self) -> None:
        """Wait for the polls in progress."""
        await asyncio.gather(*self._tasks)

    async def _poll(self, flow_id: str) -> None:
        try:
            await self.poll_flow(flow_id)
        finally:
            self._polling.discard(flow_id)

    async def _wake(self) -> None:
        self.notify()
