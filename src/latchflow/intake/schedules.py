"""Schedule fires and polls: what they store, for whichever backend keeps the time.

The embedded backend's clock (``backends.embedded.clock``) and the PostgreSQL backend's
periodic ``cron_tick`` decide *when* to look; ``ScheduleFires`` decides *what* happens, from the
database. The last tick handled is kept in the flow's cursor row, so fires missed while
latchflow was down are found and caught up per the flow's ``catch_up`` ("skip" or "once").
Polling triggers commit their new cursor together with the runs a poll creates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

from latchflow.flows.document import Flow
from latchflow.intake.ticks import ON_TIME, late_ticks, schedule_trigger, tick_key, ticks_between
from latchflow.plugin.errors import RateLimitedError
from latchflow.plugin.host import Registry
from latchflow.plugin.timeparse import parse_moment
from latchflow.plugin.types import JSON
from latchflow.runs.connections import Connections
from latchflow.storage.cursors import TimedFlow
from latchflow.storage.events import Accepted, Cursor, Delivery
from latchflow.storage.models import FlowRecord
from latchflow.storage.store import Store

log = logging.getLogger("latchflow.scheduler")


class ScheduleFires:
    """What a schedule fire or a poll stores; ``notify`` is told when it queued a run."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        connections: Connections,
        notify: Callable[[], None],
    ) -> None:
        self.store = store
        self.registry = registry
        self.connections = connections
        self.clock = connections.clock
        self.notify = notify

    def timed_flows(self) -> Iterator[TimedFlow]:
        """Every enabled schedule or pollable flow with its cursor (``Cursors.timed_flows``)."""
        pollable = [key for key, t in self.registry.triggers.items() if t.poll is not None]
        return self.store.cursors.timed_flows(pollable)

    # schedules

    def fire_due(self, flow_id: str) -> list[Accepted]:
        """Fire a schedule flow for the ticks that came since it last fired, per its catch_up."""
        record = self.store.get_flow(flow_id)
        if record is None or not record.enabled or record.trigger_type != "schedule":
            return []
        return self.fire_due_for(record, self.store.flow_version(record.id, record.version))

    def fire_due_for(self, record: FlowRecord, flow: Flow) -> list[Accepted]:
        flow_id, config = record.id, flow.trigger_input
        catch_up = config.get("catch_up") or flow.document["trigger"].get("catch_up") or "once"
        now = self.clock.now()
        row = self.store.cursors.get(flow_id)
        last_text = (row.cursor or {}).get("last_tick") if row else None
        if last_text is None:  # a new schedule starts from now; nothing before it was missed
            self._store(record, [], Cursor(flow_id, {"last_tick": now.isoformat()}, now))
            return []
        trigger, last = schedule_trigger(config), parse_moment(last_text)
        late = late_ticks(trigger, last, now)
        if late:  # looked late (a busy node), not after downtime: every tick fires
            return self._fire(record, late, now, config, late[-1])
        count, latest = ticks_between(trigger, last, now)
        if latest is None:
            return []
        on_time = count == 1 and now - latest <= ON_TIME
        fire = on_time or catch_up == "once"
        if not fire:
            log.info("flow %s: skipping missed fires up to %s (catch_up: skip)", flow_id, latest)
        return self._fire(record, [latest] if fire else [], now, config, latest)

    def fire(self, flow_id: str, tick: datetime) -> Accepted:
        """Insert the fire for one tick (a repeat of the same tick is recorded as a duplicate)."""
        record = self.store.get_flow(flow_id)
        if record is None:
            raise KeyError(flow_id)
        flow = self.store.flow_version(record.id, record.version)
        (accepted,) = self._fire(record, [tick], self.clock.now(), flow.trigger_input, None)
        return accepted

    def _fire(
        self,
        record: FlowRecord,
        ticks: list[datetime],
        now: datetime,
        config: JSON,
        handled: datetime | None,
    ) -> list[Accepted]:
        zone = ZoneInfo(config.get("timezone") or "UTC")
        deliveries = [
            Delivery(
                record,
                {"scheduled_for": tick.astimezone(zone).isoformat(), "fired_at": now.isoformat()},
                now,
                tick_key(record.id, tick),
            )
            for tick in ticks
        ]
        cursor = Cursor(record.id, {"last_tick": handled.isoformat()}, now) if handled else None
        return self._store(record, deliveries, cursor)

    def _store(
        self, record: FlowRecord, deliveries: list[Delivery], cursor: Cursor | None
    ) -> list[Accepted]:
        accepted = [
            outcome
            for outcome in self.store.events.write(deliveries, cursor)
            if isinstance(outcome, Accepted)
        ]
        if any(a.created for a in accepted):
            self.notify()
        return accepted

    # polling

    async def poll_flow(self, flow_id: str) -> list[Accepted]:
        """Poll a flow's trigger once; its events and new cursor are committed together."""
        record = self.store.get_flow(flow_id)
        if record is None or not record.enabled:
            return []
        trigger = self.registry.triggers.get(record.trigger_type)
        if trigger is None or trigger.poll is None:
            return []
        flow = self.store.flow_version(record.id, record.version)
        connections = self.connections
        connection_id = None
        try:
            connection_id = connections.resolve(
                trigger.connection or "", flow.trigger_connection, "$.trigger"
            )
            held = connections.holds.held_until(connection_id)
            if held is not None:  # a 429 or an outage: leave this account alone for now
                log.info("flow %s: not polling until %s (connection held)", flow_id, held)
                return []
            live = await connections.get(connection_id)
            row = self.store.cursors.get(flow_id)
            cursor = (row.cursor or {}).get("poll") if row else None
            result = await trigger.poll(live.connection, flow.trigger_input, cursor)
        except Exception as exc:
            if isinstance(exc, RateLimitedError) and connection_id is not None:
                connections.holds.rate_limited(
                    connection_id, exc.retry_after or trigger.poll_interval, str(exc)
                )
            log.warning("flow %s: polling %s failed: %s", flow_id, trigger.key, exc)
            return []
        now = self.clock.now()
        deliveries = []
        for event in result.events:
            if event.trigger != record.trigger_type:
                continue
            key = f"{event.trigger}:{event.id}"
            matches = trigger.matches(flow.trigger_input, event.data)
            reason = None if matches else "the event does not match the trigger settings"
            deliveries.append(Delivery(record, event.data, now, key, filtered=reason))
        return self._store(record, deliveries, Cursor(flow_id, {"poll": result.cursor}, now))
