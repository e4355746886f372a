"""API V2 iLOQ key contracts: hand keys over at an automat and take them back."""

from __future__ import annotations

from functools import partial

from latchflow import JSON, Action, FatalError, Pending, RetrySafety, RunContext
from latchflow_livionkey.assumptions import V2_PINCODE_DIGITS
from latchflow_livionkey.duplicates import (
    REMOVED_OUTPUT,
    VERIFY_INPUT,
    remove_copies,
    verify_later,
    verifying,
)
from latchflow_livionkey.schemas import iso_z, list_of, moment, obj, open_obj, prop
from latchflow_livionkey.v2_client import V2Client, V2Error
from latchflow_livionkey.v2_fields import client_of, v2_action
from latchflow_livionkey.v2_markers import contracts_carrying, marker_pincodes

CONTRACT_TYPES = {"default": 1, "fetch": 2, "return": 3}
NOTIFICATION_TYPES = [
    "contractKeyFetched",
    "contractKeyReturned",
    "contractCreated",
    "contractStartReminder",
    "contractEndReminder",
    "contractKeysNotReturned",
    "contractUpdated",
    "contractSignatureRequested",
]
REMINDERS = ("contractStartReminder", "contractEndReminder")
# Sent with ``reminders`` set and no explicit notifications: every event about the handover.
BASE_TYPES = (
    "contractCreated",
    "contractKeyFetched",
    "contractKeyReturned",
    "contractKeysNotReturned",
    "contractUpdated",
)
CHANNELS = obj({"sms": prop("boolean", "By SMS"), "email": prop("boolean", "By e-mail")})
CONTACT = obj(
    {
        "name": prop("string", "The key holder's name"),
        "email": prop("string", "E-mail address"),
        "phoneNumber": prop("string", "Phone number, E.164 (e.g. +358401234567)"),
        "language": prop(
            "string", "Notification language", enum=["en", "fi", "sv", "de", "no", "fr"]
        ),
        "sendSms": prop("boolean", "Notify by SMS (the organisation's default notification types)"),
        "sendEmail": prop(
            "boolean", "Notify by e-mail (the organisation's default notification types)"
        ),
        "reminders": prop(
            "boolean",
            "Also send start/end reminders (sends an explicit notification list on the chosen channels)",
        ),
        "notifications": {
            "type": "object",
            "description": "Exactly which notifications to send per channel; overrides sendSms, sendEmail and reminders (unlisted ones are not sent)",
            "properties": {t: CHANNELS for t in NOTIFICATION_TYPES},
            "additionalProperties": False,
        },
        "iloqPersonId": prop("string", "The person's id in iLOQ, if known"),
    },
    ["name"],
)
CONTRACT_ID = prop("string", "The iLOQ key contract id")
SAMPLE_CONTRACT = {
    "id": "5b0f6c1e-9a7e-4c5e-9a51-2d1f0e7c9b11",
    "contractType": 1,
    "accessRightIds": ["ar-main-door"],
    "start": "2026-03-01T14:00:00.000Z",
    "end": "2026-03-03T11:00:00.000Z",
    "contact": None,
    "keys": [
        {
            "id": "iloq-0001",
            "status": None,
            "storageInfo": {"deviceId": "000111", "pincode": "482913"},
            "inHistory": False,
        }
    ],
    "numberOfKeys": 1,
    "keyIds": None,
    "keyAutomatId": None,
    "groupId": "grp-helsinki",
    "pincode": "482913",
    "pincodes": ["482913"],
    "deviceId": "000111",
}
CONTRACT_OUT = open_obj(
    {
        "id": {"type": "string"},
        "contractType": {"type": "integer"},
        "keys": {"type": "array"},
        "pincode": {"type": ["string", "null"], "description": "The first key's pick-up pincode"},
        "pincodes": {"type": "array", "items": {"type": ["string", "null"]}},
        "deviceId": {"type": ["string", "null"], "description": "The automat of the first key"},
        "duplicatesRemoved": REMOVED_OUTPUT,
    },
    ["id", "keys", "pincodes"],
)
PINCODE = {"type": "string", "pattern": f"^[0-9]{{{V2_PINCODE_DIGITS}}}$"}


def with_pincodes(contract: JSON) -> JSON:
    """The contract plus the pick-up codes and automats of its keys, for later steps."""
    keys = contract.get("keys") or []
    codes = [(k.get("storageInfo") or {}).get("pincode") for k in keys]
    devices = [(k.get("storageInfo") or {}).get("deviceId") for k in keys]
    return {
        **contract,
        "pincodes": codes,
        "pincode": codes[0] if codes else None,
        "deviceId": devices[0] if devices else None,
    }


def contact_body(contact: JSON) -> JSON:
    """ContactInput: an explicit ``notifications`` object wins over the simple flags."""
    body = {
        k: v
        for k, v in contact.items()
        if k not in ("reminders", "sendSms", "sendEmail", "notifications")
    }
    if contact.get("notifications") is not None:
        body["notifications"] = contact["notifications"]
        return body
    sms, email = bool(contact.get("sendSms")), bool(contact.get("sendEmail"))
    if contact.get("reminders") is None:
        body.update(sendSms=sms, sendEmail=email)
        return body
    wanted = BASE_TYPES + (REMINDERS if contact["reminders"] else ())
    body["notifications"] = {t: {"sms": sms, "email": email} for t in wanted}
    return body


def contract_input(data: JSON) -> JSON:
    """The ``input`` of POST /iloq/keycontracts, checked per contract type before sending."""
    kind = data.get("contractType", "default")
    locations = [k for k in ("groupId", "keyAutomatId", "keyIds") if data.get(k)]
    if kind == "return":
        if not data.get("keyIds"):
            raise FatalError("$.input.keyIds: a return contract names the keys to return")
    elif len(locations) != 1:
        raise FatalError(
            "$.input: give exactly one pick-up location: groupId (automat group), keyAutomatId"
            f" (one automat) or keyIds (specific keys); got {locations or 'none'}"
        )
    if kind != "return" and not data.get("accessRightIds"):
        raise FatalError(
            f"$.input.accessRightIds: a {kind} contract needs the access rights to program"
        )
    if kind in ("default", "fetch") and data.get("start") is None:
        raise FatalError(f"$.input.start: a {kind} contract needs a start time")
    if kind == "default" and data.get("end") is None:
        raise FatalError(
            "$.input.end: a default contract needs an end time (use 'fetch' for no end)"
        )
    by_location = data.get("groupId") or data.get("keyAutomatId")
    if kind != "return" and by_location and not data.get("numberOfKeys"):
        raise FatalError("$.input.numberOfKeys: required with groupId or keyAutomatId")
    body: JSON = {"contractType": CONTRACT_TYPES[kind]}
    for name in ("groupId", "keyAutomatId", "keyIds", "numberOfKeys", "pincodes"):
        if data.get(name) is not None:
            body[name] = data[name]
    if kind != "return":
        body["accessRightIds"] = data["accessRightIds"]
    for name in ("start", "end"):
        if data.get(name) is not None:
            body[name] = iso_z(data[name])
    if data.get("contact"):
        body["contact"] = contact_body(data["contact"])
    return body


def key_count(data: JSON) -> int:
    """How many keys the contract hands over or takes back."""
    return len(data["keyIds"]) if data.get("keyIds") else int(data.get("numberOfKeys") or 0)


def _where(data: JSON) -> str:
    if data.get("groupId"):
        return f"automat group {data['groupId']!r}"
    if data.get("keyAutomatId"):
        return f"automat {data['keyAutomatId']!r}"
    return f"keys {', '.join(map(str, data.get('keyIds') or []))}"


async def create_iloq_contract(ctx: RunContext, data: JSON) -> JSON | Pending:
    """Create, or on a retry adopt, the contract carrying this step's pincodes (see
    ``v2_markers``); a contract made on a retry is checked for late copies later."""
    client, body = client_of(ctx), contract_input(data)
    if "pincodes" not in body:
        secret = str(client.connection.config.get("private_key_pem") or "")
        body["pincodes"] = marker_pincodes(secret, ctx.idempotency_key, key_count(data))
    own = verifying(ctx)
    if own is not None:
        found = [str(c["id"]) for c in await contracts_carrying(client, body)]
        delete = partial(_delete_contract, client)
        removed = await remove_copies(own, found, delete, "iLOQ key contract")
        contract = await client.request("GET", f"/iloq/keycontracts/{own}")
        return {**with_pincodes(contract), "duplicatesRemoved": removed}
    if ctx.attempt > 1 and (found_contracts := await contracts_carrying(client, body)):
        return await _adopt(client, found_contracts)
    try:
        contract = await client.request("POST", "/iloq/keycontracts", json_body={"input": body})
    except V2Error as exc:
        if exc.status == 400 and (found_contracts := await contracts_carrying(client, body)):
            return await _adopt(client, found_contracts)  # made meanwhile by a lost call
        if exc.status != 409:
            raise
        raise FatalError(
            f"LivionKey has no automat at {_where(data)} with {key_count(data)} key(s) available"
            f" for this handover (409: {exc.vendor_message}). Choose another location or fewer"
            " keys, or refill the automat."
        ) from exc
    if ctx.attempt > 1:
        return verify_later(ctx, data, str(contract["id"]))
    return with_pincodes(contract)


async def _adopt(client: V2Client, found: list[JSON]) -> JSON:
    """The first contract found is this step's; any other is a copy and is deleted."""
    own = str(found[0]["id"])
    ids = [str(c["id"]) for c in found]
    delete = partial(_delete_contract, client)
    removed = await remove_copies(own, ids, delete, "iLOQ key contract")
    return {**with_pincodes(found[0]), "duplicatesRemoved": removed}


async def get_iloq_contract(ctx: RunContext, data: JSON) -> JSON:
    return with_pincodes(await client_of(ctx).request("GET", f"/iloq/keycontracts/{data['id']}"))


async def update_iloq_contract(ctx: RunContext, data: JSON) -> JSON:
    body: JSON = {
        name: iso_z(data[name]) for name in ("start", "end") if data.get(name) is not None
    }
    if data.get("contact"):
        body["contact"] = contact_body(data["contact"])
    if not body:
        raise FatalError("$.input: give start, end or contact to change")
    try:
        contract = await client_of(ctx).request(
            "PATCH", f"/iloq/keycontracts/{data['id']}", json_body=body
        )
    except V2Error as exc:
        if exc.status != 409:
            raise
        raise FatalError(
            f"LivionKey refused the new times of contract {data['id']}: they overlap another"
            f" contract on the same key ({exc.vendor_message})"
        ) from exc
    return with_pincodes(contract)


async def _delete_contract(client: V2Client, contract_id: str) -> bool:
    """Delete a contract; False when it did not exist (already deleted)."""
    try:
        await client.request("DELETE", f"/iloq/keycontracts/{contract_id}")
    except V2Error as exc:
        if exc.status == 404:
            return False
        raise FatalError(
            f"LivionKey will not delete contract {contract_id} now ({exc.vendor_message}): a"
            " default contract cannot be deleted while a key is out; fetch and return contracts"
            " not while only some of their keys are done"
        ) from exc
    return True


async def delete_iloq_contract(ctx: RunContext, data: JSON) -> JSON:
    if not await _delete_contract(client_of(ctx), data["id"]):
        return {"deleted": True, "message": "the contract did not exist (already deleted)"}
    return {"deleted": True, "message": "deleted"}


async def list_iloq_contracts(ctx: RunContext, data: JSON) -> JSON:
    params = {name: True for name in ("ongoing", "ended", "future") if data.get(name)}
    items = await client_of(ctx).list_all("/iloq/keycontracts", params)
    contracts = [with_pincodes(c) for c in items]
    return {"contracts": contracts, "count": len(contracts)}


ACTIONS: list[Action] = [
    v2_action(
        "create_iloq_contract",
        "Hand over iLOQ keys (V2)",
        "Create an iLOQ key contract (POST /iloq/keycontracts): 'default' (start and end, key returned by the end), 'fetch' (no end) or 'return'. Pick-up by automat group, one automat, or key ids. Returns each key's pick-up pincode ('pincode' is the first). 409 'no keys available' fails with the location named. Safe to retry: a retry adopts the contract that carries this step's pincodes, and a contract made on a retry is checked verifyAfterSeconds later for a copy LivionKey applied late.",
        create_iloq_contract,
        obj(
            {
                "contractType": prop(
                    "string",
                    "default (start+end), fetch (no end) or return",
                    enum=list(CONTRACT_TYPES),
                    default="default",
                ),
                "groupId": prop("string", "Pick up at the best automat of this automat group"),
                "keyAutomatId": prop("string", "Pick up (or return) at this automat (device id)"),
                "keyIds": {
                    "type": "array",
                    "items": {"type": "string"},
                    "minItems": 1,
                    "description": "Specific iLOQ key ids (required for return contracts)",
                },
                "numberOfKeys": prop(
                    "integer", "How many keys (required with groupId or keyAutomatId)", minimum=1
                ),
                "accessRightIds": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "iLOQ access rights programmed into the keys at pick-up (default and fetch)",
                },
                "pincodes": {
                    "type": "array",
                    "items": PINCODE,
                    "description": f"One {V2_PINCODE_DIGITS}-digit pincode per key; when left out, chosen from the step's idempotency key (so a retry finds its contract)",
                },
                "start": moment("When the keys can be picked up"),
                "end": moment("When the keys must be back (default contracts)"),
                "contact": CONTACT
                | {
                    "description": "Who gets the keys, and which notifications LivionKey sends them"
                },
                "verifyAfterSeconds": VERIFY_INPUT,
            }
        ),
        CONTRACT_OUT,
        SAMPLE_CONTRACT,
        RetrySafety.RECONCILE,
    ),
    v2_action(
        "get_iloq_contract",
        "Get an iLOQ key contract (V2)",
        "One contract with each key's status and pincode (GET /iloq/keycontracts/{id}).",
        get_iloq_contract,
        obj({"id": CONTRACT_ID}, ["id"]),
        CONTRACT_OUT,
        SAMPLE_CONTRACT,
        RetrySafety.IDEMPOTENT,
    ),
    v2_action(
        "update_iloq_contract",
        "Update an iLOQ key contract (V2)",
        "Change a contract's start, end (e.g. extend a stay) or contact (PATCH /iloq/keycontracts/{id}).",
        update_iloq_contract,
        obj(
            {
                "id": CONTRACT_ID,
                "start": moment("New start"),
                "end": moment("New end"),
                "contact": CONTACT | {"description": "New contact (send the whole contact)"},
            },
            ["id"],
        ),
        CONTRACT_OUT,
        SAMPLE_CONTRACT,
        RetrySafety.IDEMPOTENT,
    ),
    v2_action(
        "delete_iloq_contract",
        "Delete an iLOQ key contract (V2)",
        "Cancel a contract (DELETE /iloq/keycontracts/{id}); refused while a default contract's key is out. A missing contract counts as deleted.",
        delete_iloq_contract,
        obj({"id": CONTRACT_ID}, ["id"]),
        open_obj({"deleted": {"type": "boolean"}}, ["deleted"]),
        {"deleted": True, "message": "deleted"},
        RetrySafety.IDEMPOTENT,
    ),
    v2_action(
        "list_iloq_contracts",
        "List iLOQ key contracts (V2)",
        "Contracts, optionally only ongoing, ended and/or future ones (GET /iloq/keycontracts, every page).",
        list_iloq_contracts,
        obj(
            {
                "ongoing": prop("boolean", "Include ongoing contracts"),
                "ended": prop("boolean", "Include ended contracts"),
                "future": prop("boolean", "Include future contracts"),
            }
        ),
        list_of("contracts"),
        {"contracts": [SAMPLE_CONTRACT], "count": 1},
        RetrySafety.IDEMPOTENT,
    ),
]
