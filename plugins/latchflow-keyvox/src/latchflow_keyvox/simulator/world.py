"""The simulated KEYVOX organization: places, units, locks, PINs, lockers, cards, bookings.

Business rules live here (PIN length, time windows, delivery batches, booking states); the
HTTP layer (``functions.py``) only parses bodies and shapes answers.
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass, field
from typing import Any

from latchflow.simulation import SimState
from latchflow_keyvox import assumptions as A


class SimError(Exception):
    """A KEYVOX business error: answered as an envelope with ``code`` and ``msg``."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg


@dataclass
class Pin:
    pinId: str
    pinCode: str
    sTime: int
    eTime: int
    targetName: str
    createTime: int
    unitId: str = ""
    deviceId: str = ""
    boxNum: str = ""
    pinType: str = "1"
    qrCode: str = ""
    shortQrUrl: str = ""
    disabled: bool = False
    mode: str = "0"
    orderId: str = ""
    """The reservation KEYVOX issued it for, if any."""

    def delivered_at(self) -> int:
        """When the 2-minute batch pushes it to the lock: the tick after it becomes eligible."""
        eligible = max(self.createTime, self.sTime - A.DELIVERY_WINDOW_SECONDS)
        return (eligible // A.DELIVERY_BATCH_SECONDS + 1) * A.DELIVERY_BATCH_SECONDS

    def delivery_status(self, now: int) -> str:
        return "30" if now >= self.delivered_at() else A.DELIVERY_WAITING

    def view(self) -> dict[str, Any]:
        out = {
            "pinId": self.pinId,
            "pinCode": self.pinCode,
            "qrCode": self.qrCode,
            "shortQrUrl": self.shortQrUrl,
            "sTime": str(self.sTime),
            "eTime": str(self.eTime),
            "targetName": self.targetName,
            "pinType": self.pinType,
            "pinStatus": "4" if self.disabled else "1",
        }
        if self.deviceId:
            out.update(deviceId=self.deviceId, boxNum=self.boxNum)
        else:
            out["unitId"] = self.unitId
        return out


@dataclass
class Lock:
    lockId: str
    unitId: str
    online: bool = True
    locked: bool = True
    battery: str = "90"
    lockType: str = "BCL-BX1"
    history: list[dict[str, str]] = field(default_factory=list)  # newest first


@dataclass
class Box:
    boxNum: str
    boxName: str
    boxSize: str
    color: str = "off"
    doorOpen: bool = False
    enabled: bool = True


@dataclass
class Locker:
    deviceId: str
    deviceName: str
    boxes: dict[str, Box]
    enabled: bool = True


@dataclass
class Card:
    cardId: str
    cardCode: str
    cardName: str
    sTime: int
    eTime: int
    createTime: int
    lockId: str = ""
    deviceId: str = ""
    boxNum: str = ""
    disabled: bool = False

    def view(self, now: int) -> dict[str, Any]:
        out = {
            "cardId": self.cardId,
            "cardCode": self.cardCode,
            "cardName": self.cardName,
            "sTime": str(self.sTime),
            "eTime": str(self.eTime),
            "state": "disabled" if self.disabled else "valid",
            "status": "30" if now >= self.createTime + A.DELIVERY_BATCH_SECONDS else "20",
        }
        if self.deviceId:
            out.update(deviceId=self.deviceId, boxNum=self.boxNum)
        else:
            out["lockId"] = self.lockId
        return out


def _direction_value(direction: str) -> str:
    return next(v for v, d in A.HISTORY_DIRECTIONS.items() if d == direction)


def _rand(chars: str, n: int, rng: random.Random) -> str:
    return "".join(rng.choice(chars) for _ in range(n))


class World:
    """All state of one simulator instance, with its shared controls in ``sim``."""

    def __init__(self, sim: SimState | None = None, seed: int | None = None) -> None:
        self.sim = sim or SimState()
        self.rng = random.Random(seed)
        self.keys: dict[str, str] = {A.SIM_DEMO_API_KEY: A.SIM_DEMO_API_SECRET}
        self.org_id = self.object_id()
        self.places: dict[str, dict[str, Any]] = {}
        self.units: dict[str, dict[str, Any]] = {}
        self.locks: dict[str, Lock] = {}
        self.pins: dict[str, Pin] = {}
        self.lockers: dict[str, Locker] = {}
        self.cards: dict[str, Card] = {}
        self.plans: dict[str, dict[str, Any]] = {}
        self.bookings: dict[str, dict[str, Any]] = {}

    # ids and time -------------------------------------------------------------------------
    def now(self) -> int:
        return int(self.sim.clock.now().timestamp())

    def object_id(self) -> str:
        return _rand("0123456789abcdef", 24, self.rng)

    def lock_id(self) -> str:
        return _rand(string.ascii_uppercase + string.digits, 16, self.rng)

    def order_id(self) -> str:
        return _rand(string.ascii_uppercase + string.digits, 9, self.rng)

    # lookups ------------------------------------------------------------------------------
    def unit(self, unit_id: str) -> dict[str, Any]:
        if unit_id not in self.units:
            raise SimError(A.E_NOT_FOUND, f"unit {unit_id} does not exist")
        return self.units[unit_id]

    def lock(self, lock_id: str) -> Lock:
        if lock_id not in self.locks:
            raise SimError(A.E_NOT_FOUND, f"lock {lock_id} does not exist")
        return self.locks[lock_id]

    def pin(self, pin_id: str, locker: bool = False) -> Pin:
        pin = self.pins.get(pin_id)
        if pin is None or bool(pin.deviceId) != locker:
            raise SimError(A.E_NOT_FOUND, f"pin {pin_id} does not exist")
        return pin

    def box(self, device_id: str, box_num: str) -> tuple[Locker, Box]:
        locker = self.lockers.get(device_id)
        if locker is None:
            raise SimError(A.E_NOT_FOUND, f"locker {device_id} does not exist")
        if box_num not in locker.boxes:
            raise SimError(A.E_NOT_FOUND, f"box {box_num} does not exist on locker {device_id}")
        return locker, locker.boxes[box_num]

    def card(self, card_id: str, locker: bool = False) -> Card:
        card = self.cards.get(card_id)
        if card is None or bool(card.deviceId) != locker:
            raise SimError(A.E_NOT_FOUND, f"card {card_id} does not exist")
        return card

    def booking(self, order_id: str) -> dict[str, Any]:
        if order_id not in self.bookings:
            raise SimError(A.E_NOT_FOUND, f"booking {order_id} does not exist")
        return self.bookings[order_id]

    def place(self, place_id: str) -> dict[str, Any]:
        if place_id not in self.places:
            raise SimError(A.E_NOT_FOUND, f"place {place_id} does not exist")
        return self.places[place_id]

    # seeding ------------------------------------------------------------------------------
    def add_place(self, name: str, address: str = "", utc: int = 9) -> dict[str, Any]:
        place: dict[str, Any] = {
            "placeId": self.object_id(),
            "placeName": name,
            "placeType": "hotel",
            "placeAddress": address,
            "placeUtc": utc,
            "orgId": self.org_id,
        }
        self.places[place["placeId"]] = place
        return place

    def add_unit(
        self, place_id: str, name: str, locks: int = 1, place_type: str = "facility"
    ) -> dict[str, Any]:
        unit = {
            "unitId": self.object_id(),
            "unitName": name,
            "placeId": place_id,
            "placeName": self.place(place_id)["placeName"],
            "placeType": place_type,
            "unitType": None,
            "unitState": "I",
            "lockIds": [],
        }
        self.units[unit["unitId"]] = unit
        for _ in range(locks):
            lock = Lock(lockId=self.lock_id(), unitId=unit["unitId"])
            self.locks[lock.lockId] = lock
            unit["lockIds"].append(lock.lockId)
        return unit

    def add_locker(self, name: str, sizes: list[str]) -> Locker:
        device_id = ":".join(_rand("0123456789ABCDEF", 2, self.rng) for _ in range(6))
        boxes = {
            f"00-{i:02d}": Box(boxNum=f"00-{i:02d}", boxName=f"Box {i}", boxSize=size)
            for i, size in enumerate(sizes, start=1)
        }
        locker = Locker(deviceId=device_id, deviceName=name, boxes=boxes)
        self.lockers[device_id] = locker
        return locker

    def add_plan(self, place_id: str, name: str, unit_ids: list[str], price: int) -> dict[str, Any]:
        plan: dict[str, Any] = {
            "planId": self.object_id(),
            "placeId": place_id,
            "planName": name,
            "unitIds": unit_ids,
            "price": str(price),
        }
        self.plans[plan["planId"]] = plan
        return plan

    def seed_demo(self) -> dict[str, Any]:
        """A demo hotel with two rooms, an entrance, a locker bank and two room plans."""
        place = self.add_place("Demo Hotel Shibuya", "1-2-3 Shibuya, Tokyo")
        rooms = [self.add_unit(place["placeId"], f"Room {n}") for n in (101, 102)]
        entrance = self.add_unit(place["placeId"], "Entrance", locks=1)
        self.add_plan(place["placeId"], "Standard double", [r["unitId"] for r in rooms], 12000)
        self.add_plan(place["placeId"], "Whole floor", [entrance["unitId"]], 50000)
        self.add_locker("Lobby lockers", ["1", "1", "2", "2", "3", "3"])
        return self.summary()

    def summary(self) -> dict[str, Any]:
        return {
            "apiKey": A.SIM_DEMO_API_KEY,
            "places": list(self.places.values()),
            "units": [self.unit_view(u) for u in self.units.values()],
            "lockers": [
                {"deviceId": lk.deviceId, "deviceName": lk.deviceName, "boxes": list(lk.boxes)}
                for lk in self.lockers.values()
            ],
            "plans": list(self.plans.values()),
            "pins": [p.view() for p in self.pins.values()],
            "cards": [c.view(self.now()) for c in self.cards.values()],
            "bookings": [self.booking_record(b) for b in self.bookings.values()],
        }

    def unit_view(self, unit: dict[str, Any]) -> dict[str, Any]:
        return {
            **{k: v for k, v in unit.items() if k != "placeId"},
            "lockIds": ",".join(unit["lockIds"]),
        }

    # PINs ---------------------------------------------------------------------------------
    def check_window(self, s_time: int, e_time: int) -> None:
        if e_time <= s_time:
            raise SimError(A.E_PARAM, "eTime must be after sTime")
        if e_time <= self.now():
            raise SimError(A.E_PARAM, "eTime is in the past")

    def check_pin_code(
        self, code: str, where: dict[str, str], s: int, e: int, skip: str = ""
    ) -> None:
        if not re.match(A.PIN_PATTERN, code):
            raise SimError(A.E_PARAM, "pinCode must be 4 to 8 digits")
        if not A.REJECT_DUPLICATE_PIN:
            return
        for other in self.pins.values():
            same_place = all(getattr(other, k) == v for k, v in where.items())
            if (
                other.pinId != skip
                and same_place
                and not other.disabled
                and other.pinCode == code
                and other.sTime < e
                and s < other.eTime
            ):
                raise SimError(A.E_PARAM, f"pinCode {code} is already used in this time window")

    def unused_pin_code(self, where: dict[str, str], s: int, e: int) -> str:
        """A PIN KEYVOX makes up: never one already valid at the same place and time."""
        while True:
            code = _rand(string.digits, A.GENERATED_PIN_LENGTH, self.rng)
            try:
                self.check_pin_code(code, where, s, e)
            except SimError:
                continue
            return code

    def new_pin(self, where: dict[str, str], s: int, e: int, code: str | None, name: str) -> Pin:
        self.check_window(s, e)
        if code is None:
            code = self.unused_pin_code(where, s, e)
        self.check_pin_code(code, where, s, e)
        pin_id = self.object_id()
        pin = Pin(
            pinId=pin_id,
            unitId=where.get("unitId", ""),
            deviceId=where.get("deviceId", ""),
            boxNum=where.get("boxNum", ""),
            pinCode=code,
            sTime=s,
            eTime=e,
            targetName=name,
            createTime=self.now(),
            qrCode=_rand(string.ascii_letters + string.digits, 32, self.rng),
            shortQrUrl=f"https://kvx.sh/{_rand(string.ascii_letters + string.digits, 8, self.rng)}",
        )
        self.pins[pin_id] = pin
        return pin

    def valid_pin_for_lock(self, lock: Lock, code: str) -> Pin | None:
        now = self.now()
        for pin in self.pins.values():
            if (
                pin.unitId == lock.unitId
                and pin.pinCode == code
                and not pin.disabled
                and pin.sTime <= now < pin.eTime
                and pin.delivery_status(now) != A.DELIVERY_WAITING
            ):
                return pin
        return None

    # locks --------------------------------------------------------------------------------
    def record(
        self, lock: Lock, unlocked: bool, etype: str, user: str, pin_code: str = ""
    ) -> dict[str, Any]:
        """Add a history entry in KEYVOX's shape ({etime, etype, userName, value}: the PIN for
        a PIN entry, else the direction as in ``assumptions.HISTORY_DIRECTIONS``) and return
        the unlock-history webhook body for it."""
        lock.locked = not unlocked
        direction = "unlock" if unlocked else "lock"
        value = pin_code if etype == "1" else _direction_value(direction)
        entry = {"etime": str(self.now()), "etype": etype, "userName": user, "value": value}
        lock.history.insert(0, entry)
        unit = self.units[lock.unitId]
        data = {"lockId": lock.lockId, "unitId": unit["unitId"], "deviceName": unit["unitName"]}
        return {
            "event": direction,
            "eventTime": entry["etime"],
            "data": {**data, **{k: entry[k] for k in ("userName", "etype", "value")}},
        }

    # bookings -----------------------------------------------------------------------------
    def unit_free(self, unit_id: str, checkin: int, checkout: int, skip: str = "") -> bool:
        return not any(
            b["unitId"] == unit_id
            and b["orderId"] != skip
            and b["orderStateCode"] not in ("C", "B", "O")
            and int(b["checkin"]) < checkout
            and checkin < int(b["checkout"])
            for b in self.bookings.values()
        )

    def reservation_pins(self, booking: dict[str, Any]) -> list[Pin]:
        return [p for p in self.pins.values() if p.orderId == booking["orderId"]]

    def booking_record(self, booking: dict[str, Any]) -> dict[str, Any]:
        """A reservation as KEYVOX lists it, with its own PINs (``unitPinList``)."""
        now = self.now()
        pins = [
            {
                "pinId": pin.pinId,
                "pin": pin.pinCode,
                "qrShortUrl": pin.shortQrUrl,
                "pinStatus": (
                    A.RESERVATION_PIN_DELETED
                    if pin.disabled
                    else "1"
                    if pin.delivery_status(now) == A.DELIVERY_WAITING
                    else "2"
                ),
            }
            for pin in self.reservation_pins(booking)
        ]
        return {**booking, A.RESERVATION_PIN_LIST_KEY: pins}

    def booking_event(self, event: str, booking: dict[str, Any]) -> dict[str, Any]:
        """The reservation webhook body (§9 of the vendor facts); ``accessInfo`` lists the
        reservation's own active PINs."""
        unit = self.units.get(booking["unitId"], {})
        place = self.places.get(booking["placeId"], {})
        access = [
            {
                "deviceId": ",".join(self.units.get(pin.unitId, {}).get("lockIds", [])),
                "deviceName": self.units.get(pin.unitId, {}).get("unitName", ""),
                "pinCode": pin.pinCode,
                "qrCodeUrl": pin.shortQrUrl,
            }
            for pin in self.reservation_pins(booking)
            if not pin.disabled
        ]
        return {
            "event": event,
            "eventTime": booking["updateTime"],
            "data": {
                "orgId": self.org_id,
                "placeId": booking["placeId"],
                "unitId": booking["unitId"],
                "planId": booking.get("planId", ""),
                "reservationCode": booking["orderId"],
                "orderContact": booking["orderContact"],
                "contactTel": booking.get("contactTel", ""),
                "unitName": unit.get("unitName", ""),
                "checkinTime": booking["checkin"],
                "checkoutTime": booking["checkout"],
                "orderStateCode": booking["orderStateCode"],
                "locationName": place.get("placeName", ""),
                "locationAddress": place.get("placeAddress", ""),
                "otaType": booking.get("channelCode", "BACS"),
                "accessInfo": access,
            },
        }
