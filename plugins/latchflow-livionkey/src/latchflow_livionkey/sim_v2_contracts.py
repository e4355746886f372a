"""The contract rules of the API V2 simulator: handing iLOQ keys over and taking them back.

Each function takes the simulator's state (``V2Sim``) and raises ``NestError`` for what the
real API refuses; the routes in ``sim_v2_routes`` call them.
"""

from __future__ import annotations

import uuid
from typing import Any

from latchflow_livionkey.assumptions import V2_ORG_DEFAULT_NOTIFICATIONS, V2_PINCODE_DIGITS
from latchflow_livionkey.sim_common import iso, parse_time, pincode
from latchflow_livionkey.sim_v2 import TYPE_NAMES, NestError, V2Sim

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
NO_KEYS = "no device(s) with requested number of keys available for the handover"


def resolve_contact(contact: Any) -> dict[str, Any] | None:
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


def pick_keys(sim: V2Sim, data: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """Keys for a handover: by automat, by group (first automat with enough), or by id."""
    if data.get("keyAutomatId"):
        automat = sim.automat(str(data["keyAutomatId"]))
        free = sim.free_keys(automat["id"]) if automat["lifecycleState"] == "active" else []
        if len(free) < count:
            raise NestError(409, NO_KEYS)
        return free[:count]
    if data.get("groupId"):
        for automat in sim.active_automats(str(data["groupId"])):
            free = sim.free_keys(automat["id"])
            if len(free) >= count:
                return free[:count]
        raise NestError(409, NO_KEYS)
    chosen = []
    for key_id in data["keyIds"]:
        key = sim.keys.get(str(key_id))
        if key is None:
            raise NestError(400, f"key {key_id} does not exist")
        if key["holder"] is not None or key["automatId"] is None:
            raise NestError(409, NO_KEYS)
        chosen.append(key)
    return chosen


def return_automat(sim: V2Sim, data: dict[str, Any], count: int) -> str:
    if data.get("keyAutomatId"):
        candidates = [sim.automat(str(data["keyAutomatId"]))]
    else:
        candidates = sim.active_automats(data.get("groupId"))
    for automat in candidates:
        if sim.free_lockers(automat["id"]) >= count:
            return str(automat["id"])
    raise NestError(409, NO_KEYS)


def used_pincodes(sim: V2Sim) -> set[str]:
    return {
        k["storageInfo"]["pincode"]
        for c in sim.contracts.values()
        for k in c["keys"]
        if k["storageInfo"]["pincode"]
    }


def create_contract(sim: V2Sim, body: Any) -> dict[str, Any]:
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
        known = {r["id"] for r in sim.access_rights}
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
    start = start or sim.now()
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
    used = used_pincodes(sim)
    if codes and (clash := [c for c in codes if c in used]):
        raise NestError(400, f"pincode {clash[0]} is already in use")
    contact = resolve_contact(data.get("contact"))
    contract_id = str(uuid.uuid4())
    if kind == 3:
        device = return_automat(sim, data, count)
        entries = [(str(k), device) for k in data["keyIds"]]
    else:
        entries = [(k["id"], k["automatId"]) for k in pick_keys(sim, data, count)]
    keys = []
    for i, (key_id, device) in enumerate(entries):
        code = codes[i] if codes else pincode(used, V2_PINCODE_DIGITS)
        used.add(code)
        if kind != 3:
            sim.keys[key_id]["holder"] = contract_id
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
    sim.contracts[contract_id] = contract
    return contract


def update_contract(sim: V2Sim, contract_id: str, body: Any) -> dict[str, Any]:
    contract = sim.contract(contract_id)
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
        contract["contact"] = resolve_contact(body["contact"])
    contract.pop("_overdue", None)
    return contract


def delete_contract(sim: V2Sim, contract_id: str) -> None:
    contract = sim.contract(contract_id)
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
        stored = sim.keys.get(key["id"])
        if stored is not None and stored["holder"] == contract_id:
            stored["holder"] = None
    del sim.contracts[contract_id]


def list_contracts(sim: V2Sim, ongoing: bool, ended: bool, future: bool) -> list[dict[str, Any]]:
    now, result = sim.now(), []
    for contract in sim.contracts.values():
        start, end = parse_time(contract["start"]), parse_time(contract["end"])
        assert start is not None
        phase = (
            "future" if start > now else "ended" if end is not None and end <= now else "ongoing"
        )
        if (
            not (ongoing or ended or future)
            or {"ongoing": ongoing, "ended": ended, "future": future}[phase]
        ):
            result.append(sim.contract_view(contract))
    return result
