"""The two connection types: ``unloc`` (v2 Projects API) and ``unloc_integrators`` (v1)."""

from __future__ import annotations

from typing import Any

import httpx

from latchflow import Connection, SystemClock, Vendor, event_types_schema
from latchflow_unloc.assumptions import (
    DEFAULT_BASE_URL,
    INTEGRATORS_EVENT_TYPES,
    SIM_CLIENT_ID,
    SIM_CLIENT_SECRET,
    SIM_INTEGRATOR_CLIENT_ID,
    SIM_INTEGRATOR_CLIENT_SECRET,
    SIM_LOCK_HOLDER_ID,
    SIM_PROJECT_ID,
    V2_EVENT_TYPES,
)
from latchflow_unloc.client import UnlocClient
from latchflow_unloc.http import DEFAULT_TIMEOUT_SECONDS
from latchflow_unloc.integrators import IntegratorsClient
from latchflow_unloc.simulator import create_app
from latchflow_unloc.webhooks import access_event, key_event

BASE_URL = {
    "type": "string",
    "format": "uri",
    "default": DEFAULT_BASE_URL,
    "description": "API host: https://api.unloc.app, or https://api-sandbox.unloc.app for Unloc's sandbox.",
}
TIMEOUT = {
    "type": "number",
    "minimum": 1,
    "maximum": 300,
    "default": DEFAULT_TIMEOUT_SECONDS,
    "description": (
        "Seconds each call waits for Unloc's answer. A call that hangs holds one of the"
        " connection's concurrent calls that long, so keep it short."
    ),
}

V2_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["client_id", "client_secret", "project_id"],
    "additionalProperties": False,
    "properties": {
        "base_url": BASE_URL,
        "client_id": {
            "type": "string",
            "minLength": 1,
            "description": "OAuth2 client id from Unloc.",
        },
        "client_secret": {
            "type": "string",
            "minLength": 1,
            "writeOnly": True,
            "description": "OAuth2 client secret from Unloc.",
        },
        "project_id": {
            "type": "string",
            "minLength": 1,
            "description": "The project (UUID) whose locks and keys this connection manages (scope project.admin).",
        },
        "timeoutSeconds": TIMEOUT,
        "eventTypes": event_types_schema(V2_EVENT_TYPES, ["unloc.lock_unlocked"]),
    },
}

INTEGRATORS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["client_id", "client_secret"],
    "additionalProperties": False,
    "properties": {
        "base_url": BASE_URL,
        "client_id": {
            "type": "string",
            "minLength": 1,
            "description": "Integrator OAuth2 client id.",
        },
        "client_secret": {
            "type": "string",
            "minLength": 1,
            "writeOnly": True,
            "description": "Integrator OAuth2 client secret.",
        },
        "lock_holder_ids": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Lock holders to act for (scope lockHolder.admin:<id>); leave empty for integrator.admin.",
        },
        "timeoutSeconds": TIMEOUT,
        "eventTypes": event_types_schema(INTEGRATORS_EVENT_TYPES, ["unloc_integrators.key_used"]),
    },
}


async def test_v2(connection: Connection) -> dict[str, Any]:
    client = UnlocClient(connection, "unloc connection test")
    project = await client.get_project()
    locks = await client.list_locks(limit=1)
    return {
        "ok": True,
        "project": project.get("name") or client.project_id,
        "hasLocks": bool(locks["locks"]),
    }


async def test_integrators(connection: Connection) -> dict[str, Any]:
    holders = await IntegratorsClient(
        connection, "unloc_integrators connection test"
    ).list_lock_holders()
    return {"ok": True, "lockHolders": [h.get("name") for h in holders]}


def v2_config(url: str) -> dict[str, Any]:
    """``unloc`` connection settings for the simulator at ``url`` (its demo credentials)."""
    return {
        "base_url": url,
        "client_id": SIM_CLIENT_ID,
        "client_secret": SIM_CLIENT_SECRET,
        "project_id": SIM_PROJECT_ID,
    }


def integrators_config(url: str) -> dict[str, Any]:
    """``unloc_integrators`` connection settings for the simulator at ``url``."""
    return {
        "base_url": url,
        "client_id": SIM_INTEGRATOR_CLIENT_ID,
        "client_secret": SIM_INTEGRATOR_CLIENT_SECRET,
        "lock_holder_ids": [SIM_LOCK_HOLDER_ID],
    }


def sandbox_connection(vendor: str, config: dict[str, Any], http: httpx.AsyncClient) -> Connection:
    return Connection(id="sandbox", vendor=vendor, config=config, http=http, clock=SystemClock())


async def sandbox_v2(sim_base_url: str, webhook_url: str) -> dict[str, Any]:
    """Demo credentials of a running simulator; ``webhook_url`` gets every lock's access events."""
    config = v2_config(sim_base_url)
    async with httpx.AsyncClient(timeout=10.0) as http:
        client = UnlocClient(sandbox_connection("unloc", config, http), "unloc sandbox")
        for lock in await client.all_locks():
            await client.register_access_webhook(webhook_url, lock["id"])
    return config


async def sandbox_integrators(sim_base_url: str, webhook_url: str) -> dict[str, Any]:
    """Demo integrator credentials; ``webhook_url`` gets key events of every demo lock."""
    config = integrators_config(sim_base_url)
    async with httpx.AsyncClient(timeout=10.0) as http:
        client = IntegratorsClient(
            sandbox_connection("unloc_integrators", config, http), "unloc_integrators sandbox"
        )
        for lock in await client.list_locks(None):
            await client.register_key_event_webhook(None, lock["id"], webhook_url)
    return config


UNLOC = Vendor(
    key="unloc",
    title="Unloc",
    description="Unloc digital keys for smart locks (v2 Projects API): keys for phone numbers, recurrence, revocation, access events.",
    connection_schema=V2_SCHEMA,
    test_connection=test_v2,
    webhook=access_event,
    simulator=create_app,
    sandbox=sandbox_v2,
)

UNLOC_INTEGRATORS = Vendor(
    key="unloc_integrators",
    title="Unloc (integrators v1)",
    description="Unloc's Integrators v1 API: lock holders, their locks and keys, and key-event webhooks.",
    connection_schema=INTEGRATORS_SCHEMA,
    test_connection=test_integrators,
    webhook=key_event,
    simulator=create_app,
    sandbox=sandbox_integrators,
)
