"""A simulator of LivionKey API V1: JWT login, devices, keys, contracts, legacy push notifications.

Simulator-only routes (besides the shared ``/_sim/clock``, ``/_sim/faults``, ``/_sim/webhooks``):

- ``GET /_sim/v1/state`` — every key and contract
- ``GET /_sim/v1/stats`` — logins and 401s so far (tests count re-logins)
- ``POST /_sim/v1/revoke-tokens`` — every token issued so far is refused from now on (401)
- ``POST /_sim/v1/push {"url", "headerName", "headerValue"}`` — where legacy push goes, with
  the custom header the integrator asked Livion to send
- ``POST /_sim/v1/enter-pincode {"deviceId", "pincode"}`` — a guest types a pincode at the
  automat: the key is fetched (code-entered + key-status pushes)
- ``POST /_sim/v1/return-key {"deviceId", "keyId"}`` — the key is put back (key-returned)
- moving ``/_sim/clock`` past a contract's end with its key out pushes ``key-not-returned``

Pushes go out after the call answers and are retried on 5xx and 429 only (V1 §7).
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any

import jwt
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from latchflow.simulation import SimState, add_sim_controls
from latchflow_livionkey.assumptions import (
    V1_ERROR_CONTENT_TYPE,
    V1_LOGIN_LIMIT_PER_MINUTE,
    V1_PINCODE_DIGITS,
    V1_REFUSALS,
    V1_TOKEN_LIFETIME_SECONDS,
    V1_WEBHOOK_ATTEMPTS,
)
from latchflow_livionkey.sim_common import (
    is_pincode,
    iso,
    json_body,
    object_id,
    overlaps,
    parse_time,
    pincode,
)

DEMO_EMAIL = "demo@livionkey.example"
DEMO_PASSWORD = "demo-password-v1"  # noqa: S105 - the simulator's published demo credential
LOCKERS = {"key30": 30, "keyX": 1}
CONTRACT_TYPES = ("default", "fetch", "return")


class Refusal(Exception):
    """A V1 error answer: plain-text message (V1 §8), status code."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class V1Sim:
    state: SimState = field(default_factory=lambda: SimState(webhook_retries=V1_WEBHOOK_ATTEMPTS))
    accounts: dict[str, str] = field(default_factory=lambda: {DEMO_EMAIL: DEMO_PASSWORD})
    jwt_secret: str = field(default_factory=lambda: secrets.token_hex(32))
    logins: int = 0
    unauthorized: int = 0
    login_times: deque[datetime] = field(default_factory=deque)
    revoked_before: float = 0.0
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    statuses: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    contracts: dict[str, dict[str, Any]] = field(default_factory=dict)
    push_headers: dict[str, str] = field(default_factory=dict)

    def now(self) -> datetime:
        return self.state.clock.now()

    # --- seed data ---------------------------------------------------------------------------
    def seed(self) -> None:
        for device_id, product, name in (
            ("000111", "key30", "Lobby key automat"),
            ("000222", "keyX", "Back office key box"),
        ):
            self.devices[device_id] = {
                "id": device_id,
                "product": product,
                "name": name,
                "tag": f"livion/demo/{device_id}",
                "connectionState": "connected",
            }
        for device_id, key_id, name, index, shared in (
            ("000111", "apt-101", "Apartment 101", "0", False),
            ("000111", "apt-102", "Apartment 102", "1", False),
            ("000111", "sauna", "Sauna (shared)", "2", True),
            ("000222", "office-1", "Office", "0", False),
        ):
            self.add_key(device_id, key_id, name, index, shared, None)

    def add_key(
        self, device_id: str, key_id: str, name: str, index: str, shared: bool, code: str | None
    ) -> None:
        self.keys[(device_id, key_id)] = {
            "keyId": key_id,
            "deviceId": device_id,
            "keyName": name,
            "keyCode": code,
            "lockerIndex": index,
            "shared": shared,
            "backupCodes": [pincode(set(), 8) for _ in range(2)],
            "inside": True,
        }
        self.record_status(device_id, key_id, "key-added")

    def record_status(self, device_id: str, key_id: str, action: str) -> dict[str, Any]:
        key = self.keys[(device_id, key_id)]
        record: dict[str, Any] = {
            "id": object_id(),
            "timestamp": iso(self.now()),
            "tag": [self.devices[device_id]["tag"]],
            "source": "device",
            "sourceId": device_id,
            "action": action,
            "data": {
                "before": None,
                "after": {"lockerIndex": key["lockerIndex"], "keyId": key_id},
                "text": "",
                "value": "",
                "sourceTime": iso(self.now()),
                "attachment": [],
            },
        }
        self.statuses.setdefault((device_id, key_id), []).append(record)
        return record

    # --- auth --------------------------------------------------------------------------------
    def login(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not body.get("email"):
            raise Refusal("Missing email from parameters")
        if not body.get("password"):
            raise Refusal("Missing password from parameters")
        now = self.now()
        while self.login_times and now - self.login_times[0] > timedelta(minutes=1):
            self.login_times.popleft()
        if len(self.login_times) >= V1_LOGIN_LIMIT_PER_MINUTE:
            raise Refusal("Too many login attempts, try again later", 429)
        self.login_times.append(now)
        if self.accounts.get(body["email"]) != body["password"]:
            raise Refusal("Firebase: Error (auth/invalid-login-credentials).")
        self.logins += 1
        expires = now + timedelta(seconds=V1_TOKEN_LIFETIME_SECONDS)
        token = jwt.encode(
            {
                "sub": body["email"],
                "iat": now.timestamp(),
                "exp": int(expires.timestamp()),
                "jti": secrets.token_hex(8),
            },
            self.jwt_secret,
            algorithm="HS256",
        )
        return {"token": token, "expirationTime": format_datetime(expires, usegmt=True)}

    def authorize(self, request: Request) -> str:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer ") or not header[7:].strip():
            raise Refusal("No token provided.", 403)
        try:
            claims = jwt.decode(
                header[7:].strip(),
                self.jwt_secret,
                algorithms=["HS256"],
                options={"verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            claims = None
        now = self.now().timestamp()
        if claims is None or claims["exp"] <= now or claims["iat"] < self.revoked_before:
            self.unauthorized += 1
            raise Refusal(f"GraphQL - {iso(self.now())} - {object_id()} - not authorized", 401)
        return str(claims["sub"])

    # --- lookups -----------------------------------------------------------------------------
    def device(self, device_id: str) -> dict[str, Any]:
        if device_id not in self.devices:
            raise Refusal("Device not found")
        return self.devices[device_id]

    def find_key(self, key_id: str, device_id: str | None) -> dict[str, Any]:
        for (dev, kid), key in self.keys.items():
            if kid == key_id and (device_id is None or dev == device_id):
                return key
        raise Refusal("no such key")

    def lockers(self, device_id: str) -> list[dict[str, Any]]:
        device = self.device(device_id)
        by_index = {k["lockerIndex"]: k for (d, _), k in self.keys.items() if d == device_id}
        result = []
        for index in range(LOCKERS[device["product"]]):
            key = by_index.get(str(index))
            inside = bool(key and key["inside"])
            result.append(
                {
                    "lockerIndex": str(index),
                    "state": "lockerWithKey" if inside else "lockerEmpty",
                    "isKeyInside": inside,
                    "key": {"id": key["keyId"], "name": key["keyName"]} if key else None,
                }
            )
        return result

    def device_view(self, device: dict[str, Any], lockers: bool, shape: str) -> dict[str, Any]:
        view: dict[str, Any] = {
            "name": device["name"],
            "tag": device["tag"],
            "connectionState": device["connectionState"],
            "synced": {"timestamp": iso(self.now()), "isSynced": True},
        }
        if shape == "list":
            view = {"deviceId": device["id"], **view}
        else:
            view = {"id": device["id"], "product": device["product"], **view}
        if lockers:
            view["lockers"] = self.lockers(device["id"])
        return view

    def contract_view(self, contract: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in contract.items() if not k.startswith("_")}

    def key_view(self, key: dict[str, Any], with_status: bool) -> dict[str, Any]:
        contracts = [
            self.contract_view(c)
            for c in self.contracts.values()
            if any(d["id"] == key["deviceId"] and d["keyId"] == key["keyId"] for d in c["devices"])
        ]
        if with_status:
            latest = self.statuses[(key["deviceId"], key["keyId"])][-1]
            for contract in contracts:
                contract["keyStatus"] = {
                    "action": latest["action"],
                    "timestamp": latest["timestamp"],
                }
        view = {k: v for k, v in key.items() if k != "inside"}
        view["lockerIndex"] = int(key["lockerIndex"])
        return {**view, "contracts": contracts}

    # --- contracts ---------------------------------------------------------------------------
    def check_devices(self, devices: Any) -> list[dict[str, str]]:
        if not isinstance(devices, list) or not devices:
            raise Refusal("No devices")
        result = []
        for item in devices:
            if not isinstance(item, dict) or not item.get("id"):
                raise Refusal("Missing deviceId from parameters")
            if not item.get("keyId"):
                raise Refusal("Missing keyId from parameters")
            self.device(str(item["id"]))
            if (str(item["id"]), str(item["keyId"])) not in self.keys:
                raise Refusal("KeyId not found")
            result.append({"id": str(item["id"]), "keyId": str(item["keyId"])})
        return result

    def check_times(
        self, start: datetime, end: datetime | None, devices: list[dict[str, str]], skip: str | None
    ) -> None:
        if end is not None and end <= start:
            raise Refusal("Start time should be before End time")
        for device in devices:
            if self.keys[(device["id"], device["keyId"])]["shared"]:
                continue
            for other in self.contracts.values():
                if other["id"] == skip or device not in other["devices"]:
                    continue
                other_start = parse_time(other["start"])
                assert other_start is not None
                if overlaps(start, end, other_start, parse_time(other["end"])):
                    raise Refusal("Overlapping contract existing")

    def checked_time(self, body: dict[str, Any], name: str) -> datetime | None:
        """``body[name]`` as a time (None when absent); refused without a time zone."""
        if body.get(name) is None:
            return None
        moment = parse_time(body[name])
        if moment is None:
            raise Refusal(V1_REFUSALS["bad_time"])
        return moment

    def check_pincode(self, code: Any, used: set[str]) -> None:
        if not is_pincode(code, V1_PINCODE_DIGITS):
            raise Refusal(V1_REFUSALS["bad_pincode"])
        if code in used:
            raise Refusal("Pincode already used in existing contracts")

    def used_pincodes(self, devices: list[dict[str, str]], skip: str | None) -> set[str]:
        ids = {d["id"] for d in devices}
        return {
            c["pincode"]
            for c in self.contracts.values()
            if c["id"] != skip and ids & {d["id"] for d in c["devices"]}
        }

    def create_contract(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not body:
            raise Refusal("Missing contract parameters")
        devices = self.check_devices(body.get("devices"))
        for name in ("contractId", "start", "person", "contacts"):
            if not body.get(name):
                raise Refusal(f"Missing {name} from parameters")
        perm = bool(body.get("perm"))
        if perm and body.get("end") is not None:
            raise Refusal(V1_REFUSALS["perm_with_end"])
        if not perm and not body.get("end"):
            raise Refusal("Missing end from parameters")
        if body.get("type") not in (None, *CONTRACT_TYPES):
            raise Refusal(V1_REFUSALS["bad_type"])
        if any(c["contractId"] == body["contractId"] for c in self.contracts.values()):
            raise Refusal("ContractId already in use")
        start, end = self.checked_time(body, "start"), self.checked_time(body, "end")
        assert start is not None
        if start < self.now():
            raise Refusal("Start time should be in the future")
        self.check_times(start, end, devices, None)
        used = self.used_pincodes(devices, None)
        code = body.get("pincode")
        if code is not None:
            self.check_pincode(code, used)
        contract = {
            "id": object_id(),
            "contractId": str(body["contractId"]),
            "keyId": devices[0]["keyId"],
            "devices": devices,
            "pincode": str(code or pincode(used, V1_PINCODE_DIGITS)),
            "start": iso(start),
            "end": iso(end),
            "perm": perm,
            "person": body["person"],
            "contacts": body["contacts"],
            "freeText": body.get("freeText"),
            "type": body.get("type") or "default",
            "tag": [self.devices[devices[0]["id"]]["tag"]],
            "recurrent": [],
            "_fetched": False,
            "_overdue_sent": False,
        }
        self.contracts[contract["id"]] = contract
        return contract

    def update_contract(self, contract_id: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not body:
            raise Refusal("Missing contract parameters")
        devices = self.check_devices(body.get("devices"))
        contract = self.contracts.get(contract_id)
        if contract is None:
            raise Refusal("Contract not found")
        perm = bool(body.get("perm", contract["perm"]))
        if perm and body.get("end") is not None:
            raise Refusal(V1_REFUSALS["perm_with_end"])
        start = self.checked_time(body, "start") or parse_time(contract["start"])
        end = None if perm else self.checked_time(body, "end") or parse_time(contract["end"])
        assert start is not None
        if body.get("start") and start < self.now():
            raise Refusal("Start time should be in the future")
        self.check_times(start, end, devices, contract_id)
        code = body.get("pincode")
        if code is not None:
            self.check_pincode(code, self.used_pincodes(devices, contract_id))
        contract.update(
            devices=devices,
            keyId=devices[0]["keyId"],
            start=iso(start),
            end=iso(end),
            perm=perm,
            _overdue_sent=False,
        )
        for name in ("person", "contacts", "freeText", "pincode"):
            if body.get(name) is not None:
                contract[name] = body[name]
        return contract

    # --- push notifications ------------------------------------------------------------------
    async def push(self, body: dict[str, Any]) -> None:
        """Sent after the call answers; retried on 5xx and 429 only (V1 §7)."""
        await self.state.deliver(
            body,
            dict(self.push_headers),
            accepted=lambda status: status < 500 and status != 429,
            ensure_ascii=False,
        )

    async def push_contract(self, contract: dict[str, Any]) -> None:
        for device in contract["devices"]:
            await self.push(
                {
                    "type": contract["type"],
                    "pincode": contract["pincode"],
                    "contractId": contract["contractId"],
                    "contractObjectId": contract["id"],
                    "time": iso(self.now()),
                    "start": contract["start"],
                    "end": contract["end"],
                    "deviceId": device["id"],
                    "keyId": device["keyId"],
                    "tag": self.devices[device["id"]]["tag"],
                }
            )

    async def key_event(
        self, device_id: str, key_id: str, state: str, contract: dict[str, Any] | None
    ) -> None:
        record = self.record_status(device_id, key_id, state)
        await self.push(
            {
                "type": "key-status",
                "deviceId": device_id,
                "lockerIndex": self.keys[(device_id, key_id)]["lockerIndex"],
                "keyId": key_id,
                "contractId": contract["contractId"] if contract else None,
                "contractObjectId": contract["id"] if contract else None,
                "state": state,
                "time": record["timestamp"],
                "tag": self.devices[device_id]["tag"],
            }
        )

    async def on_clock_change(self) -> None:
        now = self.now()
        for contract in list(self.contracts.values()):
            end = parse_time(contract["end"])
            if end is None or end > now or contract["_overdue_sent"]:
                continue
            for device in contract["devices"]:
                key = self.keys.get((device["id"], device["keyId"]))
                if key is not None and contract["_fetched"] and not key["inside"]:
                    contract["_overdue_sent"] = True
                    await self.key_event(
                        device["id"], device["keyId"], "key-not-returned", contract
                    )


def text(message: str, status: int = 200) -> Response:
    return Response(message, status_code=status, media_type=V1_ERROR_CONTENT_TYPE)


def create_app() -> FastAPI:
    """A fresh V1 simulator with the demo account, two devices and four keys."""
    from latchflow_livionkey.sim_v1_routes import add_routes

    sim = V1Sim()
    sim.seed()
    app = FastAPI(title="LivionKey API V1 simulator")
    app.state.sim = sim
    app.state.on_clock_change = sim.on_clock_change
    add_sim_controls(app, sim.state)

    @app.exception_handler(Refusal)
    async def refused(request: Request, exc: Refusal) -> Response:
        if exc.status == 403:
            return JSONResponse({"success": False, "message": exc.message}, status_code=403)
        headers = {"retry-after": "60"} if exc.status == 429 else None
        response = text(exc.message, exc.status)
        if headers:
            response.headers.update(headers)
        return response

    def user(request: Request) -> str:
        return sim.authorize(request)

    add_routes(app, sim, Depends(user))

    @app.post("/auth/login")
    async def login(request: Request) -> dict[str, Any]:
        return sim.login(await json_body(request))

    return app
