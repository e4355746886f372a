"""Run history as users see it (secrets redacted when stored), and replay and cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from latchflow.plugin.types import JSON
from latchflow.storage.models import EventRecord, RunRecord
from latchflow.storage.runs import RunFilter
from latchflow.storage.store import Store


def run_summary(run: RunRecord) -> JSON:
    return {
        "id": run.id,
        "flow_id": run.flow_id,
        "flow_version": run.flow_version,
        "event_id": run.event_id,
        "status": run.status,
        "step_index": run.step_index,
        "due_at": _iso(run.due_at),
        "error": run.error,
        "output": run.output,
        "created_at": _iso(run.created_at),
        "finished_at": _iso(run.finished_at),
    }


def run_list(
    store: Store,
    flow_id: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
) -> list[JSON]:
    """Runs, newest first, filtered by flow, status and creation time."""
    which = RunFilter(flow_id, status, since, until, limit)
    return [run_summary(r) for r in store.history.runs(which)]


def run_detail(store: Store, run_id: str, reveal: bool = False) -> JSON:
    """A run with its event and every step's input, output, status and error: redacted (its
    connections' secrets and the credentials its steps issued masked), or as they were when
    ``reveal`` (the sealed copies; the caller records who revealed them)."""
    run, event, steps = store.history.detail(run_id)
    unseal = store.sealer.unseal
    return {
        **run_summary(run),
        "event": {"id": event.id, "data": event.data, "received_at": _iso(event.received_at)}
        if event
        else None,
        "steps": [
            {
                "id": s.step_id,
                "action": s.action,
                "status": s.status,
                "attempts": s.attempts,
                "input": unseal(s.input_sealed) if reveal and s.input_sealed else s.input,
                "output": unseal(s.output_sealed) if reveal and s.output_sealed else s.output,
                "error": s.error,
                "started_at": _iso(s.started_at),
                "finished_at": _iso(s.finished_at),
            }
            for s in steps
        ],
    }


def replay_run(store: Store, run_id: str, *, from_start: bool, now: datetime) -> None:
    """Queue a finished run again, from its failed step or from the start.

    The run keeps its id, so each step keeps its idempotency key: vendors and plugins that
    honour it do not repeat an effect that already happened.
    """
    store.history.replay(run_id, from_start=from_start, now=now)


def cancel_run(store: Store, run_id: str, now: datetime) -> bool:
    """Stop a run that has not finished; its current step, if running, completes first."""
    return store.history.cancel(run_id, now)


def event_list(
    store: Store, flow_id: str | None = None, status: str | None = None, limit: int = 50
) -> list[JSON]:
    """Events, newest first, including duplicates, filtered and dropped ones with the reason."""
    return [event_summary(e) for e in store.history.events(flow_id, status, limit)]


def event_summary(event: EventRecord) -> dict[str, Any]:
    return {
        "id": event.id,
        "flow_id": event.flow_id,
        "trigger": event.trigger,
        "connection_id": event.connection_id,
        "vendor_type": event.vendor_type,
        "status": event.status,
        "reason": event.reason,
        "run_id": event.run_id,
        "key": event.source_key,
        "data": event.data,
        "received_at": _iso(event.received_at),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
