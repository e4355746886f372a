"""The contract rules of the API V2 simulator: handing iLOQ keys over and taking them back.

Each function takes the simulator's state (``V2Sim``) and raises ``NestError`` for what the
real API refuses; the routes in ``sim_v2_routes`` call them. A key is reserved by a contract
only for the contract's window (and while it is out past the end): bookings that do not overlap
can use the same key.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from latchflow_livionkey.assumptions import (
    V2_ORG_DEFAULT_NOTIFICATIONS,
    V2_PINCODE_DIGITS,
    V2_REFUSALS,
)
from latchflow_livionkey.sim_common import is_pincode, iso, overlaps, parse_time, pincode
from latchflow_livionkey.sim_v2 import TYPE_NAMES, NestError, V2Sim, refuse_unknown

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
CREATE_FIELDS = (
    "contractType",
    "accessRightIds",
    "contact",
    "numberOfKeys",
    "pincodes",
    "groupId",
    "keyAutomatId",
    "keyIds",
    "start",
    "end",
)
CONTACT_FIELDS = (
    "name",
    "email",
    "phoneNumber",
    "sendSms",
    "sendEmail",
    "language",
    "notifications",
    "iloqPersonId",
)
UPDATE_FIELDS = ("contact", "start", "end")
DONE = ("key-returned", "key-not-fetched")


def time_of(data: dict[str, Any], name: str) -> datetime | None:
    """``data[name]`` as a time, None when absent; 400 when it is not a date-time with a zone."""
    if data.get(name) is None:
        return None
    moment = parse_time(data[name])
    if moment is None:
        raise NestError(400, [V2_REFUSALS["time"].format(name)])
    return moment


def resolve_contact(contact: Any, path: str) -> dict[str, Any] | None:
    if contact is None:
        return None
    if not isinstance(contact, dict) or not contact.get("name"):
        raise NestError(400, f"{path}.name is required")
    refuse_unknown(contact, CONTACT_FIELDS, path)
    language = contact.get("language") or "en"
    if language not in LANGUAGES:
        raise NestError(400, f"{path}.language must be one of {', '.join(LANGUAGES)}")
    explicit = contact.get("notifications")
    if isinstance(explicit, dict):  # the flags are ignored; unlisted types/channels are off
        refuse_unknown(explicit, NOTIFICATION_TYPES, f"{path}.notifications")
        for name, channels in explicit.items():
            refuse_unknown(channels, ("sms", "email"), f"{path}.notifications.{name}")
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


def window(contract: dict[str, Any], key: dict[str, Any]) -> tuple[datetime, datetime | None]:
    """When a contract holds a key: its window, open-ended while the key is out past the end."""
    start = parse_time(contract["start"])
    assert start is not None
    end = None if key["status"] == "key-not-returned" else parse_time(contract["end"])
    return start, end


def key_busy(
    sim: V2Sim, key_id: str, start: datetime, end: datetime | None, skip: str | None = None
) -> bool:
    """Whether another contract holds the key at some moment of [start, end)."""
    for contract in sim.contracts.values():
        if contract["id"] == skip or contract["contractType"] == 3:
            continue
        for key in contract["keys"]:
            if key["id"] != key_id or key["inHistory"] or key["status"] in DONE:
                continue
            if overlaps(*window(contract, key), start, end):
                return True
    return False


def pincode_taken(
    sim: V2Sim, code: str, automat_id: str, start: datetime, end: datetime | None
) -> bool:
    """Whether a contract at the automat has this pincode during [start, end)
    (``assumptions.V2_PINCODES_UNIQUE``)."""
    return any(
        key["storageInfo"] == {"deviceId": automat_id, "pincode": code}
        and overlaps(*window(contract, key), start, end)
        for contract in sim.contracts.values()
        for key in contract["keys"]
    )


def pick_keys(
    sim: V2Sim, data: dict[str, Any], count: int, start: datetime, end: datetime | None
) -> list[dict[str, Any]]:
    """Keys free for [start, end): by automat, by group (first automat with enough), by id."""

    def free(automat_id: str) -> list[dict[str, Any]]:
        return [
            k
            for k in sim.keys.values()
            if k["automatId"] == automat_id and not key_busy(sim, k["id"], start, end)
        ]

    if data.get("keyAutomatId"):
        automat = sim.automat(str(data["keyAutomatId"]))
        found = free(automat["id"]) if automat["lifecycleState"] == "active" else []
        if len(found) < count:
            raise NestError(409, NO_KEYS)
        return found[:count]
    if data.get("groupId"):
        for automat in sim.active_automats(str(data["groupId"])):
            found = free(automat["id"])
            if len(found) >= count:
                return found[:count]
        raise NestError(409, NO_KEYS)
    chosen = []
    for key_id in data["keyIds"]:
        key = sim.keys.get(str(key_id))
        if key is None:
            raise NestError(400, f"key {key_id} does not exist")
        if key["automatId"] is None or key_busy(sim, key["id"], start, end):
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


def check_pincodes(codes: Any, count: int) -> None:
    if codes is None:
        return
    if not isinstance(codes, list) or not all(is_pincode(c, V2_PINCODE_DIGITS) for c in codes):
        raise NestError(400, [V2_REFUSALS["pincode"].format(V2_PINCODE_DIGITS)])
    if len(codes) != count or len(set(codes)) != count:
        raise NestError(400, f"pincodes must have one different pincode per key ({count})")


def check_window(sim: V2Sim, start: datetime, end: datetime | None) -> None:
    if end is not None and end <= start:
        raise NestError(400, "end must be after start")
    if end is not None and end <= sim.now():
        raise NestError(400, V2_REFUSALS["ended"])


def create_contract(sim: V2Sim, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
        raise NestError(400, 'the body must be {"input": {...}}')
    refuse_unknown(body, ("input",))
    data = body["input"]
    refuse_unknown(data, CREATE_FIELDS, "input")
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
    start, end = time_of(data, "start"), time_of(data, "end")
    if kind in (1, 2) and start is None:
        raise NestError(400, "start is required")
    if kind == 1 and end is None:
        raise NestError(400, "end is required for default contracts")
    start = start or sim.now()
    check_window(sim, start, end)
    if kind == 3 or data.get("keyIds"):
        count = len(data["keyIds"])
    else:
        count = data.get("numberOfKeys")
        if not isinstance(count, int) or count < 1:
            raise NestError(400, "numberOfKeys is required with keyAutomatId or groupId")
    codes = data.get("pincodes")
    check_pincodes(codes, count)
    contact = resolve_contact(data.get("contact"), "input.contact")
    if kind == 3:
        device = return_automat(sim, data, count)
        entries = [(str(k), device) for k in data["keyIds"]]
    else:
        entries = [(k["id"], k["automatId"]) for k in pick_keys(sim, data, count, start, end)]
    for code, (_, device) in zip(codes or [], entries, strict=False):
        if pincode_taken(sim, code, device, start, end):
            raise NestError(400, V2_REFUSALS["pincode_taken"].format(code, device))
    used = used_pincodes(sim)
    keys = []
    for i, (key_id, device) in enumerate(entries):
        code = codes[i] if codes else pincode(used, V2_PINCODE_DIGITS)
        used.add(code)
        keys.append(
            {
                "id": key_id,
                "status": None,
                "storageInfo": {"deviceId": device, "pincode": code},
                "inHistory": False,
            }
        )
    contract = {
        "id": str(uuid.uuid4()),
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
    sim.contracts[contract["id"]] = contract
    return contract


def update_contract(sim: V2Sim, contract_id: str, body: Any) -> dict[str, Any]:
    contract = sim.contract(contract_id)
    if not isinstance(body, dict):
        raise NestError(400, "the body must be a JSON object")
    refuse_unknown(body, UPDATE_FIELDS)
    start = time_of(body, "start") or parse_time(contract["start"])
    end = time_of(body, "end") if "end" in body else parse_time(contract["end"])
    assert start is not None
    if end is not None and end <= start:
        raise NestError(400, "end must be after start")
    if "end" in body and end is not None and end <= sim.now():
        raise NestError(400, V2_REFUSALS["ended"])
    if contract["contractType"] == 1 and end is None:
        raise NestError(400, "a default contract needs an end")
    if contract["contractType"] != 3 and any(
        key_busy(sim, key["id"], start, end, skip=contract_id)
        for key in contract["keys"]
        if not key["inHistory"] and key["status"] not in DONE
    ):
        raise NestError(409, V2_REFUSALS["overlap"])
    contact = resolve_contact(body["contact"], "contact") if "contact" in body else None
    contract["start"], contract["end"] = iso(start), iso(end)
    if "contact" in body:
        contract["contact"] = contact
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
