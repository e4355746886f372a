"""A simulator of Unloc's v2 Projects API and Integrators v1 API, with ``/_sim/`` controls.

Keys move through their states with the simulator clock (``POST /_sim/clock``), Create Keys
jobs finish after ``job_delay`` seconds of simulated time (``POST /_sim/settings``), and
``POST /_sim/locks/{lockId}/open`` sends access-event webhooks.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from latchflow.simulation import add_sim_controls
from latchflow_unloc.simulator.common import Problem
from latchflow_unloc.simulator.controls import add_unloc_controls
from latchflow_unloc.simulator.integrators import add_integrator_routes
from latchflow_unloc.simulator.model import UnlocWorld
from latchflow_unloc.simulator.v2 import add_v2_routes

__all__ = ["UnlocWorld", "create_app"]


def create_app(world: UnlocWorld | None = None) -> FastAPI:
    """A fresh simulator (its state is ``app.state.world``)."""
    world = world or UnlocWorld()
    app = FastAPI(title="Unloc API simulator")
    app.state.world = world

    @app.exception_handler(Problem)
    async def problem(request: Request, exc: Problem) -> JSONResponse:
        return exc.response()

    add_sim_controls(app, world.sim)
    add_unloc_controls(app, world)
    add_v2_routes(app, world)
    add_integrator_routes(app, world)
    return app
