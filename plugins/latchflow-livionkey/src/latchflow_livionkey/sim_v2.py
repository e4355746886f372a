"""A simulator of LivionKey API V2: signed requests, iLOQ key contracts, automats, groups, webhooks.

The state and rules live here; the routes in ``sim_v2_routes``. Simulator-only routes:

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
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from latchflow.simulation import Delivery, SimState
from latchflow_livionkey import standard_webhooks
from latchflow_livionkey.assumptions import (
    V2_ORG_DEFAULT_NOTIFICATIONS,
    V2_PAGE_LIMIT_MAX,
    V2_PINCODE_DIGITS,
)
from latchflow_livionkey.sim_common import iso, parse_time, pincode

NOTIFICATION_TYPES = (
    "contractKeyFetched",
    "contractKeyReturned",
    "contractCreated",
    "contractStartReminder",
    "contractEndReminder",
    "contractKeysNotReturned",
    "contractUpdated",
    "contractSignatureRequested",
)
LANGUAGES = ("en", "fi", "sv", "de", "no", "fr")
TYPE_NAMES = {1: "default", 2: "fetch", 3: "return"}
LOCKERS_PER_AUTOMAT = 8
NO_KEYS = "no device(s) with requested number of keys available for the handover"


class NestError(Exception):
    """An error answer in the NestJS shape (V2 §8 "Error body shape")."""

    NAMES = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 409: "Conflict"}

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> dict[str, Any]:
        return {
            "statusCode": self.status,
            "message": self.message,
            "error": self.NAMES.get(self.status, "Error"),
        }


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
    state: SimState = field(default_factory=SimState)
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
                    "holder": None,
                }
        self.access_rights = [
            {"id": "ar-main-door", "name": "Main door", "realEstatePath": "Demo estate/A"},
            {"id": "ar-apt-12", "name": "Apartment 12", "realEstatePath": "Demo estate/A/12"},
            {"id": "ar-sauna", "name": "Sauna", "realEstatePath": None},
        ]

    # --- views -------------------------------------------------------------------------------
    def group_view(self, group: dict[str, Any]) -> dict[str, Any]:
        members = [
            {"id": a["id"], "name": a["name"]}
            for a in self.automats.values()
            if group["id"] in a["groupIds"]
        ]
        return {**group, "members": members}

    def automat_view(self, automat: dict[str, Any]) -> dict[str, Any]:
        inside = {
            k["lockerIndex"]: k for k in self.keys.values() if k["automatId"] == automat["id"]
        }
        lockers = [
            {
                "lockerIndex": str(i),
                "isKeyInside": str(i) in inside,
                "key": {"id": inside[str(i)]["id"], "name": inside[str(i)]["name"]}
                if str(i) in inside
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

    # --- contracts ---------------------------------------------------------------------------
    def resolve_contact(self, contact: Any) -> dict[str, Any] | None:
        if contact is None:
            return None
        if not isinstance(contact, dict) or not contact.get("name"):
            raise NestError(400, "contact.name is required")
        language = contact.get("language") or "en"
        if language not in LANGUAGES:
            raise NestError(400, f"contact.language must be one of {', '.join(LANGUAGES)}")
        explicit = contact.get("notifications")
        if isinstance(explicit, dict):  # the flags are ignored; unlisted types/channels are off
            notifications = {
                t: {
                    "sms": bool((explicit.get(t) or {}).get("sms")),
                    "email": bool((explicit.get(t) or {}).get("email")),
                }
                for t in NOTIFICATION_TYPES
            }
        else:
            sms, email = bool(contact.get("sendSms")), bool(contact.get("sendEmail"))
            notifications = {
                t: {
                    "sms": sms and t in V2_ORG_DEFAULT_NOTIFICATIONS,
                    "email": email and t in V2_ORG_DEFAULT_NOTIFICATIONS,
                }
                for t in NOTIFICATION_TYPES
            }
        return {
            "name": contact["name"],
            "email": contact.get("email"),
            "phoneNumber": contact.get("phoneNumber"),
            "language": language,
            "iloqPersonId": contact.get("iloqPersonId"),
            "notifications": notifications,
        }

    def free_keys(self, automat_id: str) -> list[dict[str, Any]]:
        return [
            k for k in self.keys.values() if k["automatId"] == automat_id and k["holder"] is None
        ]

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

    def pick_keys(self, data: dict[str, Any], count: int) -> list[dict[str, Any]]:
        """Keys for a handover: by automat, by group (first automat with enough), or by id."""
        if data.get("keyAutomatId"):
            automat = self.automat(str(data["keyAutomatId"]))
            free = self.free_keys(automat["id"]) if automat["lifecycleState"] == "active" else []
            if len(free) < count:
                raise NestError(409, NO_KEYS)
            return free[:count]
        if data.get("groupId"):
            for automat in self.active_automats(str(data["groupId"])):
                free = self.free_keys(automat["id"])
                if len(free) >= count:
                    return free[:count]
            raise NestError(409, NO_KEYS)
        chosen = []
        for key_id in data["keyIds"]:
            key = self.keys.get(str(key_id))
            if key is None:
                raise NestError(400, f"key {key_id} does not exist")
            if key["holder"] is not None or key["automatId"] is None:
                raise NestError(409, NO_KEYS)
            chosen.append(key)
        return chosen

    def return_automat(self, data: dict[str, Any], count: int) -> str:
        if data.get("keyAutomatId"):
            candidates = [self.automat(str(data["keyAutomatId"]))]
        else:
            candidates = self.active_automats(data.get("groupId"))
        for automat in candidates:
            if self.free_lockers(automat["id"]) >= count:
                return str(automat["id"])
        raise NestError(409, NO_KEYS)

    def used_pincodes(self) -> set[str]:
        return {
            k["storageInfo"]["pincode"]
            for c in self.contracts.values()
            for k in c["keys"]
            if k["storageInfo"]["pincode"]
        }

    def create_contract(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            raise NestError(400, 'the body must be {"input": {...}}')
        data = body["input"]
        kind = data.get("contractType")
        if kind not in TYPE_NAMES:
            raise NestError(400, "contractType must be 1 (default), 2 (fetch) or 3 (return)")
        locations = [k for k in ("groupId", "keyAutomatId", "keyIds") if data.get(k)]
        if kind == 3:
            if not data.get("keyIds"):
                raise NestError(400, "keyIds is required for return contracts")
        elif len(locations) != 1:
            raise NestError(400, "give exactly one of groupId, keyAutomatId or keyIds")
        if kind in (1, 2):
            rights = data.get("accessRightIds")
            known = {r["id"] for r in self.access_rights}
            if not rights:
                raise NestError(400, "accessRightIds is required for default and fetch contracts")
            if unknown := [r for r in rights if r not in known]:
                raise NestError(400, f"unknown accessRightIds: {', '.join(unknown)}")
        start = parse_time(data.get("start"))
        end = parse_time(data.get("end"))
        if kind in (1, 2) and start is None:
            raise NestError(400, "start is required")
        if kind == 1 and end is None:
            raise NestError(400, "end is required for default contracts")
        start = start or self.now()
        if end is not None and end <= start:
            raise NestError(400, "end must be after start")
        if kind == 3 or data.get("keyIds"):
            count = len(data["keyIds"])
        else:
            count = data.get("numberOfKeys")
            if not isinstance(count, int) or count < 1:
                raise NestError(400, "numberOfKeys is required with keyAutomatId or groupId")
        codes = data.get("pincodes")
        if codes is not None and len(codes) != count:
            raise NestError(400, f"pincodes must have one pincode per key ({count})")
        used = self.used_pincodes()
        if codes and (clash := [c for c in codes if c in used]):
            raise NestError(400, f"pincode {clash[0]} is already in use")
        contact = self.resolve_contact(data.get("contact"))
        contract_id = str(uuid.uuid4())
        if kind == 3:
            device = self.return_automat(data, count)
            entries = [(str(k), device) for k in data["keyIds"]]
        else:
            entries = [(k["id"], k["automatId"]) for k in self.pick_keys(data, count)]
        keys = []
        for i, (key_id, device) in enumerate(entries):
            code = codes[i] if codes else pincode(used, V2_PINCODE_DIGITS)
            used.add(code)
            if kind != 3:
                self.keys[key_id]["holder"] = contract_id
            keys.append(
                {
                    "id": key_id,
                    "status": None,
                    "storageInfo": {"deviceId": device, "pincode": code},
                    "inHistory": False,
                }
            )
        contract = {
            "id": contract_id,
            "accessRightIds": data.get("accessRightIds") if kind != 3 else None,
            "start": iso(start),
            "end": iso(end),
            "contact": contact,
            "keys": keys,
            "numberOfKeys": data.get("numberOfKeys"),
            "keyIds": data.get("keyIds"),
            "keyAutomatId": data.get("keyAutomatId"),
            "groupId": data.get("groupId"),
            "contractType": kind,
        }
        self.contracts[contract_id] = contract
        return contract

    def update_contract(self, contract_id: str, body: Any) -> dict[str, Any]:
        contract = self.contract(contract_id)
        if not isinstance(body, dict):
            raise NestError(400, "the body must be a JSON object")
        start = parse_time(body.get("start")) or parse_time(contract["start"])
        end = parse_time(body["end"]) if "end" in body else parse_time(contract["end"])
        if start is not None and end is not None and end <= start:
            raise NestError(400, "end must be after start")
        if contract["contractType"] == 1 and end is None:
            raise NestError(400, "a default contract needs an end")
        contract["start"], contract["end"] = iso(start), iso(end)
        if "contact" in body:
            contract["contact"] = self.resolve_contact(body["contact"])
        contract.pop("_overdue", None)
        return contract

    def delete_contract(self, contract_id: str) -> None:
        contract = self.contract(contract_id)
        states = [k["status"] for k in contract["keys"]]
        kind = contract["contractType"]
        if kind == 1 and "key-fetched" in states:
            raise NestError(400, "a key of this contract is fetched and not yet returned")
        done = "key-fetched" if kind == 2 else "key-returned"
        if kind in (2, 3) and done in states and None in states:
            raise NestError(
                400, f"some keys are {done.removeprefix('key-')} while others are still waiting"
            )
        for key in contract["keys"]:
            stored = self.keys.get(key["id"])
            if stored is not None and stored["holder"] == contract_id:
                stored["holder"] = None
        del self.contracts[contract_id]

    def list_contracts(self, ongoing: bool, ended: bool, future: bool) -> list[dict[str, Any]]:
        now, result = self.now(), []
        for contract in self.contracts.values():
            start, end = parse_time(contract["start"]), parse_time(contract["end"])
            assert start is not None
            phase = (
                "future"
                if start > now
                else "ended"
                if end is not None and end <= now
                else "ongoing"
            )
            if (
                not (ongoing or ended or future)
                or {"ongoing": ongoing, "ended": ended, "future": future}[phase]
            ):
                result.append(self.contract_view(contract))
        return result

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
        stored = self.keys[key["id"]]
        locker = stored["lockerIndex"]
        stored["automatId"], stored["lockerIndex"] = None, None
        key["status"] = "key-fetched"
        if contract["contractType"] == 2:  # the locker is free at once; the key leaves the system
            key["inHistory"], key["storageInfo"]["pincode"] = True, None
            stored["holder"] = None
        await self.key_status(
            contract,
            key,
            "key-fetched",
            contract_device=key["storageInfo"]["deviceId"],
            locker=locker,
        )

    async def return_key(self, automat_id: str, key_id: str) -> dict[str, Any]:
        self.automat(automat_id)
        if self.free_lockers(automat_id) < 1:
            raise NestError(409, "no free locker")
        taken = {k["lockerIndex"] for k in self.keys.values() if k["automatId"] == automat_id}
        locker = next(str(i) for i in range(LOCKERS_PER_AUTOMAT) if str(i) not in taken)
        stored = self.keys.setdefault(
            key_id, {"id": key_id, "name": f"iLOQ S5 key {key_id}", "holder": None}
        )
        stored["automatId"], stored["lockerIndex"] = automat_id, locker
        for contract in self.contracts.values():
            for key in contract["keys"]:
                waiting = key["status"] in ("key-fetched", "key-not-returned") or (
                    contract["contractType"] == 3 and key["status"] is None
                )
                if key["id"] == key_id and waiting and not key["inHistory"]:
                    key["status"] = "key-returned"
                    if contract["contractType"] == 3:
                        key["inHistory"], key["storageInfo"]["pincode"] = True, None
                    stored["holder"] = None
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
                    stored = self.keys.get(key["id"])
                    if stored is not None and stored["holder"] == contract["id"]:
                        stored["holder"] = None
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
        raw = json.dumps(envelope, separators=(",", ":")).encode()
        msg_id = "msg_" + secrets.token_urlsafe(12)
        async with httpx.AsyncClient(timeout=5.0) as client:
            for url in list(self.state.webhook_urls):
                delivery = Delivery(url=url, body=envelope)
                self.state.deliveries.append(delivery)
                for attempt in range(1, self.state.webhook_retries + 1):
                    delivery.attempts = attempt
                    # Signed with wall time: the receiver checks freshness against its own clock.
                    stamp = int(time.time())
                    headers = {
                        "content-type": "application/json",
                        "webhook-id": msg_id,
                        "webhook-timestamp": str(stamp),
                        "webhook-signature": standard_webhooks.sign(
                            self.webhook_secret, msg_id, stamp, raw
                        ),
                        "webhook-event-type": kind,
                    }
                    try:
                        response = await client.post(url, content=raw, headers=headers)
                        delivery.status, delivery.error = response.status_code, None
                        if 200 <= response.status_code < 300:
                            break
                    except httpx.HTTPError as exc:
                        delivery.error = f"{type(exc).__name__}: {exc}"
                    await asyncio.sleep(self.state.webhook_retry_delay * attempt)
