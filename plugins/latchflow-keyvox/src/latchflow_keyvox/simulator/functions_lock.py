"""Simulated Smart Lock functions: units, lock PINs, unlock/lock, status, history, events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from latchflow_keyvox import assumptions as A
from latchflow_keyvox.simulator.parsing import choice, maybe, maybe_unix, page, text, unix
from latchflow_keyvox.simulator.world import SimError, World

Handler = Callable[[World, dict[str, Any]], Awaitable[Any]]


async def get_units(world: World, body: dict[str, Any]) -> Any:
    return [world.unit_view(u) for u in world.units.values()]


def _pins_of_unit(world: World, unit_id: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    s, e = maybe_unix(body, "sTime"), maybe_unix(body, "eTime")
    pins = [
        p
        for p in world.pins.values()
        if p.unitId == unit_id
        and not p.disabled
        and (s is None or p.eTime > s)
        and (e is None or p.sTime < e)
    ]
    return [p.view() for p in sorted(pins, key=lambda p: (p.sTime, p.pinId))]


async def get_unit_pin_list(world: World, body: dict[str, Any]) -> Any:
    unit = world.unit(text(body, "unitId"))
    return page(_pins_of_unit(world, unit["unitId"], body), body, A.PIN_LIST_KEY)


async def get_lock_pin_list(world: World, body: dict[str, Any]) -> Any:
    lock = world.lock(text(body, "lockId"))
    return page(_pins_of_unit(world, lock.unitId, body), body, A.PIN_LIST_KEY)


async def create_lock_pin(world: World, body: dict[str, Any]) -> Any:
    unit = world.unit(text(body, "unitId"))
    pin_type = choice(body, "pinType", ("1", "2", "3"), "1")  # online, offline, no PIN
    pin = world.new_pin(
        {"unitId": unit["unitId"]},
        unix(body, "sTime"),
        unix(body, "eTime"),
        maybe(body, "pinCode"),
        text(body, "targetName", ""),
    )
    pin.pinType = pin_type
    view = pin.view()
    return {k: view[k] for k in ("pinId", "pinCode", "qrCode", "shortQrUrl", "sTime", "eTime")}


async def change_lock_pin(world: World, body: dict[str, Any], locker: bool = False) -> Any:
    pin = world.pin(text(body, "pinId"), locker=locker)
    if pin.disabled:
        raise SimError(A.E_PARAM, f"pin {pin.pinId} is disabled")
    s = maybe_unix(body, "sTime") or pin.sTime
    e = maybe_unix(body, "eTime") or pin.eTime
    code = maybe(body, "pinCode") or pin.pinCode
    world.check_window(s, e)
    where = {"deviceId": pin.deviceId, "boxNum": pin.boxNum} if locker else {"unitId": pin.unitId}
    world.check_pin_code(code, where, s, e, skip=pin.pinId)
    pin.sTime, pin.eTime, pin.pinCode = s, e, code
    pin.targetName = text(body, "targetName", pin.targetName)
    pin.createTime = world.now()  # a change is delivered again in the next batch
    return pin.view()


async def disable_lock_pin(world: World, body: dict[str, Any], locker: bool = False) -> Any:
    pin = world.pin(text(body, "pinId"), locker=locker)
    pin.disabled = True
    return None


async def get_lock_pin_status(world: World, body: dict[str, Any]) -> Any:
    pin = world.pin(text(body, "pinId"))
    status = "40" if pin.disabled else pin.delivery_status(world.now())
    return {"pinId": pin.pinId, "pinCode": pin.pinCode, "status": status}


async def unlock(world: World, body: dict[str, Any]) -> Any:
    lock = world.lock(text(body, "lockId"))
    flag = choice(body, "flag", ("1", "0"), "1")  # unlock, lock
    if not lock.online:
        raise SimError(A.E_LOCK_OFFLINE, "cannot connect to the lock (battery or Wi-Fi)")
    event = world.record(lock, flag == "1", "9", "API")
    await world.sim.deliver(event)
    return None


async def get_lock_status(world: World, body: dict[str, Any]) -> Any:
    lock = world.lock(text(body, "lockId"))
    return {
        "lockId": lock.lockId,
        "lockType": lock.lockType,
        "pinType": "1",
        "battery": lock.battery,
        "wifi": "1" if lock.online else "0",
        "status": "1" if lock.locked else "0",
        "reportTime": str(world.now()),
        "moduleId": lock.lockId[-8:],
    }


async def get_lock_history(world: World, body: dict[str, Any]) -> Any:
    lock = world.lock(text(body, "lockId"))
    return page(lock.history, body, A.HISTORY_LIST_KEY)


async def search_lock_events(world: World, body: dict[str, Any]) -> Any:
    lock_id, unit_id = maybe(body, "lockId"), maybe(body, "unitId")
    s, e, etype = maybe_unix(body, "sTime"), maybe_unix(body, "eTime"), maybe(body, "etype")
    found = []
    for lock in world.locks.values():
        if (lock_id and lock.lockId != lock_id) or (unit_id and lock.unitId != unit_id):
            continue
        for entry in lock.history:
            t = int(entry["etime"])
            if (s is None or t >= s) and (e is None or t < e) and etype in (None, entry["etype"]):
                found.append({"lockId": lock.lockId, "unitId": lock.unitId, **entry})
    if lock_id and lock_id not in world.locks:
        raise SimError(A.E_NOT_FOUND, f"lock {lock_id} does not exist")
    found.sort(key=lambda x: int(x["etime"]), reverse=True)
    return page(found, body, A.EVENT_LIST_KEY)


async def issue_lock_key(world: World, body: dict[str, Any]) -> Any:
    method = text(body, "notificationMethod", "")
    details = body.get("notificationDetails") or {}
    if method and method not in ("email", "sms"):
        raise SimError(A.E_PARAM, "notificationMethod must be email or sms")
    if method == "email" and "@" not in str(details.get("email", "")):
        raise SimError(A.E_PARAM, "notificationDetails.email is required for email")
    if method == "sms" and not str(details.get("phone", "")):
        raise SimError(A.E_PARAM, "notificationDetails.phone is required for sms")
    created = await create_lock_pin(world, body)
    return {**created, "notificationMethod": method, "notified": bool(method)}


FUNCTIONS: dict[str, Handler] = {
    "getUnits": get_units,
    "getUnitPinList": get_unit_pin_list,
    "getLockPinList": get_lock_pin_list,
    "createLockPin": create_lock_pin,
    "changeLockPin": change_lock_pin,
    "disableLockPin": disable_lock_pin,
    "getLockPinStatus": get_lock_pin_status,
    "unlock": unlock,
    "getLockStatus": get_lock_status,
    "getLockHistory": get_lock_history,
    "locks/events": search_lock_events,
    "issueLockKey": issue_lock_key,
}
