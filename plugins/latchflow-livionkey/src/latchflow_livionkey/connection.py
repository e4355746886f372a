"""The two connection types: ``livionkey`` (API V1, JWT) and ``livionkey_v2`` (API V2, RSA)."""

from __future__ import annotations

import secrets

import httpx

from latchflow import JSON, Connection, Vendor, event_types_schema
from latchflow_livionkey import sim_v1, sim_v2_routes, v2_signing
from latchflow_livionkey.assumptions import (
    V1_BASE_URL,
    V1_EVENT_TYPES,
    V1_WEBHOOK_HEADER,
    V2_BASE_URL,
    V2_EVENT_TYPES,
)
from latchflow_livionkey.http import TIMEOUT_SETTING
from latchflow_livionkey.schemas import VENDOR_V1, VENDOR_V2
from latchflow_livionkey.triggers import V1_TRIGGERS, V2_TRIGGERS
from latchflow_livionkey.v1_client import V1Client
from latchflow_livionkey.v2_client import V2Client
from latchflow_livionkey.webhooks import v1_webhook, v2_webhook

V1_SCHEMA: JSON = {
    "type": "object",
    "required": ["email", "password"],
    "properties": {
        "base_url": {
            "type": "string",
            "format": "uri",
            "default": V1_BASE_URL,
            "description": "API V1 address (change only for the simulator)",
        },
        "email": {
            "type": "string",
            "description": "E-mail of the LivionKey user that Livion enabled for API use",
        },
        "password": {"type": "string", "writeOnly": True, "description": "That user's password"},
        "webhook_header": {
            "type": "string",
            "default": V1_WEBHOOK_HEADER,
            "description": "Header Livion's push notifications carry the shared secret in",
        },
        "webhook_secret": {
            "type": "string",
            "writeOnly": True,
            "description": "Shared secret Livion sends in webhook_header; when set, pushes without it are refused",
        },
        "eventTypes": event_types_schema(V1_EVENT_TYPES, [t.key for t in V1_TRIGGERS]),
        "timeoutSeconds": TIMEOUT_SETTING,
    },
    "additionalProperties": False,
}
V2_SCHEMA: JSON = {
    "type": "object",
    "required": ["service_account_id", "private_key_pem"],
    "properties": {
        "base_url": {
            "type": "string",
            "format": "uri",
            "default": V2_BASE_URL,
            "description": "API V2 address including /v2 (change only for the simulator)",
        },
        "service_account_id": {
            "type": "string",
            "description": "Service account id from the LivionKey web app",
        },
        "private_key_pem": {
            "type": "string",
            "writeOnly": True,
            "description": "The service account's RSA private key (PEM), shown once when it was created",
        },
        "webhook_secret": {
            "type": "string",
            "writeOnly": True,
            "description": "Signing secret (whsec_...) of the webhook subscription, for the V2 triggers",
        },
        "eventTypes": event_types_schema(V2_EVENT_TYPES, [t.key for t in V2_TRIGGERS]),
        "timeoutSeconds": TIMEOUT_SETTING,
    },
    "additionalProperties": False,
}


async def test_v1(connection: Connection) -> JSON:
    client = V1Client(connection)
    await client.login()
    devices = await client.request("GET", "/devices")
    return {"ok": True, "devices": len(devices)}


async def test_v2(connection: Connection) -> JSON:
    page = await V2Client(connection).request("GET", "/automats", params={"limit": 1})
    return {"ok": True, "automats_visible": bool(page.get("data"))}


async def sandbox_v1(sim_base_url: str, webhook_url: str) -> JSON:
    """Point the simulator's push notifications at latchflow, with a fresh shared secret."""
    secret = secrets.token_urlsafe(24)
    async with httpx.AsyncClient(timeout=10.0) as http:
        response = await http.post(
            f"{sim_base_url}/_sim/v1/push",
            json={"url": webhook_url, "headerName": V1_WEBHOOK_HEADER, "headerValue": secret},
        )
        response.raise_for_status()
    return {
        "base_url": sim_base_url,
        "email": sim_v1.DEMO_EMAIL,
        "password": sim_v1.DEMO_PASSWORD,
        "webhook_header": V1_WEBHOOK_HEADER,
        "webhook_secret": secret,
    }


async def sandbox_v2(sim_base_url: str, webhook_url: str) -> JSON:
    """A new RSA key pair whose public half the simulator learns, and a webhook subscription."""
    private_pem, public_pem = v2_signing.generate_key_pair()
    async with httpx.AsyncClient(timeout=10.0) as http:
        account = await http.post(
            f"{sim_base_url}/_sim/v2/service-accounts",
            json={"name": "latchflow sandbox", "publicKeyPem": public_pem},
        )
        account.raise_for_status()
        subscription = await http.post(
            f"{sim_base_url}/_sim/v2/webhook-subscriptions", json={"url": webhook_url}
        )
        subscription.raise_for_status()
    return {
        "base_url": f"{sim_base_url}/v2",
        "service_account_id": account.json()["id"],
        "private_key_pem": private_pem,
        "webhook_secret": subscription.json()["secret"],
    }


VENDORS = [
    Vendor(
        key=VENDOR_V1,
        title="LivionKey (API V1)",
        description="LivionKey30 and LivionKey1 key automats through the legacy REST API: devices, keys, pincode contracts, push notifications.",
        connection_schema=V1_SCHEMA,
        test_connection=test_v1,
        webhook=v1_webhook,
        simulator=sim_v1.create_app,
        sandbox=sandbox_v1,
    ),
    Vendor(
        key=VENDOR_V2,
        title="LivionKey (API V2)",
        description="LivionKey automats through API V2 with a signed service account: iLOQ S5 key handover and return contracts, automats, groups, signed webhooks.",
        connection_schema=V2_SCHEMA,
        test_connection=test_v2,
        webhook=v2_webhook,
        simulator=sim_v2_routes.create_app,
        sandbox=sandbox_v2,
    ),
]
