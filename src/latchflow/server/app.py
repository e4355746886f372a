"""The FastAPI application: trigger URLs, vendor webhooks, the management API and /healthz."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from starlette.types import Receive, Scope, Send

from latchflow.backends import choose
from latchflow.backends.base import DEFAULT_WORKERS
from latchflow.backends.embedded.clock import Scheduler
from latchflow.backends.nodes import NodeHeartbeat, new_node_id
from latchflow.engine import Engine
from latchflow.server import gate, trigger_urls, vendor_webhooks
from latchflow.server.api import access, audit, catalog, connections, flows, keys, nodes, runs
from latchflow.server.auth import require_api_key
from latchflow.server.errors import add_error_handlers, responses
from latchflow.server.openapi import operation_id, refine
from latchflow.server.responses import SafeJSONResponse
from latchflow.server.schemas import Health
from latchflow.server.state import DEFAULT_BODY_LIMIT, ServerState

log = logging.getLogger("latchflow.server")


class LatchflowApp(FastAPI):
    """FastAPI, behind two doors that open before its middleware and routing:

    - trigger URLs are answered straight from ASGI (``trigger_urls.answer``): they are the hot
      path, and the framework's layers cost as much as the handler;
    - management API requests pass the gate (``gate.admit``: key, then body) first.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.root_path:  # as FastAPI sets it, so the trigger URL sees the same scope
            scope["root_path"] = self.root_path
        state: ServerState = self.state.latchflow
        target = trigger_urls.trigger_url_parts(scope)
        if target is not None:
            await trigger_urls.answer(state, *target, scope, receive, send)
            return
        if gate.guarded(scope):
            admitted = await gate.admit(state, scope, receive, send)
            if admitted is None:
                return
            receive = admitted
        await super().__call__(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        """FastAPI's document, finished by ``refine`` for the installed plugins."""
        if self.openapi_schema is None:
            state: ServerState = self.state.latchflow
            refine(super().openapi(), state.engine.registry)
        return super().openapi()


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
        default_response_class=SafeJSONResponse,
        generate_unique_id_function=operation_id,
    )
    app.state.latchflow = state
    _add_routes(app)
    return app


def _add_routes(app: FastAPI) -> None:
    """Error handlers, /healthz, the management API (behind an API key) and the webhooks."""
    add_error_handlers(app)

    @app.get("/healthz", response_model=Health, tags=["health"], summary="Liveness")
    def healthz() -> Health:
        return Health(status="ok", version=_version())

    # the gate's refusals: a body that is not strict JSON, no or a wrong key, too large a body
    api = APIRouter(
        prefix="/api",
        dependencies=[Depends(require_api_key)],
        responses=responses(400, 401, 403, 413),
    )
    for module in (flows, runs, connections, catalog, nodes, keys, audit, access):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(trigger_urls.router)
    app.include_router(vendor_webhooks.router)


def _version() -> str:
    try:
        return metadata.version("latchflow")
    except metadata.PackageNotFoundError:
        return "0"
