"""Client for Unloc's v2 Projects API: token, locks, keys, jobs, revocation, webhooks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from latchflow import ConfigurationError, Connection, FatalError, RunContext
from latchflow_unloc.assumptions import DEFAULT_BASE_URL, EXCLUDE_STATES_SEPARATOR, MAX_PAGE_SIZE
from latchflow_unloc.http import Call, UnlocHTTPError, send_authorised, timeout_of
from latchflow_unloc.tokens import fetch_token


def require(config: dict[str, Any], *names: str) -> None:
    missing = [n for n in names if not config.get(n)]
    if missing:
        raise ConfigurationError(f"missing {', '.join(missing)}", path="connection")


class UnlocClient:
    """Calls the v2 API for one project with ``project.admin`` client credentials; errors name
    ``action``, the action or trigger the user configured."""

    def __init__(self, connection: Connection, action: str) -> None:
        require(connection.config, "client_id", "client_secret", "project_id")
        self.connection = connection
        self.action = action
        self.base_url = str(connection.config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self.project_id = str(connection.config["project_id"])

    @property
    def project_path(self) -> str:
        return f"/v2/projects/{self.project_id}"

    async def token(self, *, force: bool = False) -> str:
        config = self.connection.config
        body = {
            "grant_type": "client_credentials",
            "client_id": config["client_id"],
            "client_secret": config["client_secret"],
            "scope": "project.admin",
            "project_id": self.project_id,
        }
        return await fetch_token(
            self.connection, f"{self.base_url}/v2/auth/token/", body, self.action, force=force
        )

    async def request(
        self,
        method: str,
        path: str,
        what: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """An authorised request; empty query parameters are left out."""
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        call = Call(
            self.action, what, method, self.base_url + path, timeout_of(self.connection.config)
        )
        return await send_authorised(
            self.connection.http,
            lambda force: self.token(force=force),
            call,
            json=json,
            params=clean,
        )

    async def get_project(self) -> dict[str, Any]:
        response = await self.request("GET", self.project_path, "get project")
        return dict(response.json().get("project") or {})

    async def list_locks(
        self, *, limit: int | None = None, start_after_id: str | None = None
    ) -> dict[str, Any]:
        params = {"limit": _limit(limit), "startAfterId": start_after_id}
        response = await self.request(
            "GET", f"{self.project_path}/locks", "list locks", params=params
        )
        body = response.json()
        return {"locks": body.get("locks") or [], "startAfterId": body.get("startAfterId") or None}

    async def all_locks(self) -> list[dict[str, Any]]:
        return await self._all(self.list_locks, "locks")

    async def list_keys(
        self,
        *,
        app_user_id: str | None = None,
        lock_id: str | None = None,
        exclude_states: Sequence[str] = (),
        exclude_subproject_keys: bool | None = None,
        limit: int | None = None,
        start_after_id: str | None = None,
    ) -> dict[str, Any]:
        params = {
            "appUserId": app_user_id,
            "lockId": lock_id,
            "excludeStates": EXCLUDE_STATES_SEPARATOR.join(exclude_states) or None,
            "excludeSubprojectKeys": _flag(exclude_subproject_keys),
            "limit": _limit(limit),
            "startAfterId": start_after_id,
        }
        response = await self.request(
            "GET", f"{self.project_path}/keys", "list keys", params=params
        )
        body = response.json()
        return {"keys": body.get("keys") or [], "startAfterId": body.get("startAfterId") or None}

    async def all_keys(self, **filters: Any) -> list[dict[str, Any]]:
        """Every key matching ``filters`` (see ``list_keys``), following ``startAfterId``."""

        async def page(**kw: Any) -> dict[str, Any]:
            return await self.list_keys(**filters, **kw)

        return await self._all(page, "keys")

    async def _all(self, page: Any, field: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            result = await page(limit=MAX_PAGE_SIZE, start_after_id=after)
            items += result[field]
            after = result["startAfterId"]
            if not after or not result[field]:
                return items

    async def get_key(self, key_id: str) -> dict[str, Any]:
        response = await self.request("GET", f"{self.project_path}/keys/{key_id}", "get key")
        return dict(response.json().get("key") or {})

    async def create_keys(self, keys: list[dict[str, Any]]) -> str:
        """Start a Create Keys job; returns the job id. A 400 means no key was created."""
        response = await self.request(
            "POST", f"{self.project_path}/keys", "create keys", json={"keys": keys}
        )
        job_ref = response.json().get("jobRef") or {}
        if not job_ref.get("id"):
            raise FatalError(
                f"{self.action}: Unloc accepted the keys but its answer has no $.jobRef.id to"
                " follow; look for the keys with unloc.list_keys"
            )
        return str(job_ref["id"])

    async def get_job(self, job_id: str) -> dict[str, Any]:
        response = await self.request("GET", f"{self.project_path}/jobs/{job_id}", "get job")
        return dict(response.json().get("job") or {})

    async def revoke_key(self, key_id: str) -> httpx.Response:
        return await self.request("DELETE", f"{self.project_path}/keys/{key_id}", "revoke key")

    async def revoke_if_present(self, key_id: str) -> bool:
        """Revoke a key; False when there is nothing to revoke: it is unknown (404) or
        expired (409 "May not revoke expired keys")."""
        try:
            await self.revoke_key(key_id)
        except UnlocHTTPError as exc:
            if exc.status in (404, 409):
                return False
            raise
        return True

    async def revoke_keys(
        self,
        *,
        app_user_id: str | None = None,
        lock_id: str | None = None,
        exclude_subproject_keys: bool | None = None,
        confirm_all: bool = False,
    ) -> httpx.Response:
        """Revoke every key matching the filters. Without a filter this revokes EVERY key in
        the project, so it is refused unless ``confirm_all`` is true."""
        if not app_user_id and not lock_id and not confirm_all:
            raise FatalError(
                f"{self.action}: no appUserId or lockId filter given, which would revoke every"
                " key in the project; add a filter or set confirm_all: true to really do that"
            )
        params = {
            "appUserId": app_user_id,
            "lockId": lock_id,
            "excludeSubprojectKeys": _flag(exclude_subproject_keys),
        }
        return await self.request(
            "DELETE", f"{self.project_path}/keys", "revoke keys", params=params
        )

    async def register_access_webhook(self, url: str, lock_id: str) -> dict[str, Any]:
        response = await self.request(
            "POST",
            f"{self.project_path}/webhooks",
            "register webhook",
            json={"trigger": "accessEvent", "url": url, "lockId": lock_id},
        )
        return dict(response.json() or {}) if response.content else {}


def client_for(ctx: RunContext, action: str) -> UnlocClient:
    """The v2 client of a step running ``action``."""
    if ctx.connection is None:
        raise ConfigurationError(
            f"{action}: this step needs an Unloc connection", path="connection"
        )
    return UnlocClient(ctx.connection, action)


def _limit(limit: int | None) -> int | None:
    if limit is None:
        return None
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise FatalError(f"limit: must be from 1 to {MAX_PAGE_SIZE}, got {limit}")
    return limit


def _flag(value: bool | None) -> str | None:
    return None if value is None else str(bool(value)).lower()
