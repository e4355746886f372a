"""API V1 key actions: add, change, read and remove the keys in a device (``/keys``)."""

from __future__ import annotations

from latchflow import JSON, Action, RetrySafety, RunContext
from latchflow_livionkey.schemas import obj, open_obj, prop
from latchflow_livionkey.v1_client import V1BusinessError, V1Client
from latchflow_livionkey.v1_fields import DEVICE_ID, KEY_ID, SAMPLE_KEY, client_of, v1_action


def _key_body(data: JSON, *leave_out: str) -> JSON:
    """The given fields of a key; V1 takes the locker index as a string."""
    body = {k: v for k, v in data.items() if v is not None and k not in leave_out}
    if "lockerIndex" in body:
        body["lockerIndex"] = str(body["lockerIndex"])
    return body


async def _read_key(client: V1Client, key_id: str, params: JSON) -> JSON:
    result = await client.request("GET", f"/keys/{key_id}", params=params)
    key: JSON = result[0] if isinstance(result, list) else result  # the doc wraps it in an array
    return key


async def create_key(ctx: RunContext, data: JSON) -> JSON:
    """Create the key, or on a retry adopt the key with its keyId (unique at LivionKey, so a
    late-applied call cannot make a second one: it is refused)."""
    client = client_of(ctx)
    if ctx.attempt > 1 and (made := await _made_key(client, data)) is not None:
        return made
    try:
        result = await client.request("POST", "/keys", json_body=_key_body(data))
    except V1BusinessError as exc:
        if exc.vendor_message != "key already exists with that keyId" or ctx.attempt == 1:
            raise
        made = await _made_key(client, data)  # made meanwhile by the lost call
        if made is None:
            raise
        return made
    return {
        "deviceId": data["deviceId"],
        "keyId": data["keyId"],
        "lockerIndex": result["lockerIndex"],
    }


async def _made_key(client: V1Client, data: JSON) -> JSON | None:
    """The key a lost call made: this keyId in this device with this name, if it exists."""
    try:
        key = await _read_key(client, data["keyId"], {"deviceId": data["deviceId"]})
    except V1BusinessError as exc:
        if exc.vendor_message != "no such key":
            raise
        return None
    if key.get("deviceId") != data["deviceId"] or key.get("keyName") != data["keyName"]:
        return None
    return {"deviceId": data["deviceId"], "keyId": data["keyId"], "lockerIndex": key["lockerIndex"]}


async def update_key(ctx: RunContext, data: JSON) -> JSON:
    body = _key_body(data, "keyId")
    message = await client_of(ctx).request("POST", f"/keys/{data['keyId']}", json_body=body)
    return {"updated": True, "message": str(message)}


async def delete_key(ctx: RunContext, data: JSON) -> JSON:
    try:
        message = await client_of(ctx).request(
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
    return await _read_key(client_of(ctx), data["keyId"], params)


async def get_key_status(ctx: RunContext, data: JSON) -> JSON:
    status: JSON = await client_of(ctx).request(
        "GET", f"/keys/{data['keyId']}/status", params={"deviceId": data["deviceId"]}
    )
    return {"status": status.get("action"), **status}


async def renew_key_backup_codes(ctx: RunContext, data: JSON) -> JSON:
    client = client_of(ctx)
    await client.request(
        "POST", f"/keys/{data['keyId']}/backupcodes", json_body={"deviceId": data["deviceId"]}
    )
    key = await _read_key(client, data["keyId"], {"deviceId": data["deviceId"]})
    return {"keyId": data["keyId"], "backupCodes": key.get("backupCodes", [])}


ACTIONS: list[Action] = [
    v1_action(
        "create_key",
        "Create a key (V1)",
        "Add a key to a device's locker (POST /keys). Shared keys allow overlapping contracts. Safe to retry: keyId is unique at LivionKey, and a retry adopts the key with this keyId, device and name.",
        create_key,
        obj(
            {
                "deviceId": DEVICE_ID,
                "keyId": KEY_ID,
                "keyName": prop("string", "Display name of the key"),
                "keyCode": prop("string", "Optional code printed on the key"),
                "lockerIndex": prop(
                    ["string", "integer"],
                    "Locker to use (default: first free)",
                    pattern="^[0-9]+$",
                    minimum=0,
                ),
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
        RetrySafety.RECONCILE,
    ),
    v1_action(
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
                "lockerIndex": prop(
                    ["string", "integer"], "New locker index", pattern="^[0-9]+$", minimum=0
                ),
                "checkLockerStatus": prop("boolean", "Let LivionKey check the locker's state"),
                "shared": prop("boolean", "Allow overlapping contracts"),
            },
            ["deviceId", "keyId"],
        ),
        open_obj({"updated": {"type": "boolean"}}, ["updated"]),
        {"updated": True, "message": "Key updated"},
        RetrySafety.IDEMPOTENT,
    ),
    v1_action(
        "delete_key",
        "Delete a key (V1)",
        "Remove a key from a device (DELETE /keys/{id}?deviceId=). A key that is already gone counts as deleted.",
        delete_key,
        obj({"deviceId": DEVICE_ID, "keyId": KEY_ID}, ["deviceId", "keyId"]),
        open_obj({"deleted": {"type": "boolean"}}, ["deleted"]),
        {"deleted": True, "message": "Key deleted"},
        RetrySafety.IDEMPOTENT,
    ),
    v1_action(
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
        RetrySafety.IDEMPOTENT,
    ),
    v1_action(
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
        RetrySafety.IDEMPOTENT,
    ),
    v1_action(
        "renew_key_backup_codes",
        "Renew a key's backup codes (V1)",
        "Generate new backup codes for a key (POST /keys/{id}/backupcodes) and return them. Renewing twice leaves one fresh set, read back after renewing, so a call whose answer was lost is sent again.",
        renew_key_backup_codes,
        obj({"deviceId": DEVICE_ID, "keyId": KEY_ID}, ["deviceId", "keyId"]),
        open_obj({"backupCodes": {"type": "array", "items": {"type": "string"}}}, ["backupCodes"]),
        {"keyId": "apt-101", "backupCodes": ["19283746", "56473829"]},
        RetrySafety.IDEMPOTENT,
    ),
]
