"""API V1 contract actions: a person's pincode for a key for a time (``/contracts``)."""

from __future__ import annotations

from latchflow import JSON, Action, FatalError, RetrySafety, RunContext
from latchflow_livionkey.assumptions import V1_PINCODE_DIGITS
from latchflow_livionkey.schemas import iso_z, moment, obj, open_obj, prop
from latchflow_livionkey.v1_client import V1BusinessError, V1Client
from latchflow_livionkey.v1_fields import (
    DEVICE_ID,
    KEY_ID,
    SAMPLE_CONTRACT,
    client_of,
    v1_action,
)

CONTRACT_OBJECT_ID = prop(
    "string", "The contract's LivionKey object id ('id' from create/list), not your contractId"
)
LANGUAGES = ["fi-fi", "en-gb", "swe-swe", "no-no", "da-da"]
CONTACT = obj(
    {
        "name": prop("string", "Contact name"),
        "email": prop("string", "E-mail address for notifications"),
        "phoneNumber": prop("string", "Phone number in E.164 form, e.g. +358401234567"),
        "sendSms": prop("boolean", "Send the pincode by SMS", default=False),
        "sendEmail": prop("boolean", "Send the pincode by e-mail", default=False),
        "language": prop("string", "Notification language", enum=LANGUAGES, default="en-gb"),
    },
    ["email", "phoneNumber"],
)
DEVICES = {
    "type": "array",
    "minItems": 1,
    "description": "Keys the contract covers (instead of deviceId + keyId)",
    "items": obj({"deviceId": DEVICE_ID, "keyId": KEY_ID}, ["deviceId", "keyId"]),
}
CONTRACT_OUT = open_obj(
    {
        "id": {"type": "string"},
        "contractId": {"type": "string"},
        "pincode": {"type": ["string", "null"]},
        "start": {"type": ["string", "null"]},
        "end": {"type": ["string", "null"]},
        "devices": {"type": "array"},
    },
    ["id", "pincode"],
)


def _devices(data: JSON) -> list[dict[str, str]]:
    """The ``devices:[{id,keyId}]`` body from ``devices`` or ``deviceId`` + ``keyId``."""
    if data.get("devices"):
        return [{"id": d["deviceId"], "keyId": d["keyId"]} for d in data["devices"]]
    if data.get("deviceId") and data.get("keyId"):
        return [{"id": data["deviceId"], "keyId": data["keyId"]}]
    raise FatalError("$.input: give 'deviceId' and 'keyId', or 'devices'")


def _contract_body(data: JSON) -> JSON:
    body: JSON = {}
    if data.get("start") is not None:
        body["start"] = iso_z(data["start"])
    if data.get("permanent"):
        body["perm"], body["end"] = True, None
    elif data.get("end") is not None:
        body["end"] = iso_z(data["end"])
    for name in ("person", "contacts", "freeText", "pincode", "type"):
        if data.get(name) is not None:
            body[name] = data[name]
    return body


async def create_contract(ctx: RunContext, data: JSON) -> JSON:
    """LivionKey refuses a second contract with a contractId (which defaults to the step's
    idempotency key): a retry first looks for the contract with it, so that a refusal checked
    before uniqueness (a start now in the past) cannot hide it."""
    client = client_of(ctx)
    contract_id = data.get("contractId") or ctx.idempotency_key
    devices = _devices(data)
    if data.get("permanent") and data.get("end") is not None:
        raise FatalError("$.input.end: a permanent contract has no end; leave end out")
    if not data.get("permanent") and data.get("end") is None:
        raise FatalError("$.input.end: give an end time, or set permanent: true")
    body = {"contractId": contract_id, "devices": devices, **_contract_body(data)}
    result = await _find_contract(client, body) if ctx.attempt > 1 else None
    if result is None:
        try:
            result = await client.request("POST", "/contracts", json_body=body)
        except V1BusinessError as exc:
            if exc.vendor_message != "ContractId already in use":
                raise
            result = await _find_contract(client, body)  # made by a call whose answer was lost
            if result is None:
                raise
    return {
        "id": result["id"],
        "contractId": contract_id,
        "pincode": result["pincode"],
        "start": body["start"],
        "end": body.get("end"),
        "devices": devices,
    }


async def _find_contract(client: V1Client, body: JSON) -> JSON | None:
    """The contract with the body's contractId, if it has the body's keys and start."""
    device_id = body["devices"][0]["id"]
    for contract in await client.request("GET", f"/devices/{device_id}/contracts"):
        if (
            contract.get("contractId") == body["contractId"]
            and contract.get("devices") == body["devices"]
            and contract.get("start") == body["start"]
        ):
            found: JSON = contract
            return found
    return None


async def _devices_of(client: V1Client, data: JSON) -> list[dict[str, str]]:
    if data.get("devices") or data.get("keyId"):
        return _devices(data)
    contract = await client.request("GET", f"/contracts/{data['id']}")
    return [{"id": d["id"], "keyId": d["keyId"]} for d in contract["devices"]]


async def get_contract(ctx: RunContext, data: JSON) -> JSON:
    contract: JSON = await client_of(ctx).request("GET", f"/contracts/{data['id']}")
    return {"id": data["id"], **contract}


async def update_contract(ctx: RunContext, data: JSON) -> JSON:
    client = client_of(ctx)
    body = {"devices": await _devices_of(client, data), **_contract_body(data)}
    await client.request("POST", f"/contracts/{data['id']}", json_body=body)
    contract = await client.request("GET", f"/contracts/{data['id']}")
    return {"id": data["id"], **contract}


async def update_contract_pincode(ctx: RunContext, data: JSON) -> JSON:
    client = client_of(ctx)
    devices = await _devices_of(client, data)
    result = await client.request(
        "POST", f"/contracts/{data['id']}/pincode", json_body={"devices": devices}
    )
    return {"id": data["id"], "pincode": result["pincode"]}


async def delete_contract(ctx: RunContext, data: JSON) -> JSON:
    client = client_of(ctx)
    params = {"cancellation": "true" if data.get("sendCancellation") else None}
    try:
        message = await client.request("DELETE", f"/contracts/{data['id']}", params=params)
    except V1BusinessError as exc:
        if exc.vendor_message != "Delete contract failed":
            raise
        if await _is_gone(client, data["id"]):
            return {"deleted": True, "message": "the contract did not exist (already deleted)"}
        raise FatalError(
            f"LivionKey could not delete contract {data['id']} (Delete contract failed),"
            " although it exists: try again later, or delete it in the LivionKey app"
        ) from exc
    return {"deleted": True, "message": str(message)}


async def _is_gone(client: V1Client, contract_id: str) -> bool:
    try:
        await client.request("GET", f"/contracts/{contract_id}")
    except V1BusinessError as exc:
        if exc.vendor_message == "Contract not found":
            return True
        raise
    return False


CONTRACT_FIELDS: dict[str, JSON] = {
    "deviceId": DEVICE_ID,
    "keyId": KEY_ID,
    "devices": DEVICES,
    "start": moment("When the pincode starts to work; must be in the future"),
    "end": moment("When the key must be back (not with permanent)"),
    "permanent": prop("boolean", "A permanent contract without an end", default=False),
    "person": prop("string", "The key holder's name"),
    "contacts": {"type": "array", "items": CONTACT, "description": "Who gets notifications"},
    "freeText": prop("string", "Text appended to the notification e-mails"),
    "pincode": prop(
        "string",
        f"The {V1_PINCODE_DIGITS}-digit pincode to use; generated when left out",
        pattern=f"^[0-9]{{{V1_PINCODE_DIGITS}}}$",
    ),
}

ACTIONS: list[Action] = [
    v1_action(
        "create_contract",
        "Create a key contract (V1)",
        "Give a person a pincode for a key for a time (POST /contracts). Overlaps on private keys, reused pincodes and starts in the past fail with a clear message. Safe to retry: contractId (default: the step's idempotency key) is unique at LivionKey, and a retry adopts the contract with it.",
        create_contract,
        obj(
            {
                "contractId": prop("string", "Your unique reference, e.g. the booking number"),
                **CONTRACT_FIELDS,
                "type": prop(
                    "string",
                    "default, fetch (pick-up only) or return (return only)",
                    enum=["default", "fetch", "return"],
                ),
            },
            ["start", "person", "contacts"],
        ),
        CONTRACT_OUT,
        {
            "id": "60531613299ae000094cd278",
            "contractId": "booking-1001",
            "pincode": "594395",
            "start": "2026-03-01T14:00:00.000Z",
            "end": "2026-03-03T11:00:00.000Z",
            "devices": [{"id": "000111", "keyId": "apt-101"}],
        },
        RetrySafety.IDEMPOTENCY_KEY,
    ),
    v1_action(
        "get_contract",
        "Get a key contract (V1)",
        "One contract by its object id (GET /contracts/{id}).",
        get_contract,
        obj({"id": CONTRACT_OBJECT_ID}, ["id"]),
        CONTRACT_OUT,
        SAMPLE_CONTRACT,
        RetrySafety.IDEMPOTENT,
    ),
    v1_action(
        "update_contract",
        "Update a key contract (V1)",
        "Change a contract's times, person, contacts or pincode (POST /contracts/{id}); returns the updated contract. The keys default to the contract's own.",
        update_contract,
        obj({"id": CONTRACT_OBJECT_ID, **CONTRACT_FIELDS}, ["id"]),
        CONTRACT_OUT,
        SAMPLE_CONTRACT,
        RetrySafety.IDEMPOTENT,
    ),
    v1_action(
        "update_contract_pincode",
        "Renew a contract's pincode (V1)",
        "Have LivionKey generate a new pincode for a contract (POST /contracts/{id}/pincode). Renewing twice leaves one fresh pincode, the one returned, so a call whose answer was lost is sent again.",
        update_contract_pincode,
        obj(
            {"id": CONTRACT_OBJECT_ID, "deviceId": DEVICE_ID, "keyId": KEY_ID, "devices": DEVICES},
            ["id"],
        ),
        open_obj({"id": {"type": "string"}, "pincode": {"type": "string"}}, ["id", "pincode"]),
        {"id": "60531613299ae000094cd278", "pincode": "771204"},
        RetrySafety.IDEMPOTENT,
    ),
    v1_action(
        "delete_contract",
        "Delete a key contract (V1)",
        "Delete a contract, optionally sending the holder a cancellation notice (DELETE /contracts/{id}). A contract that is already gone counts as deleted.",
        delete_contract,
        obj(
            {
                "id": CONTRACT_OBJECT_ID,
                "sendCancellation": prop(
                    "boolean", "LivionKey notifies the contacts of the cancellation", default=False
                ),
            },
            ["id"],
        ),
        open_obj({"deleted": {"type": "boolean"}}, ["deleted"]),
        {"deleted": True, "message": "Contract deleted successfully"},
        RetrySafety.IDEMPOTENT,
    ),
]
