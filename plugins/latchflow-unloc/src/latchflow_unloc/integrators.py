"""Client for Unloc's Integrators v1 API (lock holders, their locks and keys, key-event webhooks)."""

from __future__ import annotations

from typing import Any

import httpx

from latchflow import ConfigurationError, Connection, FatalError, RunContext
from latchflow_unloc.assumptions import DEFAULT_BASE_URL
from latchflow_unloc.client import require
from latchflow_unloc.http import Call, send_authorised, timeout_of
from latchflow_unloc.tokens import fetch_token


class IntegratorsClient:
    """Calls ``/integrators/v1`` with an ``integrator.admin`` or ``lockHolder.admin`` token;
    errors name ``action``, the action or trigger the user configured."""

    def __init__(self, connection: Connection, action: str) -> None:
        require(connection.config, "client_id", "client_secret")
        self.connection = connection
        self.action = action
        self.base_url = str(connection.config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self.lock_holder_ids = [str(i) for i in connection.config.get("lock_holder_ids") or []]

    def scope(self) -> str | list[str]:
        """``integrator.admin``, or one ``lockHolder.admin:<id>`` per configured lock holder."""
        if self.lock_holder_ids:
            return [f"lockHolder.admin:{i}" for i in self.lock_holder_ids]
        return "integrator.admin"

    def holder(self, lock_holder_id: str | None) -> str:
        """The lock holder a call is for: the given one, else the connection's only one."""
        if lock_holder_id:
            return lock_holder_id
        if len(self.lock_holder_ids) == 1:
            return self.lock_holder_ids[0]
        raise FatalError(
            f"{self.action}: lockHolderId: required, because the connection does not name"
            " exactly one lock holder in lock_holder_ids"
        )

    async def token(self, *, force: bool = False) -> str:
        config = self.connection.config
        body = {
            "grant_type": "client_credentials",
            "client_id": config["client_id"],
            "client_secret": config["client_secret"],
            "scope": self.scope(),
        }
        return await fetch_token(
            self.connection, f"{self.base_url}/auth/v1/token/", body, self.action, force=force
        )

    async def request(
        self, method: str, path: str, what: str, *, json: Any = None
    ) -> httpx.Response:
        url = f"{self.base_url}/integrators/v1{path}"
        call = Call(self.action, what, method, url, timeout_of(self.connection.config))
        return await send_authorised(
            self.connection.http, lambda force: self.token(force=force), call, json=json
        )

    async def list_lock_holders(self) -> list[dict[str, Any]]:
        response = await self.request("GET", "/lock-holders/", "list lock holders")
        return list(response.json().get("lock-holders") or [])

    async def create_lock_holder(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.lock_holder_ids:
            raise ConfigurationError(
                f"{self.action}: creating a lock holder needs the integrator.admin scope; remove"
                " lock_holder_ids from the connection",
                path="connection.lock_holder_ids",
            )
        response = await self.request("POST", "/lock-holders/", "create lock holder", json=body)
        return dict(response.json().get("lockHolder") or {})

    async def list_locks(self, lock_holder_id: str | None) -> list[dict[str, Any]]:
        path = f"/lock-holders/{self.holder(lock_holder_id)}/locks/"
        return list((await self.request("GET", path, "list locks")).json().get("locks") or [])

    async def get_lock(self, lock_holder_id: str | None, lock_id: str) -> dict[str, Any]:
        path = f"/lock-holders/{self.holder(lock_holder_id)}/locks/{lock_id}/"
        return dict((await self.request("GET", path, "get lock")).json().get("lock") or {})

    async def list_keys(
        self, lock_holder_id: str | None, lock_id: str | None
    ) -> list[dict[str, Any]]:
        holder = self.holder(lock_holder_id)
        path = (
            f"/lock-holders/{holder}/locks/{lock_id}/keys/"
            if lock_id
            else f"/lock-holders/{holder}/keys"
        )
        return list((await self.request("GET", path, "list keys")).json().get("keys") or [])

    async def create_key(
        self, lock_holder_id: str | None, lock_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Create one key; integrators v1 takes ``null`` start/end as "now"/"never expires"."""
        path = f"/lock-holders/{self.holder(lock_holder_id)}/locks/{lock_id}/keys/"
        return dict(
            (await self.request("POST", path, "create key", json=body)).json().get("key") or {}
        )

    async def register_key_event_webhook(
        self, lock_holder_id: str | None, lock_id: str, url: str
    ) -> None:
        path = f"/lock-holders/{self.holder(lock_holder_id)}/locks/{lock_id}/key-events/webhooks/"
        await self.request("POST", path, "register key-event webhook", json={"webhookUrl": url})


def integrators_client_for(ctx: RunContext, action: str) -> IntegratorsClient:
    """The integrators client of a step running ``action``."""
    if ctx.connection is None:
        raise ConfigurationError(
            f"{action}: this step needs an Unloc integrators connection", path="connection"
        )
    return IntegratorsClient(ctx.connection, action)
