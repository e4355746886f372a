"""The simulator's FastAPI app: signed KEYVOX functions under both prefixes, plus ``/_sim/``."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from latchflow.simulation import SimState, add_sim_controls, received_at
from latchflow_keyvox import assumptions as A
from latchflow_keyvox.simulator import functions_booking, functions_lock, functions_locker
from latchflow_keyvox.simulator.auth import verify_request
from latchflow_keyvox.simulator.controls import add_keyvox_controls
from latchflow_keyvox.simulator.world import SimError, World

FUNCTIONS = {
    **functions_lock.FUNCTIONS,
    **functions_locker.FUNCTIONS,
    **functions_booking.FUNCTIONS,
}


def envelope(code: str, msg: str, data: Any = None, status: int = 200) -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg, "data": data}, status_code=status)


def create_app(world: World | None = None, *, seed_demo: bool = True) -> FastAPI:
    """A fresh simulator; with ``seed_demo`` it starts with the demo hotel and locker bank."""
    world = world or World(SimState())
    if seed_demo and not world.units:
        world.seed_demo()
    app = FastAPI(title="KEYVOX simulator", docs_url="/_sim/docs", openapi_url="/_sim/openapi.json")
    app.state.world = world
    add_sim_controls(app, world.sim)
    add_keyvox_controls(app, world)

    async def call(request: Request, function: str) -> JSONResponse:
        body = await request.body()
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        path = raw_path.decode("latin-1").split("?", 1)[0]
        now = received_at(request) if A.SIM_SKEW_AGAINST_WALL_CLOCK else world.sim.clock.now()
        problem = verify_request(world.keys, path, request.headers, body, now)
        if problem is not None:
            return envelope(
                A.AUTH_ERROR_CODE, f"authentication failed: {problem}", status=A.AUTH_FAILED_STATUS
            )
        handler = FUNCTIONS.get(function)
        if handler is None:
            return envelope(A.E_PARAM, f"unknown function {function}", status=404)
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return envelope(A.E_PARAM, "body is not JSON")
        if not isinstance(payload, dict):
            return envelope(A.E_PARAM, "body must be a JSON object")
        try:
            data = await handler(world, payload)
        except SimError as exc:
            return envelope(exc.code, exc.msg)
        return envelope("0", "success", data)

    for prefix in A.SIM_PREFIXES:
        app.add_api_route(
            prefix + "/{function:path}", call, methods=["POST"], include_in_schema=False
        )
    return app
