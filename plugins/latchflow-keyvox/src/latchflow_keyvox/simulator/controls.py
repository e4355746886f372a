"""KEYVOX-specific ``/_sim/`` routes: seed data, keypad entry, doors, locks, booking changes.

- ``GET /_sim/state`` · ``POST /_sim/seed`` {places, units, lockers, apiKeys}
- ``POST /_sim/keypad`` {lockId, pinCode} → opens the door if a delivered, valid PIN matches
- ``POST /_sim/door`` {lockId, action: unlock|lock, method: button|knob|app|auto, userName}
- ``POST /_sim/locks/{lockId}`` {online, battery}
- ``POST /_sim/bookings`` {unitId, checkin, checkout, orderContact, channelCode}: a booking
  arriving from a channel · ``POST /_sim/bookings/{orderId}`` {action: update|cancel|checkin|
  checkout, ...fields}
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request

from latchflow_keyvox import assumptions as A
from latchflow_keyvox.simulator import functions_booking as fb
from latchflow_keyvox.simulator.world import SimError, World

ETYPES = {"button": "5", "knob": "6", "app": "9", "auto": A.SIM_AUTO_LOCK_ETYPE}


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(400, "body must be JSON") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "body must be a JSON object")
    return body


def add_keyvox_controls(app: FastAPI, world: World) -> None:
    @app.exception_handler(SimError)
    async def sim_error(request: Request, exc: SimError) -> Any:
        from fastapi.responses import JSONResponse

        return JSONResponse({"code": exc.code, "msg": exc.msg}, status_code=400)

    @app.get("/_sim/state", tags=["simulator"])
    async def state() -> dict[str, Any]:
        return world.summary()

    @app.post("/_sim/seed", tags=["simulator"])
    async def seed(request: Request) -> dict[str, Any]:
        body = await _json(request)
        world.keys.update({str(k): str(v) for k, v in (body.get("apiKeys") or {}).items()})
        place_ids = [world.add_place(**p)["placeId"] for p in body.get("places") or []]
        default_place = place_ids[0] if place_ids else next(iter(world.places), "")
        for unit in body.get("units") or []:
            world.add_unit(
                unit.get("placeId", default_place),
                unit["name"],
                int(unit.get("locks", 1)),
                unit.get("placeType", "facility"),
            )
        for locker in body.get("lockers") or []:
            world.add_locker(locker["name"], [str(s) for s in locker.get("sizes", ["1"])])
        return world.summary()

    @app.post("/_sim/keypad", tags=["simulator"])
    async def keypad(request: Request) -> dict[str, Any]:
        body = await _json(request)
        lock = world.lock(str(body.get("lockId", "")))
        pin = world.valid_pin_for_lock(lock, str(body.get("pinCode", "")))
        if pin is None:
            return {"opened": False}
        event = world.record(lock, True, "1", pin.targetName, pin.pinCode)
        await world.sim.deliver(event)
        return {"opened": True, "pinId": pin.pinId, "event": event}

    @app.post("/_sim/door", tags=["simulator"])
    async def door(request: Request) -> dict[str, Any]:
        body = await _json(request)
        lock = world.lock(str(body.get("lockId", "")))
        action = body.get("action", "unlock")
        if action not in ("unlock", "lock"):
            raise HTTPException(400, "action must be unlock or lock")
        method = str(body.get("method", "knob"))
        if method not in ETYPES:
            raise HTTPException(400, f"method must be one of {', '.join(ETYPES)}")
        event = world.record(
            lock, action == "unlock", ETYPES[method], str(body.get("userName", ""))
        )
        await world.sim.deliver(event)
        return {"event": event}

    @app.post("/_sim/locks/{lock_id}", tags=["simulator"])
    async def set_lock(lock_id: str, request: Request) -> dict[str, Any]:
        body = await _json(request)
        lock = world.lock(lock_id)
        if "online" in body:
            lock.online = bool(body["online"])
        if "battery" in body:
            lock.battery = str(body["battery"])
        return {"lockId": lock.lockId, "online": lock.online, "battery": lock.battery}

    @app.post("/_sim/bookings", tags=["simulator"])
    async def channel_booking(request: Request) -> dict[str, Any]:
        body = await _json(request)
        unit = world.unit(str(body.get("unitId", "")))
        body = {"placeId": unit["placeId"], "channelCode": "GO", **body}
        return dict(await fb.create_booking(world, body))

    @app.post("/_sim/bookings/{order_id}", tags=["simulator"])
    async def change_booking(order_id: str, request: Request) -> dict[str, Any]:
        body = await _json(request)
        actions = {
            "update": fb.update_booking,
            "cancel": fb.cancel_booking,
            "checkin": fb.check_in,
            "checkout": fb.check_out,
        }
        handler = actions.get(str(body.get("action", "")))
        if handler is None:
            raise HTTPException(400, f"action must be one of {', '.join(actions)}")
        return dict(await handler(world, {**body, "orderId": order_id}))
