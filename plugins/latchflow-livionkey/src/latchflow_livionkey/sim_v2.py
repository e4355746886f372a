"""A simulator of LivionKey API V2: signed requests, iLOQ key contracts, automats, groups, webhooks.

The state, its views, the automat's side (pincodes entered, keys fetched and returned) and the
signed webhooks live here; the contract rules in ``sim_v2_contracts``; the routes in
``sim_v2_routes``. Simulator-only routes:

- ``GET /_sim/v2/state`` — every contract, group and key
- ``POST /_sim/v2/service-accounts {"name", "publicKeyPem"?}`` — register a service account's
  public key (without one, a key pair is generated and the private key returned once)
- ``POST /_sim/v2/webhook-subscriptions {"url"}`` — subscribe a URL to every event type; returns
  the ``whsec_`` signing secret
- ``POST /_sim/v2/enter-pincode {"automatId", "pincode"}`` — a guest types a pincode: the key is
  fetched (or, for a return contract, the return locker opens)
- ``POST /_sim/v2/return-key {"automatId", "keyId"}`` — a key is put back in an automat
- ``POST /_sim/v2/alarm {"deviceId", "alarmType", "state"}`` — an automat alarm
- moving ``/_sim/clock`` past a default contract's end sends ``key-not-returned`` /
  ``key-not-fetched``

Webhooks go out after the call answers, in raw UTF-8, and a delivery is tried as often as
LivionKey does (V2 §7), with the waits between attempts shortened.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from latchflow.simulation import SimState
from latchflow_livionkey import standard_webhooks
from latchflow_livionkey.assumptions import (
    V2_PAGE_LIMIT_MAX,
    V2_UNKNOWN_FIELD,
    V2_WEBHOOK_ATTEMPTS,
)
from latchflow_livionkey.sim_common import iso, parse_time

TYPE_NAMES = {1: "default", 2: "fetch", 3: "return"}
LOCKERS_PER_AUTOMAT = 8
WEBHOOK_RETRY_DELAY = 0.05
"""Seconds between delivery attempts, growing per attempt: V2 §7's 5 s ... 30 min, shortened."""


class NestError(Exception):
    """An error answer in the NestJS shape (V2 §8 "Error body shape"); validation errors carry
    a list of messages."""

    NAMES = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 409: "Conflict"}

    def __init__(self, status: int, message: str | list[str]) -> None:
        super().__init__(message if isinstance(message, str) else "; ".join(message))
        self.status = status
        self.message = message

    def body(self) -> dict[str, Any]:
        return {
            "statusCode": self.status,
            "message": self.message,
            "error": self.NAMES.get(self.status, "Error"),
        }


def refuse_unknown(body: dict[str, Any], allowed: tuple[str, ...], parent: str = "") -> None:
    """400 with NestJS's whitelist message for each field the API does not know."""
    prefix = f"{parent}." if parent else ""
    unknown = [prefix + V2_UNKNOWN_FIELD.format(name) for name in body if name not in allowed]
    if unknown:
        raise NestError(400, unknown)


def page(items: list[Any], after: str | None, limit: int | None) -> dict[str, Any]:
    """Offset pagination (V2 §8 "after cursor semantics")."""
    size = 20 if limit is None else limit
    if not 1 <= size <= V2_PAGE_LIMIT_MAX:
        raise NestError(400, f"limit must be between 1 and {V2_PAGE_LIMIT_MAX}")
    try:
        offset = int(after or 0)
    except ValueError as exc:
        raise NestError(400, "after must be a number of items to skip") from exc
    return {
        "after": str(offset),
        "limit": size,
        "hasNext": offset + size < len(items),
        "data": items[offset : offset + size],
    }


@dataclass
class V2Sim:
    state: SimState = field(
        default_factory=lambda: SimState(
            webhook_retries=V2_WEBHOOK_ATTEMPTS, webhook_retry_delay=WEBHOOK_RETRY_DELAY
        )
    )
    accounts: dict[str, rsa.RSAPublicKey] = field(default_factory=dict)
    webhook_secret: str = field(
        default_factory=lambda: "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    )
    org_id: str = "org-demo"
    automats: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    access_rights: list[dict[str, Any]] = field(default_factory=list)
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    contracts: dict[str, dict[str, Any]] = field(default_factory=dict)
    proximity: dict[str, str] = field(default_factory=dict)

    def now(self) -> datetime:
        return self.state.clock.now()

    # --- seed --------------------------------------------------------------------------------
    def seed(self) -> None:
        for gid, name in (("grp-helsinki", "Helsinki centre"), ("grp-espoo", "Espoo")):
            self.groups[gid] = {"id": gid, "name": name, "customerId": "cust-demo", "type": 1}
        layout: tuple[tuple[str, str, list[str], str, int], ...] = (
            ("000111", "Kamppi automat", ["grp-helsinki"], "active", 4),
            ("000112", "Kallio automat", ["grp-helsinki"], "active", 2),
            ("000211", "Espoo automat", ["grp-espoo"], "active", 1),
            ("000999", "New automat", [], "waitingForInstall", 0),
        )
        number = 0
        for aid, name, groups, lifecycle, count in layout:
            self.automats[aid] = {
                "id": aid,
                "name": name,
                "location": {
                    "address": f"{name} street 1",
                    "postalCode": "00100",
                    "postalOffice": "Helsinki",
                },
                "label": None,
                "groupIds": groups,
                "hwId": f"hw-{aid}",
                "timezone": "Europe/Helsinki",
                "installationPincode": None,
                "lifecycleState": lifecycle,
            }
            for index in range(count):
                number += 1
                key_id = f"iloq-{number:04d}"
                self.keys[key_id] = {
                    "id": key_id,
                    "name": f"iLOQ S5 key {number}",
                    "automatId": aid,
                    "lockerIndex": str(index),
                    "inside": True,
                }
        self.access_rights = [
            {"id": "ar-main-door", "name": "Main door", "realEstatePath": "Demo estate/A"},
            {"id": "ar-apt-12", "name": "Apartment 12", "realEstatePath": "Demo estate/A/12"},
            {"id": "ar-sauna", "name": "Sauna", "realEstatePath": None},
        ]

    # --- views and lookups -------------------------------------------------------------------
    def group_view(self, group: dict[str, Any]) -> dict[str, Any]:
        members = [
            {"id": a["id"], "name": a["name"]}
            for a in self.automats.values()
            if group["id"] in a["groupIds"]
        ]
        return {**group, "members": members}

    def automat_view(self, automat: dict[str, Any]) -> dict[str, Any]:
        """The automat with its lockers; a fetched key keeps its locker until it is back."""
        held = {k["lockerIndex"]: k for k in self.keys.values() if k["automatId"] == automat["id"]}
        lockers = [
            {
                "lockerIndex": str(i),
                "isKeyInside": str(i) in held and held[str(i)]["inside"],
                "key": {"id": held[str(i)]["id"], "name": held[str(i)]["name"]}
                if str(i) in held
                else None,
            }
            for i in range(LOCKERS_PER_AUTOMAT)
        ]
        groups = [
            {"id": g, "name": self.groups[g]["name"]}
            for g in automat["groupIds"]
            if g in self.groups
        ]
        view = {k: v for k, v in automat.items() if k != "groupIds"}
        return {**view, "groups": groups, "lockers": lockers}

    def automat(self, automat_id: str) -> dict[str, Any]:
        if automat_id not in self.automats:
            raise NestError(404, f"Automat {automat_id} not found")
        return self.automats[automat_id]

    def contract_view(self, contract: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in contract.items() if not k.startswith("_")}

    def contract(self, contract_id: str) -> dict[str, Any]:
        if contract_id not in self.contracts:
            raise NestError(404, f"Contract {contract_id} not found")
        return self.contracts[contract_id]

    def free_lockers(self, automat_id: str) -> int:
        return LOCKERS_PER_AUTOMAT - sum(
            1 for k in self.keys.values() if k["automatId"] == automat_id
        )

    def active_automats(self, group_id: str | None) -> list[dict[str, Any]]:
        if group_id is not None and group_id not in self.groups:
            raise NestError(400, f"groupId {group_id} does not exist")
        return [
            a
            for a in self.automats.values()
            if a["lifecycleState"] == "active" and (group_id is None or group_id in a["groupIds"])
        ]

    # --- the automat's side ------------------------------------------------------------------
    async def enter_pincode(self, automat_id: str, code: str) -> dict[str, Any]:
        self.automat(automat_id)
        now = self.now()
        for contract in self.contracts.values():
            start, end = parse_time(contract["start"]), parse_time(contract["end"])
            if start is None or start > now or (end is not None and end <= now):
                continue
            for key in contract["keys"]:
                info = key["storageInfo"]
                if info["pincode"] != code or info["deviceId"] != automat_id or key["inHistory"]:
                    continue
                await self.code_entered(contract, key, code)
                if contract["contractType"] == 3:
                    return {"success": True, "reason": None, "opened": "return locker"}
                if key["status"] == "key-fetched":
                    return {"success": False, "reason": "KEY_ALREADY_FETCHED"}
                if not (self.keys.get(key["id"]) or {}).get("inside"):
                    return {"success": False, "reason": "KEY_NOT_IN_LOCKER"}
                await self.fetch(contract, key)
                return {"success": True, "reason": None}
        return {"success": False, "reason": "PINCODE_NOT_FOUND"}

    async def code_entered(self, contract: dict[str, Any], key: dict[str, Any], code: str) -> None:
        stored = self.keys.get(key["id"]) or {}
        return_code = contract["contractType"] == 3
        await self.emit(
            "code-entered",
            {
                "codeType": "right-return-code" if return_code else "right-pincode",
                "code": code,
                "deviceId": key["storageInfo"]["deviceId"],
                "lockerIndex": stored.get("lockerIndex"),
                "keyId": key["id"],
                "contractId": None if return_code else contract["id"],
                "contractObjectId": contract["id"],
            },
        )

    async def fetch(self, contract: dict[str, Any], key: dict[str, Any]) -> None:
        """The key leaves its locker, which stays reserved for it until the contract ends."""
        stored = self.keys[key["id"]]
        locker = stored["lockerIndex"]
        stored["inside"] = False
        key["status"] = "key-fetched"
        if contract["contractType"] == 2:  # the locker is free at once; the key leaves the system
            key["inHistory"], key["storageInfo"]["pincode"] = True, None
            stored["automatId"], stored["lockerIndex"] = None, None
        await self.key_status(
            contract,
            key,
            "key-fetched",
            contract_device=key["storageInfo"]["deviceId"],
            locker=locker,
        )

    async def return_key(self, automat_id: str, key_id: str) -> dict[str, Any]:
        """The key goes back into its own locker here, or into a free one."""
        self.automat(automat_id)
        stored = self.keys.setdefault(
            key_id,
            {"id": key_id, "name": f"iLOQ S5 key {key_id}", "automatId": None, "inside": False},
        )
        if stored["automatId"] != automat_id or stored.get("lockerIndex") is None:
            if self.free_lockers(automat_id) < 1:
                raise NestError(409, "no free locker")
            taken = {k["lockerIndex"] for k in self.keys.values() if k["automatId"] == automat_id}
            free = next(str(i) for i in range(LOCKERS_PER_AUTOMAT) if str(i) not in taken)
            stored["automatId"], stored["lockerIndex"] = automat_id, free
        stored["inside"] = True
        locker = stored["lockerIndex"]
        for contract in self.contracts.values():
            for key in contract["keys"]:
                waiting = key["status"] in ("key-fetched", "key-not-returned") or (
                    contract["contractType"] == 3 and key["status"] is None
                )
                if key["id"] == key_id and waiting and not key["inHistory"]:
                    key["status"] = "key-returned"
                    if contract["contractType"] == 3:
                        key["inHistory"], key["storageInfo"]["pincode"] = True, None
                    await self.key_status(
                        contract, key, "key-returned", contract_device=automat_id, locker=locker
                    )
                    return {"returned": True, "contractId": contract["id"], "lockerIndex": locker}
        await self.key_status(
            None, {"id": key_id}, "key-returned", contract_device=automat_id, locker=locker
        )
        return {"returned": True, "contractId": None, "lockerIndex": locker}

    async def on_clock_change(self) -> None:
        now = self.now()
        for contract in list(self.contracts.values()):
            end = parse_time(contract["end"])
            if (
                contract["contractType"] != 1
                or end is None
                or end > now
                or contract.get("_overdue")
            ):
                continue
            contract["_overdue"] = True
            for key in contract["keys"]:
                if key["status"] == "key-fetched":
                    key["status"] = "key-not-returned"
                    await self.key_status(
                        contract,
                        key,
                        "key-not-returned",
                        contract_device=key["storageInfo"]["deviceId"],
                        locker=None,
                    )
                elif key["status"] is None:
                    key["status"] = "key-not-fetched"
                    await self.key_status(
                        contract,
                        key,
                        "key-not-fetched",
                        contract_device=key["storageInfo"]["deviceId"],
                        locker=None,
                    )

    # --- webhooks ----------------------------------------------------------------------------
    async def key_status(
        self,
        contract: dict[str, Any] | None,
        key: dict[str, Any],
        state: str,
        *,
        contract_device: str,
        locker: str | None,
    ) -> None:
        await self.emit(
            "key-status",
            {
                "state": state,
                "storageType": "device",
                "deviceId": contract_device,
                "lockerIndex": locker,
                "keyId": key["id"],
                "contractId": contract["id"] if contract else None,
                "contractObjectId": contract["id"] if contract else None,
            },
        )

    async def contract_updated(self, contract: dict[str, Any]) -> None:
        for key in contract["keys"]:
            await self.emit(
                "contract-update",
                {
                    "contractType": TYPE_NAMES[contract["contractType"]],
                    "contractId": contract["id"],
                    "contractObjectId": contract["id"],
                    "pincode": key["storageInfo"]["pincode"],
                    "start": contract["start"],
                    "end": contract["end"],
                    "deviceId": key["storageInfo"]["deviceId"],
                    "keyId": key["id"],
                },
            )

    async def emit(self, kind: str, data: dict[str, Any]) -> None:
        """Deliver a signed event to every subscribed URL; re-signed on each retry (V2 §7)."""
        moment = iso(self.now())
        envelope = {
            "specVersion": "1",
            "type": kind,
            "occurredAt": moment,
            "createdAt": moment,
            "organizationUnitId": self.org_id,
            "data": data,
        }
        msg_id = "msg_" + secrets.token_urlsafe(12)

        def signed(raw: bytes) -> dict[str, str]:
            # Signed with wall time: the receiver checks freshness against its own clock.
            stamp = int(time.time())
            return {
                "webhook-id": msg_id,
                "webhook-timestamp": str(stamp),
                "webhook-signature": standard_webhooks.sign(
                    self.webhook_secret, msg_id, stamp, raw
                ),
                "webhook-event-type": kind,
            }

        await self.state.deliver(
            envelope, signed, accepted=lambda status: 200 <= status < 300, ensure_ascii=False
        )
