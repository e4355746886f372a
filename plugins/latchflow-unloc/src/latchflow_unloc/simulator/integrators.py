"""The simulated Integrators v1 API routes (lock holders, their locks and keys)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request

from latchflow_unloc.simulator.common import (
    Problem,
    bearer,
    body_of,
    check_period,
    check_phone,
    check_recurrence,
    check_time,
)
from latchflow_unloc.simulator.model import SimToken, SimWebhook, UnlocWorld

ORG_ID = re.compile(r"^[A-Za-z0-9_-]{4,1024}$")


def add_integrator_routes(app: FastAPI, world: UnlocWorld) -> None:
    base = "/integrators/v1/lock-holders"

    def holder_token(request: Request, holder_id: str) -> dict[str, Any]:
        token = bearer(world, request, "integrators")
        if token.lock_holder_ids is not None and holder_id not in token.lock_holder_ids:
            raise Problem(
                403, "Forbidden", "the token has no lockHolder.admin scope for this lock holder"
            )
        holder = world.lock_holders.get(holder_id)
        if holder is None:
            raise Problem(404, "Not Found", f"Lock holder {holder_id} not found")
        return holder

    def holder_lock(holder: dict[str, Any], lock_id: str) -> dict[str, Any]:
        if lock_id not in holder["lockIds"] or lock_id not in world.locks:
            raise Problem(404, "Not Found", f"Lock {lock_id} not found")
        lock = world.locks[lock_id]
        count = sum(1 for k in world.keys.values() if k.lock_id == lock_id)
        return {
            **{k: v for k, v in lock.items() if k != "batteryStatus"},
            "imageUrl": "",
            "auth": {},
            "canCreateKeysCount": 1000,
            "keysCreatedCount": count,
        }

    def public(holder: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in holder.items() if k != "lockIds"}

    @app.post("/auth/v1/token/")
    async def token(request: Request) -> dict[str, Any]:
        body = await body_of(request)
        known = world.clients.get(str(body.get("client_id")))
        if (
            body.get("grant_type") != "client_credentials"
            or known is None
            or known[0] != body.get("client_secret")
            or known[1] != "integrators"
        ):
            raise Problem(
                401,
                "",
                body={"error": "invalid_client", "errorDescription": "Invalid client credentials"},
            )
        scope = body.get("scope")
        if scope == "integrator.admin":
            holders = None
        elif (
            isinstance(scope, list)
            and scope
            and all(isinstance(s, str) and s.startswith("lockHolder.admin:") for s in scope)
        ):
            holders = [s.split(":", 1)[1] for s in scope]
            unknown = [h for h in holders if h not in world.lock_holders]
            if unknown:
                raise Problem(403, "Forbidden", f"no access to lock holder {unknown[0]}")
        else:
            raise Problem(
                400,
                "Bad Request",
                invalid=[
                    {
                        "name": "scope",
                        "reason": "must be integrator.admin or an array of lockHolder.admin:<id>",
                    }
                ],
            )
        value = world.issue_token(
            SimToken("integrators", world.token_expiry(), lock_holder_ids=holders)
        )
        return {
            "access_token": value,
            "token_type": "bearer",
            "expires_in": 3600,
            "scope": [scope] if isinstance(scope, str) else scope,
            "lock_holder_ids": holders if holders is not None else list(world.lock_holders),
        }

    @app.get(f"{base}/")
    async def list_holders(request: Request) -> dict[str, Any]:
        token = bearer(world, request, "integrators")
        holders = [
            public(h)
            for h in world.lock_holders.values()
            if token.lock_holder_ids is None or h["id"] in token.lock_holder_ids
        ]
        return {"lock-holders": holders}

    @app.post(f"{base}/", status_code=201)
    async def create_holder(request: Request) -> dict[str, Any]:
        token = bearer(world, request, "integrators")
        if token.lock_holder_ids is not None:
            raise Problem(
                403, "Forbidden", "creating lock holders needs the integrator.admin scope"
            )
        body = await body_of(request)
        invalid = []
        if not isinstance(body.get("name"), str) or not 4 <= len(body["name"]) <= 1024:
            invalid.append({"name": "name", "reason": "must NOT have fewer than 4 characters"})
        if not isinstance(body.get("countryIso"), str) or not re.fullmatch(
            r"[A-Z]{2}", body["countryIso"]
        ):
            invalid.append({"name": "countryIso", "reason": "must be an ISO-3166 alpha-2 code"})
        if not isinstance(body.get("organizationId"), str) or not ORG_ID.match(
            body["organizationId"]
        ):
            invalid.append(
                {"name": "organizationId", "reason": "must match pattern ^[A-Za-z0-9_-]{4,1024}$"}
            )
        if invalid:
            raise Problem(400, "Bad Request", invalid=invalid)
        holder = {
            "id": str(uuid.uuid4()),
            "name": body["name"],
            "countryIso": body["countryIso"],
            "organizationId": body["organizationId"],
            "organizationIdSuffix": body.get("organizationIdSuffix") or "",
            "activeInstallerInviteCodes": [],
            "lockIds": [],
        }
        world.lock_holders[holder["id"]] = holder
        return {"lockHolder": public(holder)}

    @app.get(base + "/{holder_id}/locks/")
    async def list_locks(holder_id: str, request: Request) -> dict[str, Any]:
        holder = holder_token(request, holder_id)
        return {"locks": [holder_lock(holder, i) for i in holder["lockIds"] if i in world.locks]}

    @app.get(base + "/{holder_id}/locks/{lock_id}/")
    async def get_lock(holder_id: str, lock_id: str, request: Request) -> dict[str, Any]:
        return {"lock": holder_lock(holder_token(request, holder_id), lock_id)}

    @app.get(base + "/{holder_id}/keys")
    async def holder_keys(holder_id: str, request: Request) -> dict[str, Any]:
        holder = holder_token(request, holder_id)
        now, zone = world.now(), world.zone
        keys = [
            k.integrator(now, zone) for k in world.keys.values() if k.lock_id in holder["lockIds"]
        ]
        for key in keys:  # only the per-lock listing shows recurrence
            key.pop("recurrence", None)
        return {"keys": keys}

    @app.get(base + "/{holder_id}/locks/{lock_id}/keys/")
    async def lock_keys(holder_id: str, lock_id: str, request: Request) -> dict[str, Any]:
        holder_lock(holder_token(request, holder_id), lock_id)
        now, zone = world.now(), world.zone
        return {
            "keys": [k.integrator(now, zone) for k in world.keys.values() if k.lock_id == lock_id]
        }

    @app.post(base + "/{holder_id}/locks/{lock_id}/keys/", status_code=201)
    async def create_key(holder_id: str, lock_id: str, request: Request) -> dict[str, Any]:
        holder_lock(holder_token(request, holder_id), lock_id)
        body = await body_of(request)
        invalid: list[dict[str, str]] = []
        check_phone(body.get("userId"), "userId", invalid)
        for name in ("start", "end"):
            check_time(body, name, "body", invalid, nullable=True)
        if body.get("recurrence") is not None:
            check_recurrence(body["recurrence"], "recurrence", invalid)
        check_period(body, "", world.now(), invalid)
        if invalid:
            raise Problem(400, "Bad Request", invalid=invalid)
        ready_at = world.now() + timedelta(seconds=world.job_delay)
        key = world.new_key(lock_id, body["userId"], body, ready_at)
        return {"key": key.integrator(world.now(), world.zone)}

    @app.post(base + "/{holder_id}/locks/{lock_id}/key-events/webhooks/", status_code=201)
    async def add_webhook(holder_id: str, lock_id: str, request: Request) -> dict[str, Any]:
        holder_lock(holder_token(request, holder_id), lock_id)
        body = await body_of(request)
        url = body.get("webhookUrl")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise Problem(
                400,
                "Bad Request",
                invalid=[{"name": "webhookUrl", "reason": 'must match format "uri"'}],
            )
        hook = SimWebhook("integrators", url, lock_id)
        if hook not in world.webhooks:
            world.webhooks.append(hook)
        return {"webhookUrl": url, "lockId": lock_id}
