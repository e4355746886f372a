"""The simulated v2 Projects API routes."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request, Response

from latchflow_unloc.assumptions import (
    BULK_REVOKE_FILTERS,
    BULK_REVOKE_STATUS,
    KEY_STATES,
    MAX_PAGE_SIZE,
    REVOKE_STATUS,
    UNKNOWN_LOCK_REASON,
)
from latchflow_unloc.simulator.common import (
    Problem,
    bearer,
    body_of,
    check_period,
    check_phone,
    check_recurrence,
    check_time,
)
from latchflow_unloc.simulator.model import SimJob, SimToken, SimWebhook, UnlocWorld

KEY_FIELDS = {"lockId", "appUserId", "start", "end", "recurrence", "metadata", "durationMinutes"}


def page(items: list[dict[str, Any]], request: Request, field: str) -> dict[str, Any]:
    try:
        limit = int(request.query_params.get("limit") or MAX_PAGE_SIZE)
    except ValueError:
        raise Problem(
            400, "Bad Request", invalid=[{"name": "limit", "reason": "must be integer"}]
        ) from None
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise Problem(
            400, "Bad Request", invalid=[{"name": "limit", "reason": f"must be <= {MAX_PAGE_SIZE}"}]
        )
    after = request.query_params.get("startAfterId")
    if after:
        ids = [i["id"] for i in items]
        if after not in ids:
            raise Problem(
                400, "Bad Request", invalid=[{"name": "startAfterId", "reason": "unknown id"}]
            )
        items = items[ids.index(after) + 1 :]
    chosen = items[:limit]
    more = len(items) > limit
    return {field: chosen, "startAfterId": chosen[-1]["id"] if more and chosen else ""}


def validate_keys(body: dict[str, Any], world: UnlocWorld) -> list[dict[str, Any]]:
    """The batch's keys, or 400 naming every invalid field of every key: Unloc refuses a batch
    as a whole and starts no job."""
    keys = body.get("keys")
    if not isinstance(keys, list) or not keys:
        raise Problem(
            400,
            "Bad Request",
            "keys must be a non-empty array",
            [{"name": "keys", "reason": "must NOT have fewer than 1 items"}],
        )
    invalid: list[dict[str, str]] = []
    for i, item in enumerate(keys):
        path = f"keys[{i}]"
        if not isinstance(item, dict):
            invalid.append({"name": path, "reason": "must be object"})
            continue
        for extra in sorted(set(item) - KEY_FIELDS):
            invalid.append(
                {"name": f"{path}.{extra}", "reason": "must NOT have additional properties"}
            )
        if not isinstance(item.get("lockId"), str):
            invalid.append(
                {"name": f"{path}.lockId", "reason": "must have required property 'lockId'"}
            )
        elif item["lockId"] not in world.locks:
            invalid.append({"name": f"{path}.lockId", "reason": UNKNOWN_LOCK_REASON})
        if "appUserId" not in item:
            invalid.append(
                {"name": f"{path}.appUserId", "reason": "must have required property 'appUserId'"}
            )
        else:
            check_phone(item["appUserId"], f"{path}.appUserId", invalid)
        for name in ("start", "end"):
            check_time(item, name, path, invalid, nullable=False)
        if "recurrence" in item:
            check_recurrence(item["recurrence"], f"{path}.recurrence", invalid)
        if "durationMinutes" in item and (
            not isinstance(item["durationMinutes"], int) or item["durationMinutes"] < 1
        ):
            invalid.append({"name": f"{path}.durationMinutes", "reason": "must be integer >= 1"})
        if "metadata" in item and not (
            isinstance(item["metadata"], dict)
            and all(isinstance(v, str) for v in item["metadata"].values())
        ):
            invalid.append({"name": f"{path}.metadata", "reason": "must be an object of strings"})
        check_period(item, f"{path}.", world.now(), invalid)
    if invalid:
        raise Problem(
            400, "Bad Request", "One or more keys are invalid; no job was started", invalid
        )
    return keys


def revoke_filters(request: Request, world: UnlocWorld) -> dict[str, str]:
    """The bulk revoke's filters, or 400 for one that is unknown or malformed: a filter that
    matched nothing by mistake would revoke nothing, one left out by mistake everything."""
    query = request.query_params
    invalid: list[dict[str, str]] = []
    for name in sorted(set(query) - set(BULK_REVOKE_FILTERS)):
        invalid.append({"name": name, "reason": "must NOT have additional properties"})
    if "appUserId" in query:
        check_phone(query["appUserId"], "appUserId", invalid)
    if "lockId" in query and query["lockId"] not in world.locks:
        invalid.append({"name": "lockId", "reason": UNKNOWN_LOCK_REASON})
    if query.get("excludeSubprojectKeys", "false") not in ("true", "false"):
        invalid.append({"name": "excludeSubprojectKeys", "reason": "must be boolean"})
    if invalid:
        raise Problem(400, "Bad Request", "Invalid query parameters; no key was revoked", invalid)
    return {k: query[k] for k in ("appUserId", "lockId") if k in query}


def add_v2_routes(app: FastAPI, world: UnlocWorld) -> None:
    def project_token(request: Request, project_id: str) -> SimToken:
        token = bearer(world, request, "v2")
        if token.project_id != project_id:
            raise Problem(403, "Forbidden", "projectId must match the one in the JWT")
        return token

    @app.post("/v2/auth/token/")
    async def token(request: Request) -> dict[str, Any]:
        body = await body_of(request)
        if body.get("grant_type") != "client_credentials":
            raise Problem(
                400,
                "Bad Request",
                invalid=[{"name": "grant_type", "reason": "must be equal to constant"}],
            )
        known = world.clients.get(str(body.get("client_id")))
        if known is None or known[0] != body.get("client_secret") or known[1] != "v2":
            raise Problem(
                401,
                "",
                body={"error": "invalid_client", "errorDescription": "Invalid client credentials"},
            )
        scope = body.get("scope")
        if scope == "project.admin":
            if body.get("project_id") != world.project["id"]:
                raise Problem(403, "Forbidden", "these credentials have no access to that project")
            value = world.issue_token(
                SimToken("v2", world.token_expiry(), project_id=world.project["id"])
            )
            extra: dict[str, Any] = {"project_id": world.project["id"]}
        elif scope == "organization.admin":
            if body.get("organization_id") != world.project["organizationId"]:
                raise Problem(
                    403, "Forbidden", "these credentials have no access to that organization"
                )
            value = world.issue_token(
                SimToken(
                    "v2", world.token_expiry(), organization_id=world.project["organizationId"]
                )
            )
            extra = {"organization_id": world.project["organizationId"]}
        else:
            raise Problem(
                400,
                "Bad Request",
                invalid=[
                    {"name": "scope", "reason": "must be project.admin or organization.admin"}
                ],
            )
        return {
            "access_token": value,
            "token_type": "bearer",
            "expires_in": 3600,
            "scope": [scope],
            **extra,
        }

    @app.post("/v2/auth/resources-discovery/")
    async def discovery(request: Request) -> dict[str, Any]:
        body = await body_of(request)
        known = world.clients.get(str(body.get("client_id")))
        if known is None or known[0] != body.get("client_secret"):
            raise Problem(
                401,
                "",
                body={"error": "invalid_client", "errorDescription": "Invalid client credentials"},
            )
        return {
            "resources": {
                "projects": [{"projectId": world.project["id"], "scope": "project.admin"}],
                "organizations": [
                    {
                        "organizationId": world.project["organizationId"],
                        "scope": "organization.admin",
                    }
                ],
            }
        }

    @app.get("/v2/projects/{project_id}")
    async def get_project(project_id: str, request: Request) -> dict[str, Any]:
        project_token(request, project_id)
        return {"project": world.project}

    @app.get("/v2/projects/{project_id}/locks")
    async def get_locks(project_id: str, request: Request) -> dict[str, Any]:
        project_token(request, project_id)
        return page(list(world.locks.values()), request, "locks")

    @app.get("/v2/projects/{project_id}/keys")
    async def get_keys(project_id: str, request: Request) -> dict[str, Any]:
        project_token(request, project_id)
        query = request.query_params
        excluded = {s for s in (query.get("excludeStates") or "").split(",") if s}
        unknown = excluded - set(KEY_STATES)
        if unknown:
            raise Problem(
                400,
                "Bad Request",
                invalid=[
                    {"name": "excludeStates", "reason": f"unknown state {sorted(unknown)[0]}"}
                ],
            )
        now, zone = world.now(), world.zone
        keys = [k.v2(now, zone) for k in world.keys.values()]
        keys = [
            k
            for k in keys
            if (not query.get("appUserId") or k["appUser"]["id"] == query["appUserId"])
            and (not query.get("lockId") or k["lockId"] == query["lockId"])
            and k["state"] not in excluded
        ]
        return page(keys, request, "keys")

    @app.get("/v2/projects/{project_id}/keys/{key_id}")
    async def get_key(project_id: str, key_id: str, request: Request) -> dict[str, Any]:
        project_token(request, project_id)
        key = world.keys.get(key_id)
        if key is None:
            raise Problem(404, "Not Found", f"Key {key_id} not found")
        return {"key": key.v2(world.now(), world.zone)}

    @app.post("/v2/projects/{project_id}/keys", status_code=202)
    async def create_keys(project_id: str, request: Request) -> dict[str, Any]:
        project_token(request, project_id)
        items = validate_keys(await body_of(request), world)
        now = world.now()
        ready_at = now + timedelta(seconds=world.job_delay)
        job = SimJob(id=str(uuid.uuid4()), created=now, delay=world.job_delay)
        job.keys = [
            world.new_key(item["lockId"], item["appUserId"], item, ready_at) for item in items
        ]
        world.jobs[job.id] = job
        return {"jobRef": {"id": job.id}}

    @app.get("/v2/projects/{project_id}/jobs/{job_id}")
    async def get_job(project_id: str, job_id: str, request: Request) -> dict[str, Any]:
        project_token(request, project_id)
        job = world.jobs.get(job_id)
        if job is None:
            raise Problem(404, "Not Found", f"Job {job_id} not found")
        return {"job": job.body(world.now(), world.zone)}

    @app.delete("/v2/projects/{project_id}/keys/{key_id}", status_code=REVOKE_STATUS)
    async def revoke_key(project_id: str, key_id: str, request: Request) -> Response:
        project_token(request, project_id)
        key = world.keys.get(key_id)
        if key is None:
            raise Problem(404, "Not Found", f"Key {key_id} not found")
        state = key.state(world.now(), world.zone)
        if state == "expired":
            raise Problem(409, "Conflict", "May not revoke expired keys")
        if state != "revoked":
            key.revoked_at = world.now()
        return Response(status_code=REVOKE_STATUS)

    @app.delete("/v2/projects/{project_id}/keys", status_code=BULK_REVOKE_STATUS)
    async def revoke_keys(project_id: str, request: Request) -> Response:
        project_token(request, project_id)
        filters = revoke_filters(request, world)
        now, zone = world.now(), world.zone
        for key in world.keys.values():
            if filters.get("appUserId") not in (None, key.app_user_id):
                continue
            if filters.get("lockId") not in (None, key.lock_id):
                continue
            if key.state(now, zone) not in ("expired", "revoked"):
                key.revoked_at = now
        return Response(status_code=BULK_REVOKE_STATUS)

    @app.post("/v2/projects/{project_id}/webhooks", status_code=201)
    async def add_webhook(project_id: str, request: Request) -> dict[str, Any]:
        project_token(request, project_id)
        body = await body_of(request)
        invalid = []
        if body.get("trigger") != "accessEvent":
            invalid.append(
                {"name": "trigger", "reason": "must be equal to one of the allowed values"}
            )
        if not isinstance(body.get("url"), str) or not body["url"].startswith(
            ("http://", "https://")
        ):
            invalid.append({"name": "url", "reason": 'must match format "uri"'})
        if body.get("lockId") not in world.locks:
            invalid.append({"name": "lockId", "reason": "unknown lock"})
        if invalid:
            raise Problem(400, "Bad Request", invalid=invalid)
        hook = SimWebhook("v2", body["url"], body["lockId"])
        if hook not in world.webhooks:
            world.webhooks.append(hook)
        return {
            "webhook": {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, hook.url + hook.lock_id)),
                "trigger": "accessEvent",
                "url": hook.url,
                "lockId": hook.lock_id,
            }
        }
