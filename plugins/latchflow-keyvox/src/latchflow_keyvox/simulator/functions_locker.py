"""Simulated Smart Locker and IC Card functions."""

from __future__ import annotations

import re
from typing import Any

from latchflow_keyvox import assumptions as A
from latchflow_keyvox.simulator.functions_lock import Handler, change_lock_pin, disable_lock_pin
from latchflow_keyvox.simulator.parsing import choice, maybe, maybe_unix, page, text, unix
from latchflow_keyvox.simulator.world import Box, Card, Locker, Pin, SimError, World

CARD_CODE = re.compile(r"^[0-9A-Fa-f]{8,20}$")


def _box_busy(world: World, locker: Locker, box: Box, s: int, e: int) -> bool:
    return bool(_box_pins(world, locker, box, s, e))


def _box_pins(world: World, locker: Locker, box: Box, s: int, e: int) -> list[Pin]:
    return [
        p
        for p in world.pins.values()
        if p.deviceId == locker.deviceId
        and p.boxNum == box.boxNum
        and not p.disabled
        and p.sTime < e
        and s < p.eTime
    ]


def _box_view(world: World, locker: Locker, box: Box, s: int, e: int) -> dict[str, Any]:
    now = world.now()
    pins = [
        {k: p.view()[k] for k in ("pinId", "pinCode", "qrCode", "sTime", "eTime", "targetName")}
        for p in _box_pins(world, locker, box, s, e)
    ]
    return {
        "boxNum": box.boxNum,
        "boxName": box.boxName,
        "boxSize": box.boxSize,
        "color": box.color,
        "doorStatus": "1" if box.doorOpen else "0",
        "enabled": "1" if box.enabled else "0",
        "inUse": "1" if _box_busy(world, locker, box, now, now + 1) else "0",
        A.LOCKER_BOX_PIN_LIST_KEY: pins,
    }


async def get_lockers(world: World, body: dict[str, Any]) -> Any:
    return [{"deviceId": lk.deviceId, "deviceName": lk.deviceName} for lk in world.lockers.values()]


async def get_locker_status(world: World, body: dict[str, Any]) -> Any:
    """Each box with the PINs that overlap ``sTime``..``eTime`` (default: now)."""
    device_id = text(body, "deviceId")
    locker = world.lockers.get(device_id)
    if locker is None:
        raise SimError(A.E_NOT_FOUND, f"locker {device_id} does not exist")
    s = maybe_unix(body, "sTime") or world.now()
    e = maybe_unix(body, "eTime") or s + 1
    if e <= s:
        raise SimError(A.E_PARAM, "eTime must be after sTime")
    return {
        "deviceId": locker.deviceId,
        "deviceName": locker.deviceName,
        "status": "1" if locker.enabled else "0",
        "boxes": [_box_view(world, locker, b, s, e) for b in locker.boxes.values()],
    }


async def set_locker_status(world: World, body: dict[str, Any]) -> Any:
    status = text(body, "status")
    if status not in ("0", "1"):
        raise SimError(A.E_PARAM, "status must be 1 (in service) or 0 (out of service)")
    box_num = maybe(body, "boxNum")
    if box_num:
        _, box = world.box(text(body, "deviceId"), box_num)
        box.enabled = status == "1"
    else:
        locker = world.lockers.get(text(body, "deviceId"))
        if locker is None:
            raise SimError(A.E_NOT_FOUND, "locker does not exist")
        locker.enabled = status == "1"
    return await get_locker_status(world, {"deviceId": body["deviceId"]})


async def get_available_boxes(world: World, body: dict[str, Any]) -> Any:
    device_id = text(body, "deviceId")
    locker = world.lockers.get(device_id)
    if locker is None:
        raise SimError(A.E_NOT_FOUND, f"locker {device_id} does not exist")
    s, e = unix(body, "sTime"), unix(body, "eTime")
    if e <= s:
        raise SimError(A.E_PARAM, "eTime must be after sTime")
    size = maybe(body, "boxSize")
    if size is not None and size not in ("1", "2", "3"):
        raise SimError(A.E_PARAM, "boxSize must be 1 (small), 2 (medium) or 3 (large)")
    if not locker.enabled:
        return []
    return [
        {"boxNum": b.boxNum, "boxName": b.boxName, "boxSize": b.boxSize}
        for b in locker.boxes.values()
        if b.enabled and size in (None, b.boxSize) and not _box_busy(world, locker, b, s, e)
    ]


async def create_locker_pin(world: World, body: dict[str, Any]) -> Any:
    locker, box = world.box(text(body, "deviceId"), text(body, "boxNum"))
    s, e = unix(body, "sTime"), unix(body, "eTime")
    mode = choice(body, "mode", ("0", "1"), "0")  # repeat use, single use
    choice(body, "checkin", ("0", "1"), "0")
    choice(body, "reassign", ("0",), "0")
    if not (locker.enabled and box.enabled):
        raise SimError(A.E_PARAM, f"box {box.boxNum} is out of service")
    if e > s and _box_busy(world, locker, box, s, e):
        raise SimError(A.E_PARAM, f"box {box.boxNum} is not available in this time window")
    pin = world.new_pin(
        {"deviceId": locker.deviceId, "boxNum": box.boxNum},
        s,
        e,
        maybe(body, "pinCode"),
        text(body, "targetName", ""),
    )
    pin.mode = mode
    return {"pinId": pin.pinId, "pinCode": pin.pinCode, "qrCode": pin.qrCode}


async def change_locker_pin(world: World, body: dict[str, Any]) -> Any:
    return await change_lock_pin(world, body, locker=True)


async def disable_locker_pin(world: World, body: dict[str, Any]) -> Any:
    return await disable_lock_pin(world, body, locker=True)


async def unlock_locker(world: World, body: dict[str, Any]) -> Any:
    locker, box = world.box(text(body, "deviceId"), text(body, "boxNum"))
    if not locker.enabled:
        raise SimError(A.E_LOCK_OFFLINE, f"locker {locker.deviceId} is out of service")
    box.doorOpen = True
    return None


async def set_box_color(world: World, body: dict[str, Any]) -> Any:
    _, box = world.box(text(body, "deviceId"), text(body, "boxNum"))
    color = text(body, "color").lower()
    if color not in A.BOX_COLORS:
        raise SimError(A.E_PARAM, f"color must be one of {', '.join(A.BOX_COLORS)}")
    box.color = color
    return {"boxNum": box.boxNum, "color": box.color}


# IC cards -------------------------------------------------------------------------------
def _new_card(world: World, body: dict[str, Any], where: dict[str, str]) -> Card:
    code = text(body, "cardCode")
    if not CARD_CODE.match(code):
        raise SimError(A.E_PARAM, "cardCode must be 8 to 20 hexadecimal characters")
    s, e = unix(body, "sTime"), unix(body, "eTime")
    world.check_window(s, e)
    for other in world.cards.values():
        if (
            A.REJECT_DUPLICATE_CARD
            and other.cardCode.upper() == code.upper()
            and not other.disabled
            and all(getattr(other, k) == v for k, v in where.items())
        ):
            raise SimError(A.E_PARAM, f"card {code} is already registered here")
    card = Card(
        cardId=world.object_id(),
        cardCode=code.upper(),
        cardName=text(body, "cardName", ""),
        sTime=s,
        eTime=e,
        createTime=world.now(),
        lockId=where.get("lockId", ""),
        deviceId=where.get("deviceId", ""),
        boxNum=where.get("boxNum", ""),
    )
    world.cards[card.cardId] = card
    return card


async def set_card(world: World, body: dict[str, Any]) -> Any:
    lock = world.lock(text(body, "lockId"))
    return _new_card(world, body, {"lockId": lock.lockId}).view(world.now())


async def set_locker_card(world: World, body: dict[str, Any]) -> Any:
    locker, box = world.box(text(body, "deviceId"), text(body, "boxNum"))
    card = _new_card(world, body, {"deviceId": locker.deviceId, "boxNum": box.boxNum})
    return card.view(world.now())


async def _update(world: World, body: dict[str, Any], locker: bool) -> Any:
    card = world.card(text(body, "cardId"), locker=locker)
    if card.disabled:
        raise SimError(A.E_PARAM, f"card {card.cardId} is disabled")
    s = maybe_unix(body, "sTime") or card.sTime
    e = maybe_unix(body, "eTime") or card.eTime
    world.check_window(s, e)
    card.sTime, card.eTime = s, e
    card.cardName = text(body, "cardName", card.cardName)
    card.createTime = world.now()
    return card.view(world.now())


async def update_card(world: World, body: dict[str, Any]) -> Any:
    return await _update(world, body, locker=False)


async def update_locker_card(world: World, body: dict[str, Any]) -> Any:
    return await _update(world, body, locker=True)


async def disable_card(world: World, body: dict[str, Any]) -> Any:
    card_id = text(body, "cardId")
    if card_id not in world.cards:
        raise SimError(A.E_NOT_FOUND, f"card {card_id} does not exist")
    world.cards[card_id].disabled = True
    return None


async def get_card_status(world: World, body: dict[str, Any]) -> Any:
    card_id = text(body, "cardId")
    if card_id not in world.cards:
        raise SimError(A.E_NOT_FOUND, f"card {card_id} does not exist")
    return world.cards[card_id].view(world.now())


async def get_lock_card_list(world: World, body: dict[str, Any]) -> Any:
    lock = world.lock(text(body, "lockId"))
    cards = [c.view(world.now()) for c in world.cards.values() if c.lockId == lock.lockId]
    return page(cards, body, A.CARD_LIST_KEY)


FUNCTIONS: dict[str, Handler] = {
    "getLockers": get_lockers,
    "getLockerStatus": get_locker_status,
    "setLockerStatus": set_locker_status,
    "getAvailableBoxes": get_available_boxes,
    "createLockerPin": create_locker_pin,
    "changeLockerPin": change_locker_pin,
    "disableLockerPin": disable_locker_pin,
    "unlockLocker": unlock_locker,
    "setBoxColor": set_box_color,
    "setCard": set_card,
    "updateCard": update_card,
    "disableCard": disable_card,
    "getCardStatus": get_card_status,
    "getLockCardList": get_lock_card_list,
    "setLockerCard": set_locker_card,
    "updateLockerCard": update_locker_card,
}
