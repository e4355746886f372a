"""API V1 device actions: key automats, their keys, contracts and lockers (``/devices``)."""

from __future__ import annotations

from latchflow import JSON, Action, RetrySafety, RunContext
from latchflow_livionkey.deadline import DEADLINE_INPUT, RETRY_WITHIN_DEADLINE, open_in_time
from latchflow_livionkey.schemas import list_of, obj, open_obj, prop
from latchflow_livionkey.v1_fields import (
    DEVICE_ID,
    SAMPLE_CONTRACT,
    SAMPLE_KEY,
    client_of,
    v1_action,
)


async def list_devices(ctx: RunContext, data: JSON) -> JSON:
    client = client_of(ctx)
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
    device: JSON = await client_of(ctx).request(
        "GET", f"/devices/{data['deviceId']}", params=params
    )
    return device


async def list_device_keys(ctx: RunContext, data: JSON) -> JSON:
    keys = await client_of(ctx).request("GET", f"/devices/{data['deviceId']}/keys")
    return {"keys": keys, "count": len(keys)}


async def list_device_contracts(ctx: RunContext, data: JSON) -> JSON:
    contracts = await client_of(ctx).request("GET", f"/devices/{data['deviceId']}/contracts")
    return {"contracts": contracts, "count": len(contracts)}


async def list_contracts(ctx: RunContext, data: JSON) -> JSON:
    """The seed's ``GET /contracts``, built from documented calls (it is not in the apidoc)."""
    client = client_of(ctx)
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
    result: JSON = await client_of(ctx).request("GET", f"/devices/{data['deviceId']}/lockers")
    return result


async def open_locker_door(ctx: RunContext, data: JSON) -> JSON:
    client, index = client_of(ctx), str(data["lockerIndex"])

    async def open_door(seconds_left: float) -> object:
        return await client.request(
            "POST",
            f"/devices/{data['deviceId']}/opendoor",
            json_body={"lockerIndex": index},
            within=seconds_left,
        )

    what = f"locker {index} of device {data['deviceId']}"
    message = await open_in_time(ctx, data, what, open_door)
    return {"sent": True, "message": str(message)}


WITH_LOCKERS = prop("boolean", "Also return each locker's state", default=False)
DEVICE_SAMPLE = {
    "deviceId": "000111",
    "name": "Lobby key automat",
    "tag": "livion/demo/000111",
    "connectionState": "connected",
}

ACTIONS: list[Action] = [
    v1_action(
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
        RetrySafety.IDEMPOTENT,
    ),
    v1_action(
        "get_device",
        "Get a key automat (V1)",
        "One device by its deviceId (GET /devices/{id}).",
        get_device,
        obj({"deviceId": DEVICE_ID, "includeLockers": WITH_LOCKERS}, ["deviceId"]),
        open_obj({"id": {"type": "string"}}, ["id"]),
        {"id": "000111", "name": "Lobby key automat"},
        RetrySafety.IDEMPOTENT,
    ),
    v1_action(
        "list_device_keys",
        "List a device's keys (V1)",
        "Keys stored in a device, with their contracts (GET /devices/{id}/keys).",
        list_device_keys,
        obj({"deviceId": DEVICE_ID}, ["deviceId"]),
        list_of("keys"),
        {"keys": [SAMPLE_KEY], "count": 1},
        RetrySafety.IDEMPOTENT,
    ),
    v1_action(
        "list_device_contracts",
        "List a device's contracts (V1)",
        "Contracts on a device's keys (GET /devices/{id}/contracts).",
        list_device_contracts,
        obj({"deviceId": DEVICE_ID}, ["deviceId"]),
        list_of("contracts"),
        {"contracts": [SAMPLE_CONTRACT], "count": 1},
        RetrySafety.IDEMPOTENT,
    ),
    v1_action(
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
        RetrySafety.IDEMPOTENT,
    ),
    v1_action(
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
        RetrySafety.IDEMPOTENT,
    ),
    v1_action(
        "open_locker_door",
        "Open a locker door (V1)",
        "Remotely open one locker of a LivionKey30/LivionKey1 (POST /devices/{id}/opendoor). A reserved or busy device is retried until deadlineSeconds after the step started; then the step fails as 'locker not opened in time', so a locker never opens long after it was asked to. Opening an opened locker again changes nothing, so a call whose answer was lost is sent again.",
        open_locker_door,
        obj(
            {
                "deviceId": DEVICE_ID,
                "lockerIndex": prop(
                    ["string", "integer"], "Locker index, from 0", pattern="^[0-9]+$", minimum=0
                ),
                "deadlineSeconds": DEADLINE_INPUT,
            },
            ["deviceId", "lockerIndex"],
        ),
        open_obj({"sent": {"type": "boolean"}, "message": {"type": "string"}}, ["sent"]),
        {"sent": True, "message": "Command sent successfully"},
        RetrySafety.IDEMPOTENT,
        RETRY_WITHIN_DEADLINE,
    ),
]
