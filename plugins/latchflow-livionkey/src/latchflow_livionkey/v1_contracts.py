"""API V1 contract actions: a person's pincode for a key for a time (``/contracts``)."""

from __future__ import annotations

from latchflow import JSON, Action, FatalError, RunContext
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
    client = client_of(ctx)
    contract_id = data.get("contractId") or ctx.idempotency_key
    devices = _devices(data)
    if not data.get("permanent") and data.get("end") is None:
        raise FatalError("$.input.end: give an end time, or set permanent: true")
    body = {"contractId": contract_id, "devices": devices, **_contract_body(data)}
    try:
        result = await client.request("POST", "/contracts", json_body=body)
    except V1BusinessError as exc:
        if exc.vendor_message != "ContractId already in use":
            raise
        # A retry after a lost answer: the contract is ours if it has the same keys and times.
        existing = await _find_contract(client, contract_id, devices)
        if existing is None or existing.get("start") != body["start"]:
            raise
        result = existing
    return {
        "id": result["id"],
        "contractId": contract_id,
        "pincode": result["pincode"],
        "start": body["start"],
        "end": body.get("end"),
        "devices": devices,
    }


async def _find_contract(
    client: V1Client, contract_id: str, devices: list[dict[str, str]]
) -> JSON | None:
    for contract in await client.request("GET", f"/devices/{devices[0]['id']}/contracts"):
        if contract.get("contractId") == contract_id and contract.get("devices") == devices:
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
    params = {"cancellation": "true" if data.get("sendCancellation") else None}
    try:
        message = await client_of(ctx).request("DELETE", f"/contracts/{data['id']}", params=params)
    except V1BusinessError as exc:
        if exc.vendor_message != "Delete contract failed":
            raise
        raise FatalError(
            f"LivionKey could not delete contract {data['id']}: it does not exist (use the"
            " contract's object 'id') or it is in use"
        ) from exc
    return {"deleted": True, "message": str(message)}


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
        "string", "The pincode to use; generated when left out", pattern="^[0-9]{4,10}$"
    ),
}

ACTIONS: list[Action] = [
    v1_action(
        "create_contract",
        "Create a key contract (V1)",
        "Give a person a pincode for a key for a time (POST /contracts). Overlaps on private keys, reused pincodes and starts in the past fail with a clear message. contractId defaults to the step's idempotency key, so a retried step finds its own contract.",
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
        True,
    ),
    v1_action(
        "get_contract",
        "Get a key contract (V1)",
        "One contract by its object id (GET /contracts/{id}).",
        get_contract,
        obj({"id": CONTRACT_OBJECT_ID}, ["id"]),
        CONTRACT_OUT,
        SAMPLE_CONTRACT,
        True,
    ),
    v1_action(
        "update_contract",
        "Update a key contract (V1)",
        "Change a contract's times, person, contacts or pincode (POST /contracts/{id}); returns the updated contract. The keys default to the contract's own.",
        update_contract,
        obj({"id": CONTRACT_OBJECT_ID, **CONTRACT_FIELDS}, ["id"]),
        CONTRACT_OUT,
        SAMPLE_CONTRACT,
        True,
    ),
    v1_action(
        "update_contract_pincode",
        "Renew a contract's pincode (V1)",
        "Have LivionKey generate a new pincode for a contract (POST /contracts/{id}/pincode).",
        update_contract_pincode,
        obj(
            {"id": CONTRACT_OBJECT_ID, "deviceId": DEVICE_ID, "keyId": KEY_ID, "devices": DEVICES},
            ["id"],
        ),
        open_obj({"id": {"type": "string"}, "pincode": {"type": "string"}}, ["id", "pincode"]),
        {"id": "60531613299ae000094cd278", "pincode": "771204"},
        False,
    ),
    v1_action(
        "delete_contract",
        "Delete a key contract (V1)",
        "Delete a contract, optionally sending the holder a cancellation notice (DELETE /contracts/{id}).",
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
        False,
    ),
]
