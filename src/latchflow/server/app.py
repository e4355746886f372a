"""The FastAPI application: trigger URLs, vendor webhooks, the management API and /healthz."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from latchflow.backends import choose
from latchflow.backends.base import DEFAULT_WORKERS
from latchflow.backends.embedded.clock import Scheduler
from latchflow.backends.nodes import NodeHeartbeat, new_node_id
from latchflow.engine import Engine
from latchflow.plugin.errors import LatchflowError, ValidationError
from latchflow.server import trigger_urls, vendor_webhooks
from latchflow.server.api import catalog, connections, flows, nodes, runs
from latchflow.server.auth import require_api_key
from latchflow.server.errors import Rejected, rejected_handler, responses
from latchflow.server.schemas import Health
from latchflow.server.state import DEFAULT_BODY_LIMIT, ServerState

log = logging.getLogger("latchflow.server")


class LatchflowApp(FastAPI):
    """FastAPI, with trigger URLs answered before its middleware and routing (``trigger_urls.answer``):
    they are the hot path, and the framework's layers cost as much as the handler."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.root_path:  # as FastAPI sets it, so the trigger URL sees the same scope
            scope["root_path"] = self.root_path
        target = trigger_urls.trigger_url_parts(scope)
        if target is None:
            await super().__call__(scope, receive, send)
        else:
            await trigger_urls.answer(self.state.latchflow, *target, scope, receive, send)


async def validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ValidationError)
    return JSONResponse(
        {"error": "invalid document", "errors": [e.as_dict() for e in exc.errors]},
        status_code=422,
    )


async def latchflow_error_handler(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"error": str(exc), "where": getattr(exc, "path", None), "hint": None}, status_code=400
    )


def create_app(
    engine: Engine,
    *,
    workers: int = DEFAULT_WORKERS,
    body_limit: int = DEFAULT_BODY_LIMIT,
    run_processes: int = 0,
    background: bool = True,
    grace_seconds: float = 10.0,
) -> FastAPI:
    """The app for an engine. With ``background`` the lifespan runs the dispatcher (advancing
    runs in ``run_processes`` child processes, or in this one) and the scheduler; without it
    nothing runs by itself (tests drive ``state.dispatcher.drain()``)."""
    node_id = new_node_id()
    dispatch = choose.dispatcher(engine.executor, workers, node_id, run_processes)
    heartbeat = NodeHeartbeat(engine.store, dispatch, engine.clock, node_id)
    state = ServerState(
        engine=engine,
        dispatcher=dispatch,
        scheduler=Scheduler(engine.store, engine.registry, engine.connections, dispatch),
        body_limit=body_limit,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if background:
            await state.dispatcher.start()
            if not state.dispatcher.fires_schedules:  # else the backend fires them itself
                await state.scheduler.start()
            await heartbeat.start()
            log.info("node %s: dispatcher and scheduler started", node_id)
        try:
            yield
        finally:
            if background:
                state.scheduler.shutdown()
                await state.dispatcher.stop(grace_seconds)
                await heartbeat.stop()
            await engine.store.events.close()
            await engine.connections.close()

    app = LatchflowApp(
        title="latchflow",
        version=_version(),
        description="Low-code automation for smart locks, smart lockers and key automats.",
        lifespan=lifespan,
    )
    app.state.latchflow = state
    _add_routes(app)
    return app


def _add_routes(app: FastAPI) -> None:
    """Error handlers, /healthz, the management API (behind an API key) and the webhooks."""
    app.add_exception_handler(Rejected, rejected_handler)
    app.add_exception_handler(ValidationError, validation_handler)
    app.add_exception_handler(LatchflowError, latchflow_error_handler)

    @app.get("/healthz", response_model=Health, tags=["health"], summary="Liveness")
    def healthz() -> Health:
        return Health(status="ok", version=_version())

    api = APIRouter(
        prefix="/api", dependencies=[Depends(require_api_key)], responses=responses(401)
    )
    for module in (flows, runs, connections, catalog, nodes):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(trigger_urls.router)
    app.include_router(vendor_webhooks.router)


def _version() -> str:
    try:
        return metadata.version("latchflow")
    except metadata.PackageNotFoundError:
        return "0"
