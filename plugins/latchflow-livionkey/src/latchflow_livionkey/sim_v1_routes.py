"""The HTTP routes of the API V1 simulator (see ``sim_v1`` for its state and rules)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response

from latchflow_livionkey.assumptions import V1_REFUSALS
from latchflow_livionkey.sim_common import json_body

if TYPE_CHECKING:
    from latchflow_livionkey.sim_v1 import V1Sim


def add_routes(app: FastAPI, sim: V1Sim, auth: Any) -> None:
    from latchflow_livionkey.sim_v1 import Refusal, text

    deps = [auth]

    # --- devices -----------------------------------------------------------------------------
    @app.get("/devices", dependencies=deps)
    async def list_devices(
        products: str | None = None,
        extend: str | None = None,
        limit: int | None = None,
        after: int | None = None,
    ) -> Any:
        wanted = set((products or "key30,keyX").replace("[", "").replace("]", "").split(","))
        devices = [d for d in sim.devices.values() if d["product"] in wanted]
        lockers = extend == "lockers"
        if lockers and limit is None:
            raise Refusal("limit is required with extend=lockers")
        if limit is None:
            return [sim.device_view(d, False, "list") for d in devices]
        if limit > 50 and lockers:
            raise Refusal("limit must be at most 50 with extend=lockers")
        start = after or 0
        page = devices[start : start + limit]
        return {
            "devices": [sim.device_view(d, lockers, "page") for d in page],
            "pageInfo": {
                "start": start,
                "end": start + len(page),
                "hasNext": start + limit < len(devices),
            },
        }

    @app.get("/devices/{device_id}", dependencies=deps)
    async def get_device(device_id: str, extend: str | None = None) -> Any:
        view = sim.device_view(sim.device(device_id), extend == "lockers", "page")
        view.pop("product")
        return view

    @app.get("/devices/{device_id}/keys", dependencies=deps)
    async def device_keys(device_id: str) -> Any:
        if device_id not in sim.devices:
            raise Refusal("Device keys not found")
        return [sim.key_view(k, False) for (d, _), k in sim.keys.items() if d == device_id]

    @app.get("/devices/{device_id}/contracts", dependencies=deps)
    async def device_contracts(device_id: str) -> Any:
        if device_id not in sim.devices:
            raise Refusal("No devices")
        return [
            sim.contract_view(c)
            for c in sim.contracts.values()
            if any(d["id"] == device_id for d in c["devices"])
        ]

    @app.get("/devices/{device_id}/lockers", dependencies=deps)
    async def device_lockers(device_id: str) -> Any:
        return {"deviceId": device_id, "lockers": sim.lockers(device_id)}

    @app.get("/devices/{device_id}/lockers/{index}", dependencies=deps)
    async def device_locker(device_id: str, index: str) -> Any:
        lockers = sim.lockers(device_id)
        if not index.isdigit():
            raise Refusal("malformed locker index")
        if int(index) >= len(lockers):
            raise Refusal("locker not found", 404)
        return {"deviceId": device_id, "locker": lockers[int(index)]}

    @app.post("/devices/{device_id}/opendoor", dependencies=deps)
    async def open_door(device_id: str, request: Request) -> Response:
        body = await json_body(request)
        if not isinstance(body, dict):
            raise Refusal("body is required")
        if body.get("lockerIndex") in (None, ""):
            raise Refusal("lockerIndex is required")
        lockers = sim.lockers(device_id)
        if _locker_index(body["lockerIndex"]) >= len(lockers):
            raise Refusal("Locker index is too big")
        return text("Command sent successfully")

    # --- keys --------------------------------------------------------------------------------
    @app.post("/keys", dependencies=deps)
    async def create_key(request: Request) -> Any:
        body = await json_body(request)
        if not isinstance(body, dict) or not body:
            raise Refusal("body is required")
        for name in ("deviceId", "keyId"):
            if not body.get(name):
                raise Refusal(f"{name} is required")
        if not body.get("keyName"):
            raise Refusal(V1_REFUSALS["no_key_name"])
        device_id, key_id = str(body["deviceId"]), str(body["keyId"])
        if device_id not in sim.devices:
            raise Refusal("no such device")
        if any(k == key_id for (_, k) in sim.keys):
            raise Refusal("key already exists with that keyId")
        index = _locker_for(sim, device_id, body.get("lockerIndex"), None)
        sim.add_key(
            device_id,
            key_id,
            str(body["keyName"]),
            index,
            bool(body.get("shared")),
            body.get("keyCode"),
        )
        return {"lockerIndex": int(index)}

    @app.post("/keys/{key_id}", dependencies=deps)
    async def update_key(key_id: str, request: Request) -> Response:
        body = await json_body(request)
        if not isinstance(body, dict) or not body:
            raise Refusal("body is required")
        if not body.get("deviceId"):
            raise Refusal("deviceId is required")
        if body["deviceId"] not in sim.devices:
            raise Refusal("no such device")
        key = sim.find_key(key_id, str(body["deviceId"]))
        if body.get("lockerIndex") is not None:
            key["lockerIndex"] = _locker_for(sim, key["deviceId"], body["lockerIndex"], key_id)
        for name in ("keyName", "keyCode", "shared"):
            if body.get(name) is not None:
                key[name] = body[name]
        return text("Key updated")

    @app.delete("/keys/{key_id}", dependencies=deps)
    async def delete_key(key_id: str, deviceId: str | None = None) -> Response:
        if not deviceId:
            raise Refusal("Missing deviceId from query parameters")
        key = sim.find_key(key_id, deviceId)
        del sim.keys[(key["deviceId"], key_id)]
        return text("Key deleted")

    async def get_key(
        key_id: str, deviceId: str | None = None, keyStatus: str | None = None
    ) -> Any:
        return [sim.key_view(sim.find_key(key_id, deviceId), keyStatus == "true")]

    async def key_status(key_id: str, deviceId: str | None = None) -> Any:
        if not deviceId:
            raise Refusal("Missing deviceId from query parameters")
        key = sim.find_key(key_id, deviceId)
        return sim.statuses[(key["deviceId"], key_id)][-1]

    # The seed page writes /key/{keyId}[/status]; the apidoc /keys/...: accept both.
    for prefix in ("/keys", "/key"):
        app.add_api_route(f"{prefix}/{{key_id}}", get_key, methods=["GET"], dependencies=deps)
        app.add_api_route(
            f"{prefix}/{{key_id}}/status", key_status, methods=["GET"], dependencies=deps
        )

    @app.post("/keys/{key_id}/backupcodes", dependencies=deps)
    async def backup_codes(key_id: str, request: Request) -> Response:
        from latchflow_livionkey.sim_common import pincode

        body = await json_body(request)
        if not isinstance(body, dict) or not body.get("deviceId"):
            raise Refusal("deviceId is required")
        if body["deviceId"] not in sim.devices:
            raise Refusal("no such device")
        key = sim.find_key(key_id, str(body["deviceId"]))
        key["backupCodes"] = [pincode(set(), 8) for _ in range(2)]
        return text("Key backup codes updated")

    # --- contracts ---------------------------------------------------------------------------
    @app.post("/contracts", dependencies=deps)
    async def create_contract(request: Request) -> Any:
        contract = sim.create_contract(await json_body(request))
        await sim.push_contract(contract)
        return {"id": contract["id"], "pincode": contract["pincode"]}

    @app.get("/contracts", dependencies=deps)
    async def list_contracts() -> Any:
        # Not in the apidoc (V1 §8 "GET /contracts list"); offered, but the client avoids it.
        return [sim.contract_view(c) for c in sim.contracts.values()]

    @app.get("/contracts/{contract_id}", dependencies=deps)
    async def get_contract(contract_id: str) -> Any:
        contract = sim.contracts.get(contract_id)
        if contract is None:
            raise Refusal("Contract not found")
        view = sim.contract_view(contract)
        return {
            k: view[k]
            for k in (
                "keyId",
                "devices",
                "contractId",
                "pincode",
                "start",
                "end",
                "person",
                "contacts",
            )
        }

    @app.post("/contracts/{contract_id}", dependencies=deps)
    async def update_contract(contract_id: str, request: Request) -> Response:
        contract = sim.update_contract(contract_id, await json_body(request))
        await sim.push_contract(contract)
        return text("Contract updated")

    @app.post("/contracts/{contract_id}/pincode", dependencies=deps)
    async def new_pincode(contract_id: str, request: Request) -> Any:
        from latchflow_livionkey.assumptions import V1_PINCODE_DIGITS
        from latchflow_livionkey.sim_common import pincode

        body = await json_body(request)
        devices = sim.check_devices((body or {}).get("devices"))
        contract = sim.contracts.get(contract_id)
        if contract is None:
            raise Refusal("Contract not found")
        contract["pincode"] = pincode(sim.used_pincodes(devices, None), V1_PINCODE_DIGITS)
        await sim.push_contract(contract)
        return {"pincode": contract["pincode"]}

    @app.delete("/contracts/{contract_id}", dependencies=deps)
    async def delete_contract(contract_id: str, cancellation: bool = False) -> Response:
        if sim.contracts.pop(contract_id, None) is None:
            raise Refusal("Delete contract failed")
        return text("Contract deleted successfully")

    # --- simulator controls ------------------------------------------------------------------
    @app.get("/_sim/v1/state", tags=["simulator"])
    async def state() -> dict[str, Any]:
        """Every key and contract, as tests count what an action made."""
        return {
            "keys": [sim.key_view(k, False) for k in sim.keys.values()],
            "contracts": [sim.contract_view(c) for c in sim.contracts.values()],
        }

    @app.get("/_sim/v1/stats", tags=["simulator"])
    async def stats() -> dict[str, int]:
        return {"logins": sim.logins, "unauthorized": sim.unauthorized}

    @app.post("/_sim/v1/revoke-tokens", tags=["simulator"])
    async def revoke() -> dict[str, bool]:
        sim.revoked_before = sim.now().timestamp() + 0.001
        return {"revoked": True}

    @app.post("/_sim/v1/push", tags=["simulator"])
    async def push_target(request: Request) -> dict[str, Any]:
        body = await json_body(request) or {}
        if body.get("url") and body["url"] not in sim.state.webhook_urls:
            sim.state.webhook_urls.append(body["url"])
        if body.get("headerName"):
            sim.push_headers = {str(body["headerName"]): str(body.get("headerValue") or "")}
        return {"urls": sim.state.webhook_urls, "headers": sorted(sim.push_headers)}

    @app.post("/_sim/v1/enter-pincode", tags=["simulator"])
    async def enter_pincode(request: Request) -> dict[str, Any]:
        body = await json_body(request) or {}
        device_id, code = str(body.get("deviceId")), str(body.get("pincode"))
        now = sim.now()
        for contract in sim.contracts.values():
            from latchflow_livionkey.sim_common import parse_time

            start, end = parse_time(contract["start"]), parse_time(contract["end"])
            active = start is not None and start <= now and (end is None or now < end)
            device = next((d for d in contract["devices"] if d["id"] == device_id), None)
            if contract["pincode"] != code or device is None or not active:
                continue
            key = sim.keys[(device_id, device["keyId"])]
            if not key["inside"]:
                return {"opened": False, "reason": "key is not in the locker"}
            await sim.push(
                {
                    "type": "right-pincode",
                    "code": code,
                    "deviceId": device_id,
                    "lockerIndex": key["lockerIndex"],
                    "keyId": key["keyId"],
                    "contractId": contract["contractId"],
                    "contractObjectId": contract["id"],
                    "time": contract["start"],
                    "tag": sim.devices[device_id]["tag"],
                }
            )
            key["inside"] = False
            contract["_fetched"] = True
            await sim.key_event(device_id, key["keyId"], "key-fetched", contract)
            return {"opened": True, "keyId": key["keyId"], "lockerIndex": key["lockerIndex"]}
        return {"opened": False, "reason": "no active contract with this pincode"}

    @app.post("/_sim/v1/return-key", tags=["simulator"])
    async def return_key(request: Request) -> dict[str, Any]:
        body = await json_body(request) or {}
        key = sim.find_key(str(body.get("keyId")), str(body.get("deviceId")))
        key["inside"] = True
        contract = next(
            (
                c
                for c in sim.contracts.values()
                if c["_fetched"] and {"id": key["deviceId"], "keyId": key["keyId"]} in c["devices"]
            ),
            None,
        )
        if contract is not None:
            contract["_fetched"] = False
        await sim.key_event(key["deviceId"], key["keyId"], "key-returned", contract)
        return {"returned": True}


def _locker_index(value: Any) -> int:
    """A locker index sent as a string (or number) of digits; anything else is refused."""
    from latchflow_livionkey.sim_v1 import Refusal

    text = str(value)
    if isinstance(value, bool) or not (text.isascii() and text.isdigit()):
        raise Refusal(V1_REFUSALS["bad_locker_index"])
    return int(text)


def _locker_for(sim: V1Sim, device_id: str, wanted: Any, key_id: str | None) -> str:
    from latchflow_livionkey.sim_v1 import LOCKERS, Refusal

    size = LOCKERS[sim.devices[device_id]["product"]]
    taken = {
        k["lockerIndex"] for (d, kid), k in sim.keys.items() if d == device_id and kid != key_id
    }
    if wanted not in (None, ""):
        if _locker_index(wanted) >= size:
            raise Refusal("lockerIndex is too big")
        return str(_locker_index(wanted))
    for index in range(size):
        if str(index) not in taken:
            return str(index)
    raise Refusal("no free lockers")
