"""Management API: runs (list, detail, replay, cancel) and events ("why didn't this run")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from latchflow.runs.history import (
    cancel_run,
    event_list,
    replay_run,
    run_detail,
    run_list,
    run_summary,
)
from latchflow.server.errors import Rejected, responses
from latchflow.server.schemas import EventOut, ReplayIn, RunDetail, RunSummary
from latchflow.server.state import ServerState, server_state
from latchflow.storage.status import EventStatus, RunStatus

router = APIRouter(tags=["runs"])
State = Annotated[ServerState, Depends(server_state)]


@router.get("/runs", response_model=list[RunSummary], summary="Runs, newest first")
def list_runs(
    state: State,
    flow_id: str | None = None,
    status: Annotated[
        str | None,
        Query(description=", ".join(RunStatus)),
    ] = None,
    since: Annotated[datetime | None, Query(description="Created at or after")] = None,
    until: Annotated[datetime | None, Query(description="Created before")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[dict[str, Any]]:
    return run_list(state.engine.store, flow_id, status, since, until, limit)


@router.get(
    "/runs/{run_id}",
    name="get_run",
    response_model=RunDetail,
    responses=responses(404),
    summary="A run with its steps' inputs and outputs (secrets redacted)",
)
def get_run(run_id: str, state: State) -> dict[str, Any]:
    try:
        return run_detail(state.engine.store, run_id)
    except KeyError:
        raise Rejected(404, f"no run {run_id!r}", "path", "GET /api/runs lists the runs") from None


def _summary(state: ServerState, run_id: str) -> dict[str, Any]:
    run = state.engine.run(run_id)
    if run is None:
        raise Rejected(404, f"no run {run_id!r}", "path")
    return run_summary(run)


@router.post(
    "/runs/{run_id}/replay",
    response_model=RunSummary,
    responses=responses(404) | {422: {"description": "The run is still active"}},
    summary="Replay a finished run from its failed step, or from the start",
)
def replay(run_id: str, state: State, body: ReplayIn | None = None) -> dict[str, Any]:
    _summary(state, run_id)
    replay_run(
        state.engine.store,
        run_id,
        from_start=bool(body and body.from_start),
        now=state.engine.clock.now(),
    )
    state.dispatcher.notify()
    return _summary(state, run_id)


@router.post(
    "/runs/{run_id}/cancel",
    response_model=RunSummary,
    responses=responses(404, 409),
    summary="Cancel an unfinished run (a step in progress completes first)",
)
def cancel(run_id: str, state: State) -> dict[str, Any]:
    current = _summary(state, run_id)
    if not cancel_run(state.engine.store, run_id, state.engine.clock.now()):
        raise Rejected(409, f"run {run_id} is already {current['status']}", "path")
    return _summary(state, run_id)


@router.get(
    "/events",
    response_model=list[EventOut],
    summary="Events, newest first, including duplicates and filtered ones with the reason",
)
def list_events(
    state: State,
    flow_id: str | None = None,
    status: Annotated[str | None, Query(description=", ".join(EventStatus))] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[dict[str, Any]]:
    return event_list(state.engine.store, flow_id, status, limit)
