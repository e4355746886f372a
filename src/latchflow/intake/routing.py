"""Which flows an event starts: manual starts, trigger URL deliveries and vendor webhook events.

A trigger URL delivery is for its flow; its dedupe key is the caller's ``Idempotency-Key`` or
the value at the flow's ``idempotency_key_path``. A vendor webhook event is for every enabled
flow listening on its trigger and connection; a flow whose trigger settings it does not match
keeps it as "filtered", with the reason; one that no trigger stands for is kept as "dropped",
with the vendor's type and the reason. Everything is stored by the store's ``EventWriter``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import jmespath

from latchflow.plugin.clock import Clock
from latchflow.plugin.host import Registry
from latchflow.plugin.types import JSON, TriggerEvent, UnmappedEvent
from latchflow.storage.events import Accepted, Delivery, Dropped
from latchflow.storage.models import FlowRecord
from latchflow.storage.store import Store


@dataclass(frozen=True)
class Started:
    """A run a vendor event started for a flow (``created`` False: a duplicate's first run)."""

    flow_id: str
    run_id: str
    created: bool


@dataclass(frozen=True)
class Filtered:
    """A vendor event a listening flow's trigger settings did not match."""

    flow_id: str
    event_id: str
    reason: str


@dataclass(frozen=True)
class Routed:
    """What a vendor webhook's events became."""

    events: int
    dropped: int = 0
    """Events no trigger stands for, kept as dropped."""
    runs: list[Started] = field(default_factory=list)
    filtered: list[Filtered] = field(default_factory=list)


class Intake:
    """Stores events for the flows they concern, deduplicated, each with its queued run."""

    def __init__(self, store: Store, registry: Registry, clock: Clock) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock

    def start(self, flow_id: str, data: JSON, dedupe_key: str | None = None) -> Accepted:
        """A run of a flow with the given event, started by hand (KeyError: no such flow)."""
        record = self.store.get_flow(flow_id)
        if record is None:
            raise KeyError(flow_id)
        (outcome,) = self.store.events.write([Delivery(record, data, self.clock.now(), dedupe_key)])
        assert isinstance(outcome, Accepted)
        return outcome

    async def deliver(self, delivery: Delivery) -> Accepted:
        """A trigger URL delivery, stored with concurrent ones (a repeated dedupe key or signed
        ``webhook-id`` is answered with the first delivery's run)."""
        return await self.store.events.accept(delivery)

    def dedupe_key(self, record: FlowRecord, header: str | None, body: Any) -> str | None:
        """A trigger URL delivery's dedupe key: the ``Idempotency-Key`` header, else the body's
        value at the flow's ``idempotency_key_path``."""
        if header:
            return header
        flow = self.store.flow_version(record.id, record.version)
        path = flow.trigger_input.get("idempotency_key_path")
        if not path:
            return None
        value = jmespath.search(path, body)
        if value is None:
            return None
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True)

    def route(self, connection_id: str, events: list[TriggerEvent | UnmappedEvent]) -> Routed:
        """Store each vendor event for every flow it concerns, in one transaction (deduped per
        flow by trigger and event id), and each that no trigger stands for as dropped."""
        now = self.clock.now()
        deliveries: list[Delivery] = []
        event_ids: list[str] = []
        dropped: list[Dropped] = []
        for event in events:
            if isinstance(event, UnmappedEvent):
                unmapped = event.reason or (
                    f"no trigger stands for the vendor's event type {event.vendor_type!r};"
                    " map it to one in the connection's eventTypes setting"
                )
                dropped.append(Dropped(connection_id, event.vendor_type, event.data, unmapped, now))
                continue
            trigger = self.registry.triggers.get(event.trigger)
            if trigger is None:
                missing = f"trigger {event.trigger!r} is not installed"
                dropped.append(Dropped(connection_id, event.trigger, event.data, missing, now))
                continue
            key = f"{event.trigger}:{event.id}"
            for record in self.listening_flows(event.trigger, connection_id):
                flow = self.store.flow_version(record.id, record.version)
                reason = None
                if not trigger.matches(flow.trigger_input, event.data):
                    reason = (
                        f"the event does not match the flow's trigger settings {flow.trigger_input}"
                    )
                deliveries.append(Delivery(record, event.data, now, key, filtered=reason))
                event_ids.append(event.id)
        routed = Routed(events=len(events), dropped=len(dropped))
        outcomes = self.store.events.write(deliveries, dropped=dropped)
        for delivery, event_id, outcome in zip(deliveries, event_ids, outcomes, strict=True):
            if isinstance(outcome, Accepted):
                routed.runs.append(Started(delivery.flow.id, outcome.run_id, outcome.created))
            elif delivery.filtered is not None:
                routed.filtered.append(Filtered(delivery.flow.id, event_id, delivery.filtered))
        return routed

    def listening_flows(self, trigger: str, connection_id: str) -> list[FlowRecord]:
        """Enabled flows on ``trigger`` that use this connection (named, or the vendor's only
        one)."""
        flows = [f for f in self.store.list_flows() if f.enabled and f.trigger_type == trigger]
        if not flows:
            return []
        record, _ = self.store.connection_config(connection_id)
        only_one = len(self.store.list_connections(record.vendor)) == 1
        return [
            f
            for f in flows
            if f.trigger_connection == connection_id or (f.trigger_connection is None and only_one)
        ]
