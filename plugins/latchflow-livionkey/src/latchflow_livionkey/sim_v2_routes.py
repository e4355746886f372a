"""The HTTP side of the API V2 simulator: signature checks and routes under ``/v2``."""

from __future__ import annotations

import uuid
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from latchflow.simulation import add_sim_controls, received_at
from latchflow_livionkey import sim_v2_contracts, v2_signing
from latchflow_livionkey.assumptions import (
    V2_PINCODE_DIGITS,
    V2_REFUSALS,
    V2_TIMESTAMP_TOLERANCE_SECONDS,
)
from latchflow_livionkey.sim_common import is_pincode, json_body
from latchflow_livionkey.sim_v2 import NestError, V2Sim, page, refuse_unknown

AUTOMAT_FIELDS = ("name", "label", "groups", "timezone", "location")
GROUP_FIELDS = ("name", "customerId", "type")


async def check_signature(sim: V2Sim, request: Request) -> str:
    """The service account of a correctly signed, fresh request; else 401."""
    account = request.headers.get("x-service-account-id", "")
    stamp = request.headers.get("x-timestamp", "")
    signature = request.headers.get("x-signature", "")
    public_key = sim.accounts.get(account)
    if public_key is None:
        raise NestError(401, "unknown service account")
    if not stamp.isdigit():
        raise NestError(401, "x-timestamp must be milliseconds since the epoch")
    # Freshness is checked against wall time (V2 §8 "Allowed clock skew"), not the sim clock.
    if (
        abs(received_at(request).timestamp() * 1000 - int(stamp))
        > V2_TIMESTAMP_TOLERANCE_SECONDS * 1000
    ):
        raise NestError(401, "x-timestamp is outside the allowed window")
    body = await request.body()  # the raw bytes received: UTF-8 as sent, not re-encoded
    if not v2_signing.verify(
        public_key, signature, account, stamp, request.method, str(request.url), body
    ):
        raise NestError(401, "invalid signature")
    return account


def create_app() -> FastAPI:
    """A fresh V2 simulator: four automats (one not installed), two groups, seven iLOQ keys."""
    sim = V2Sim()
    sim.seed()
    app = FastAPI(title="LivionKey API V2 simulator")
    app.state.sim = sim
    app.state.on_clock_change = sim.on_clock_change
    add_sim_controls(app, sim.state)

    @app.exception_handler(NestError)
    async def refused(request: Request, exc: NestError) -> Response:
        return JSONResponse(exc.body(), status_code=exc.status)

    async def signed(request: Request) -> str:
        return await check_signature(sim, request)

    api = APIRouter(prefix="/v2", dependencies=[Depends(signed)])

    # --- iLOQ key contracts ------------------------------------------------------------------
    @api.get("/iloq/keycontracts")
    async def list_contracts(
        after: str | None = None,
        limit: int | None = None,
        ongoing: bool = False,
        ended: bool = False,
        future: bool = False,
    ) -> Any:
        return page(sim_v2_contracts.list_contracts(sim, ongoing, ended, future), after, limit)

    @api.post("/iloq/keycontracts", status_code=201)
    async def create_contract(request: Request) -> Any:
        contract = sim_v2_contracts.create_contract(sim, await json_body(request))
        await sim.contract_updated(contract)
        return sim.contract_view(contract)

    @api.get("/iloq/keycontracts/{contract_id}")
    async def get_contract(contract_id: str) -> Any:
        return sim.contract_view(sim.contract(contract_id))

    @api.patch("/iloq/keycontracts/{contract_id}")
    async def update_contract(contract_id: str, request: Request) -> Any:
        contract = sim_v2_contracts.update_contract(sim, contract_id, await json_body(request))
        await sim.contract_updated(contract)
        return sim.contract_view(contract)

    @api.delete("/iloq/keycontracts/{contract_id}", status_code=204)
    async def delete_contract(contract_id: str) -> Response:
        sim_v2_contracts.delete_contract(sim, contract_id)
        return Response(status_code=204)

    @api.get("/iloq/accessRights")
    async def access_rights(
        after: str | None = None,
        limit: int | None = None,
        returnDefaultAccessesOnly: bool = False,
        search: str | None = None,
    ) -> Any:
        rights = [r for r in sim.access_rights if not search or search.lower() in r["name"].lower()]
        result = page(rights, after, limit)
        result.pop("hasNext")  # V2 §4: this list documents no hasNext
        return result

    # --- automats ----------------------------------------------------------------------------
    @api.get("/automats")
    async def list_automats(after: str | None = None, limit: int | None = None) -> Any:
        return page([sim.automat_view(a) for a in sim.automats.values()], after, limit)

    @api.get("/automats/{automat_id}")
    async def get_automat(automat_id: str) -> Any:
        return sim.automat_view(sim.automat(automat_id))

    @api.patch("/automats/{automat_id}")
    async def update_automat(automat_id: str, request: Request) -> Any:
        automat = sim.automat(automat_id)
        body = await json_body(request) or {}
        refuse_unknown(body, AUTOMAT_FIELDS)
        if "groups" in body:
            if missing := [g for g in body["groups"] if g not in sim.groups]:
                raise NestError(400, f"unknown groups: {', '.join(missing)}")
            automat["groupIds"] = list(body["groups"])
        for name in ("name", "label", "timezone"):
            if name in body:
                automat[name] = body[name]
        if isinstance(body.get("location"), dict):
            automat["location"] = {**automat["location"], **body["location"]}
        return sim.automat_view(automat)

    @api.post("/automats/{automat_id}/sendPincode")
    async def send_pincode(automat_id: str, request: Request) -> Any:
        body = await json_body(request) or {}
        refuse_unknown(body, ("pincode", "proximityCheck"))
        if not is_pincode(body.get("pincode"), V2_PINCODE_DIGITS):
            raise NestError(400, [V2_REFUSALS["pincode"].format(V2_PINCODE_DIGITS)])
        sim.automat(automat_id)
        if body.get("proximityCheck"):
            sim.proximity[automat_id] = str(body["pincode"])
            return {"success": True, "reason": None}
        result = await sim.enter_pincode(automat_id, str(body["pincode"]))
        return {"success": result["success"], "reason": result["reason"]}

    @api.post("/automats/{automat_id}/cancelSendPincode")
    async def cancel_send_pincode(automat_id: str, request: Request) -> Any:
        body = await json_body(request) or {}
        sim.automat(automat_id)
        if sim.proximity.get(automat_id) != body.get("pincode"):
            raise NestError(400, "no pending pincode to cancel")
        del sim.proximity[automat_id]
        return {"success": True}

    # --- groups ------------------------------------------------------------------------------
    @api.get("/groups")
    async def list_groups(
        after: str | None = None,
        limit: int | None = None,
        customerId: str | None = None,
        search: str | None = None,
    ) -> Any:
        groups = [
            sim.group_view(g)
            for g in sim.groups.values()
            if (not customerId or g["customerId"] == customerId)
            and (not search or search.lower() in g["name"].lower())
        ]
        return page(groups, after, limit)

    @api.post("/groups", status_code=201)
    async def create_group(request: Request) -> Any:
        body = await json_body(request) or {}
        refuse_unknown(body, GROUP_FIELDS)
        if not body.get("name"):
            raise NestError(400, "name is required")
        if body.get("type", 1) not in (1, 2):
            raise NestError(400, "type must be 1 (device) or 2 (key)")
        group = {
            "id": str(uuid.uuid4()),
            "name": body["name"],
            "customerId": body.get("customerId"),
            "type": body.get("type", 1),
        }
        sim.groups[group["id"]] = group
        return sim.group_view(group)

    def group(group_id: str) -> dict[str, Any]:
        if group_id not in sim.groups:
            raise NestError(404, f"Group {group_id} not found")
        return sim.groups[group_id]

    @api.get("/groups/{group_id}")
    async def get_group(group_id: str) -> Any:
        return sim.group_view(group(group_id))

    @api.patch("/groups/{group_id}")
    async def update_group(group_id: str, request: Request) -> Any:
        found, body = group(group_id), await json_body(request) or {}
        refuse_unknown(body, ("name", "customerId"))
        for name in ("name", "customerId"):
            if name in body:
                found[name] = body[name]
        return sim.group_view(found)

    @api.delete("/groups/{group_id}", status_code=204)
    async def delete_group(group_id: str) -> Response:
        group(group_id)
        del sim.groups[group_id]
        for automat in sim.automats.values():
            automat["groupIds"] = [g for g in automat["groupIds"] if g != group_id]
        return Response(status_code=204)

    app.include_router(api)
    add_sim_routes(app, sim)
    return app


def add_sim_routes(app: FastAPI, sim: V2Sim) -> None:
    @app.get("/_sim/v2/state", tags=["simulator"])
    async def state() -> dict[str, Any]:
        """Every contract, group and key, as tests count what an action made."""
        return {
            "contracts": [sim.contract_view(c) for c in sim.contracts.values()],
            "groups": list(sim.groups.values()),
            "keys": list(sim.keys.values()),
        }

    @app.post("/_sim/v2/service-accounts", tags=["simulator"])
    async def service_account(request: Request) -> dict[str, Any]:
        body = await json_body(request) or {}
        private_pem = None
        public_pem = body.get("publicKeyPem")
        if not public_pem:
            private_pem, public_pem = v2_signing.generate_key_pair()
        key = serialization.load_pem_public_key(str(public_pem).encode())
        if not isinstance(key, rsa.RSAPublicKey):
            raise NestError(400, "publicKeyPem must be an RSA public key")
        account_id = str(uuid.uuid4())
        sim.accounts[account_id] = key
        return {
            "id": account_id,
            "name": body.get("name", "sandbox"),
            "role": "admin",
            "privateKey": private_pem,
            "organizationUnitId": sim.org_id,
        }

    @app.post("/_sim/v2/webhook-subscriptions", tags=["simulator"])
    async def subscribe(request: Request) -> dict[str, Any]:
        body = await json_body(request) or {}
        if not body.get("url"):
            raise NestError(400, "url is required")
        if body["url"] not in sim.state.webhook_urls:
            sim.state.webhook_urls.append(body["url"])
        return {"secret": sim.webhook_secret, "urls": sim.state.webhook_urls}

    @app.post("/_sim/v2/enter-pincode", tags=["simulator"])
    async def enter_pincode(request: Request) -> dict[str, Any]:
        body = await json_body(request) or {}
        return await sim.enter_pincode(str(body.get("automatId")), str(body.get("pincode")))

    @app.post("/_sim/v2/return-key", tags=["simulator"])
    async def return_key(request: Request) -> dict[str, Any]:
        body = await json_body(request) or {}
        return await sim.return_key(str(body.get("automatId")), str(body.get("keyId")))

    @app.post("/_sim/v2/alarm", tags=["simulator"])
    async def alarm(request: Request) -> dict[str, Any]:
        body = await json_body(request) or {}
        sim.automat(str(body.get("deviceId")))
        state = body.get("state", "activated")
        moment = sim.now().isoformat()
        data = {
            "alarmType": body.get("alarmType", "DEVICE_ERROR"),
            "state": state,
            "deviceId": body["deviceId"],
            "start": moment,
            "end": None if state == "activated" else moment,
            "acknowledged": False,
        }
        await sim.emit("device-alarm", data)
        return {"sent": True}
