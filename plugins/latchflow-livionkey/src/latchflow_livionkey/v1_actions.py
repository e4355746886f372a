"""API V1 actions: devices, keys, contracts (connection type ``livionkey``)."""

from __future__ import annotations

from typing import Any

from latchflow import JSON, Action, FatalError, RunContext
from latchflow_livionkey.schemas import (
    VENDOR_V1,
    connection_of,
    iso_z,
    list_of,
    moment,
    obj,
    open_obj,
    prop,
)
from latchflow_livionkey.v1_client import V1BusinessError, V1Client

DEVICE_ID = prop("string", "LivionKey device id (e.g. '000111')")
KEY_ID = prop("string", "Your unique key id (keyId) in the device")
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
SAMPLE_CONTRACT = {
    "id": "60531613299ae000094cd278",
    "contractId": "booking-1001",
    "keyId": "apt-101",
    "devices": [{"id": "000111", "keyId": "apt-101"}],
    "pincode": "594395",
    "start": "2026-03-01T14:00:00.000Z",
    "end": "2026-03-03T11:00:00.000Z",
    "person": "Ada Lovelace",
    "contacts": [],
}
SAMPLE_KEY = {
    "keyId": "apt-101",
    "deviceId": "000111",
    "keyName": "Apartment 101",
    "lockerIndex": 0,
    "shared": False,
    "backupCodes": ["83920471"],
    "contracts": [],
}


def _client(ctx: RunContext) -> V1Client:
    return V1Client(connection_of(ctx, VENDOR_V1))


def _devices(data: JSON) -> list[dict[str, str]]:
    """The ``devices:[{id,keyId}]`` body from ``devices`` or ``deviceId`` + ``keyId``."""
    if data.get("devices"):
        return [{"id": d["deviceId"], "keyId": d["keyId"]} for d in data["devices"]]
    if data.get("deviceId") and data.get("keyId"):
        return [{"id": data["deviceId"], "keyId": data["keyId"]}]
    raise FatalError("$.input: give 'deviceId' and 'keyId', or 'devices'")


# --- devices ---------------------------------------------------------------------------------


async def list_devices(ctx: RunContext, data: JSON) -> JSON:
    client = _client(ctx)
    products = ",".join(data.get("products") or ["key30", "keyX"])
    if not data.get("includeLockers"):
        devices = await client.request("GET", "/devices", params={"products": products})
        return {"devices": devices, "count": len(devices)}
    found: list[JSON] = []
    after = 0
    while True:  # limit is required with extend=lockers, at most 50 (V1 §5.1)
        page = await client.request(
            "GET",
            "/devices",
            params={"products": products, "extend": "lockers", "limit": 50, "after": after},
        )
        found += [{"deviceId": d["id"], **d} for d in page["devices"]]
        after = page["pageInfo"]["end"]
        if not page["pageInfo"]["hasNext"]:
            return {"devices": found, "count": len(found)}


async def get_device(ctx: RunContext, data: JSON) -> JSON:
    params = {"extend": "lockers"} if data.get("includeLockers") else None
    device: JSON = await _client(ctx).request("GET", f"/devices/{data['deviceId']}", params=params)
    return device


async def list_device_keys(ctx: RunContext, data: JSON) -> JSON:
    keys = await _client(ctx).request("GET", f"/devices/{data['deviceId']}/keys")
    return {"keys": keys, "count": len(keys)}


async def list_device_contracts(ctx: RunContext, data: JSON) -> JSON:
    contracts = await _client(ctx).request("GET", f"/devices/{data['deviceId']}/contracts")
    return {"contracts": contracts, "count": len(contracts)}


async def list_contracts(ctx: RunContext, data: JSON) -> JSON:
    """The seed's ``GET /contracts``, built from documented calls (it is not in the apidoc)."""
    client = _client(ctx)
    if data.get("deviceId"):
        device_ids = [data["deviceId"]]
    else:
        devices = await client.request("GET", "/devices")
        device_ids = [d["deviceId"] for d in devices]
    seen: dict[str, JSON] = {}
    for device_id in device_ids:
        for contract in await client.request("GET", f"/devices/{device_id}/contracts"):
            if data.get("contractId") in (None, "", contract.get("contractId")):
                seen.setdefault(contract["id"], contract)
    contracts = list(seen.values())
    return {"contracts": contracts, "count": len(contracts)}


async def list_device_lockers(ctx: RunContext, data: JSON) -> JSON:
    result: JSON = await _client(ctx).request("GET", f"/devices/{data['deviceId']}/lockers")
    return result


async def open_locker_door(ctx: RunContext, data: JSON) -> JSON:
    message = await _client(ctx).request(
        "POST",
        f"/devices/{data['deviceId']}/opendoor",
        json_body={"lockerIndex": str(data["lockerIndex"])},
    )
    return {"sent": True, "message": str(message)}


# --- keys ------------------------------------------------------------------------------------


async def create_key(ctx: RunContext, data: JSON) -> JSON:
    body = {k: v for k, v in data.items() if v is not None}
    if "lockerIndex" in body:
        body["lockerIndex"] = str(body["lockerIndex"])
    result = await _client(ctx).request("POST", "/keys", json_body=body)
    return {
        "deviceId": data["deviceId"],
        "keyId": data["keyId"],
        "lockerIndex": result["lockerIndex"],
    }


async def update_key(ctx: RunContext, data: JSON) -> JSON:
    body = {k: v for k, v in data.items() if v is not None and k != "keyId"}
    if "lockerIndex" in body:
        body["lockerIndex"] = str(body["lockerIndex"])
    message = await _client(ctx).request("POST", f"/keys/{data['keyId']}", json_body=body)
    return {"updated": True, "message": str(message)}


async def delete_key(ctx: RunContext, data: JSON) -> JSON:
    try:
        message = await _client(ctx).request(
            "DELETE", f"/keys/{data['keyId']}", params={"deviceId": data["deviceId"]}
        )
    except V1BusinessError as exc:
        if exc.vendor_message != "no such key":
            raise
        return {"deleted": True, "message": "the key did not exist (already deleted)"}
    return {"deleted": True, "message": str(message)}


async def get_key(ctx: RunContext, data: JSON) -> JSON:
    params = {
        "deviceId": data.get("deviceId"),
        "keyStatus": "true" if data.get("includeStatus") else None,
    }
    result = await _client(ctx).request("GET", f"/keys/{data['keyId']}", params=params)
    key: JSON = result[0] if isinstance(result, list) else result  # the doc wraps it in an array
    return key


async def get_key_status(ctx: RunContext, data: JSON) -> JSON:
    status: JSON = await _client(ctx).request(
        "GET", f"/keys/{data['keyId']}/status", params={"deviceId": data["deviceId"]}
    )
    return {"status": status.get("action"), **status}


async def renew_key_backup_codes(ctx: RunContext, data: JSON) -> JSON:
    client = _client(ctx)
    await client.request(
        "POST", f"/keys/{data['keyId']}/backupcodes", json_body={"deviceId": data["deviceId"]}
    )
    key = await client.request(
        "GET", f"/keys/{data['keyId']}", params={"deviceId": data["deviceId"]}
    )
    key = key[0] if isinstance(key, list) else key
    return {"keyId": data["keyId"], "backupCodes": key.get("backupCodes", [])}


# --- contracts -------------------------------------------------------------------------------


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
    client = _client(ctx)
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
    contract: JSON = await _client(ctx).request("GET", f"/contracts/{data['id']}")
    return {"id": data["id"], **contract}


async def update_contract(ctx: RunContext, data: JSON) -> JSON:
    client = _client(ctx)
    body = {"devices": await _devices_of(client, data), **_contract_body(data)}
    await client.request("POST", f"/contracts/{data['id']}", json_body=body)
    contract = await client.request("GET", f"/contracts/{data['id']}")
    return {"id": data["id"], **contract}


async def update_contract_pincode(ctx: RunContext, data: JSON) -> JSON:
    client = _client(ctx)
    devices = await _devices_of(client, data)
    result = await client.request(
        "POST", f"/contracts/{data['id']}/pincode", json_body={"devices": devices}
    )
    return {"id": data["id"], "pincode": result["pincode"]}


async def delete_contract(ctx: RunContext, data: JSON) -> JSON:
    params = {"cancellation": "true" if data.get("sendCancellation") else None}
    try:
        message = await _client(ctx).request("DELETE", f"/contracts/{data['id']}", params=params)
    except V1BusinessError as exc:
        if exc.vendor_message != "Delete contract failed":
            raise
        raise FatalError(
            f"LivionKey could not delete contract {data['id']}: it does not exist (use the"
            " contract's object 'id') or it is in use"
        ) from exc
    return {"deleted": True, "message": str(message)}


# --- registration ----------------------------------------------------------------------------

WITH_LOCKERS = prop("boolean", "Also return each locker's state", default=False)
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


def _action(
    key: str,
    title: str,
    description: str,
    run: Any,
    schema: JSON,
    out: JSON,
    sample: JSON,
    idem: bool,
) -> Action:
    return Action(
        key=f"livionkey.{key}",
        title=title,
        description=description,
        input_schema=schema,
        output_schema=out,
        sample=sample,
        run=run,
        connection=VENDOR_V1,
        idempotent=idem,
    )


DEVICE_SAMPLE = {
    "deviceId": "000111",
    "name": "Lobby key automat",
    "tag": "livion/demo/000111",
    "connectionState": "connected",
}

ACTIONS: list[Action] = [
    _action(
        "list_devices",
        "List key automats (V1)",
        "All LivionKey30/LivionKey1 devices the account can see (GET /devices).",
        list_devices,
        obj(
            {
                "products": {
                    "type": "array",
                    "items": {"enum": ["key30", "keyX", "keypad"]},
                    "description": "Products to list (default key30 and keyX)",
                },
                "includeLockers": WITH_LOCKERS,
            }
        ),
        list_of("devices"),
        {"devices": [DEVICE_SAMPLE], "count": 1},
        True,
    ),
    _action(
        "get_device",
        "Get a key automat (V1)",
        "One device by its deviceId (GET /devices/{id}).",
        get_device,
        obj({"deviceId": DEVICE_ID, "includeLockers": WITH_LOCKERS}, ["deviceId"]),
        open_obj({"id": {"type": "string"}}, ["id"]),
        {"id": "000111", "name": "Lobby key automat"},
        True,
    ),
    _action(
        "list_device_keys",
        "List a device's keys (V1)",
        "Keys stored in a device, with their contracts (GET /devices/{id}/keys).",
        list_device_keys,
        obj({"deviceId": DEVICE_ID}, ["deviceId"]),
        list_of("keys"),
        {"keys": [SAMPLE_KEY], "count": 1},
        True,
    ),
    _action(
        "list_device_contracts",
        "List a device's contracts (V1)",
        "Contracts on a device's keys (GET /devices/{id}/contracts).",
        list_device_contracts,
        obj({"deviceId": DEVICE_ID}, ["deviceId"]),
        list_of("contracts"),
        {"contracts": [SAMPLE_CONTRACT], "count": 1},
        True,
    ),
    _action(
        "list_contracts",
        "List contracts (V1)",
        "Contracts of one device or of every device, optionally only those with a contractId (built from GET /devices/{id}/contracts; GET /contracts is not in the API spec).",
        list_contracts,
        obj(
            {
                "deviceId": prop("string", "Only this device (default: all devices)"),
                "contractId": prop(
                    "string", "Only contracts with this contractId (your reference)"
                ),
            }
        ),
        list_of("contracts"),
        {"contracts": [SAMPLE_CONTRACT], "count": 1},
        True,
    ),
    _action(
        "list_device_lockers",
        "List a device's lockers (V1)",
        "Live locker state: which lockers hold their key (GET /devices/{id}/lockers).",
        list_device_lockers,
        obj({"deviceId": DEVICE_ID}, ["deviceId"]),
        open_obj({"deviceId": {"type": "string"}, "lockers": {"type": "array"}}, ["lockers"]),
        {
            "deviceId": "000111",
            "lockers": [
                {
                    "lockerIndex": "0",
                    "state": "lockerWithKey",
                    "isKeyInside": True,
                    "key": {"id": "apt-101", "name": "Apartment 101"},
                }
            ],
        },
        True,
    ),
    _action(
        "open_locker_door",
        "Open a locker door (V1)",
        "Remotely open one locker of a LivionKey30/LivionKey1 (POST /devices/{id}/opendoor). A reserved or busy device is retried.",
        open_locker_door,
        obj(
            {
                "deviceId": DEVICE_ID,
                "lockerIndex": prop(["string", "integer"], "Locker index, from 0"),
            },
            ["deviceId", "lockerIndex"],
        ),
        open_obj({"sent": {"type": "boolean"}, "message": {"type": "string"}}, ["sent"]),
        {"sent": True, "message": "Command sent successfully"},
        False,
    ),
    _action(
        "create_key",
        "Create a key (V1)",
        "Add a key to a device's locker (POST /keys). Shared keys allow overlapping contracts.",
        create_key,
        obj(
            {
                "deviceId": DEVICE_ID,
                "keyId": KEY_ID,
                "keyName": prop("string", "Display name of the key"),
                "keyCode": prop("string", "Optional code printed on the key"),
                "lockerIndex": prop(["string", "integer"], "Locker to use (default: first free)"),
                "checkLockerStatus": prop("boolean", "Let LivionKey check the locker's state"),
                "shared": prop("boolean", "Allow overlapping contracts on this key", default=False),
            },
            ["deviceId", "keyId", "keyName"],
        ),
        open_obj(
            {
                "deviceId": {"type": "string"},
                "keyId": {"type": "string"},
                "lockerIndex": {"type": "integer"},
            },
            ["keyId", "lockerIndex"],
        ),
        {"deviceId": "000111", "keyId": "apt-104", "lockerIndex": 3},
        False,
    ),
    _action(
        "update_key",
        "Update a key (V1)",
        "Rename a key, move it to another locker or make it shared (POST /keys/{id}).",
        update_key,
        obj(
            {
                "deviceId": DEVICE_ID,
                "keyId": KEY_ID,
                "keyName": prop("string", "New display name"),
                "keyCode": prop("string", "New key code"),
                "lockerIndex": prop(["string", "integer"], "New locker index"),
                "checkLockerStatus": prop("boolean", "Let LivionKey check the locker's state"),
                "shared": prop("boolean", "Allow overlapping contracts"),
            },
            ["deviceId", "keyId"],
        ),
        open_obj({"updated": {"type": "boolean"}}, ["updated"]),
        {"updated": True, "message": "Key updated"},
        True,
    ),
    _action(
        "delete_key",
        "Delete a key (V1)",
        "Remove a key from a device (DELETE /keys/{id}?deviceId=). A key that is already gone counts as deleted.",
        delete_key,
        obj({"deviceId": DEVICE_ID, "keyId": KEY_ID}, ["deviceId", "keyId"]),
        open_obj({"deleted": {"type": "boolean"}}, ["deleted"]),
        {"deleted": True, "message": "Key deleted"},
        True,
    ),
    _action(
        "get_key",
        "Get a key (V1)",
        "One key with its contracts, optionally with each contract's key status (GET /keys/{id}).",
        get_key,
        obj(
            {
                "keyId": KEY_ID,
                "deviceId": prop("string", "The key's device (recommended)"),
                "includeStatus": prop(
                    "boolean", "Embed the key status in each contract", default=False
                ),
            },
            ["keyId"],
        ),
        open_obj({"keyId": {"type": "string"}}, ["keyId"]),
        SAMPLE_KEY,
        True,
    ),
    _action(
        "get_key_status",
        "Get a key's status (V1)",
        "The latest status of a key: key-added, key-fetched, key-returned or key-not-returned (GET /keys/{id}/status).",
        get_key_status,
        obj({"deviceId": DEVICE_ID, "keyId": KEY_ID}, ["deviceId", "keyId"]),
        open_obj(
            {"status": {"type": ["string", "null"]}, "timestamp": {"type": ["string", "null"]}},
            ["status"],
        ),
        {
            "status": "key-fetched",
            "id": "65f0c0ffee0000000000abcd",
            "timestamp": "2026-03-01T15:02:11.000Z",
            "action": "key-fetched",
            "data": {"after": {"lockerIndex": "0", "keyId": "apt-101"}},
        },
        True,
    ),
    _action(
        "renew_key_backup_codes",
        "Renew a key's backup codes (V1)",
        "Generate new backup codes for a key (POST /keys/{id}/backupcodes) and return them.",
        renew_key_backup_codes,
        obj({"deviceId": DEVICE_ID, "keyId": KEY_ID}, ["deviceId", "keyId"]),
        open_obj({"backupCodes": {"type": "array", "items": {"type": "string"}}}, ["backupCodes"]),
        {"keyId": "apt-101", "backupCodes": ["19283746", "56473829"]},
        False,
    ),
    _action(
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
    _action(
        "get_contract",
        "Get a key contract (V1)",
        "One contract by its object id (GET /contracts/{id}).",
        get_contract,
        obj({"id": CONTRACT_OBJECT_ID}, ["id"]),
        CONTRACT_OUT,
        SAMPLE_CONTRACT,
        True,
    ),
    _action(
        "update_contract",
        "Update a key contract (V1)",
        "Change a contract's times, person, contacts or pincode (POST /contracts/{id}); returns the updated contract. The keys default to the contract's own.",
        update_contract,
        obj({"id": CONTRACT_OBJECT_ID, **CONTRACT_FIELDS}, ["id"]),
        CONTRACT_OUT,
        SAMPLE_CONTRACT,
        True,
    ),
    _action(
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
    _action(
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
