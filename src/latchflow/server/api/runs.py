"""Management API: runs (list, detail, replay, cancel) and events ("why didn't this run")."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from latchflow.plugin.errors import ValidationError
from latchflow.runs.history import (
    cancel_run,
    event_list,
    replay_run,
    run_detail,
    run_list,
    run_summary,
)
from latchflow.server.auth import require_api_key
from latchflow.server.errors import Rejected, responses
from latchflow.server.gate import require_scope
from latchflow.server.schemas import (
    DateTimeParameter,
    EventOut,
    ReplayIn,
    RunDetail,
    RunSummary,
)
from latchflow.server.state import ServerState, server_state
from latchflow.storage.api_keys import Scope
from latchflow.storage.models import ApiKey
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
    since: Annotated[DateTimeParameter | None, Query(description="Created at or after")] = None,
    until: Annotated[DateTimeParameter | None, Query(description="Created before")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[dict[str, Any]]:
    return run_list(state.engine.store, flow_id, status, since, until, limit)


@router.get(
    "/runs/{run_id}",
    name="get_run",
    response_model=RunDetail,
    responses=responses(403, 404),
    summary="A run with its steps' inputs and outputs (secrets and issued credentials masked)",
)
def get_run(
    run_id: str,
    state: State,
    key: Annotated[ApiKey, Depends(require_api_key)],
    reveal: Annotated[
        bool,
        Query(
            description="Show the steps' inputs and outputs unmasked (admin scope; recorded in"
            " the audit log with the key)"
        ),
    ] = False,
) -> dict[str, Any]:
    store = state.engine.store
    if reveal:
        require_scope(key, Scope.ADMIN, "revealing a run's credentials")
    try:
        detail = run_detail(store, run_id, reveal=reveal)
    except KeyError:
        raise Rejected(404, f"no run {run_id!r}", "path", "GET /api/runs lists the runs") from None
    if reveal:
        actor = f"api key {key.id} ({key.name})"
        store.audit.record(actor, "reveal", f"run {run_id}", state.engine.clock.now())
    return detail


def _summary(state: ServerState, run_id: str) -> dict[str, Any]:
    run = state.engine.run(run_id)
    if run is None:
        raise Rejected(404, f"no run {run_id!r}", "path")
    return run_summary(run)


@router.post(
    "/runs/{run_id}/replay",
    name="replay_run",
    response_model=RunSummary,
    responses=responses(404, 409),
    summary="Replay a finished run from its failed step, or from the start",
)
def replay(run_id: str, state: State, body: ReplayIn | None = None) -> dict[str, Any]:
    _summary(state, run_id)
    try:
        replay_run(
            state.engine.store,
            run_id,
            from_start=bool(body and body.from_start),
            now=state.engine.clock.now(),
        )
    except ValidationError as exc:  # the run has not finished
        message = "; ".join(error.message for error in exc.errors)
        raise Rejected(409, message, "path", f"POST /api/runs/{run_id}/cancel stops it") from None
    state.dispatcher.notify()
    return _summary(state, run_id)


@router.post(
    "/runs/{run_id}/cancel",
    name="cancel_run",
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
    summary="Events, newest first, including duplicates, filtered and dropped ones with the reason",
)
def list_events(
    state: State,
    flow_id: str | None = None,
    status: Annotated[str | None, Query(description=", ".join(EventStatus))] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[dict[str, Any]]:
    return event_list(state.engine.store, flow_id, status, limit)
