"""The ``http.request`` action: call any HTTP endpoint, refusing private networks by default."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import urllib.parse
from typing import Any

import httpx

from latchflow import JSON, Action, FatalError, RetryableError, RetryPolicy, RunContext

ALLOW_ENV = "LATCHFLOW_HTTP_ALLOW_NETWORKS"


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Networks ``http.request`` may reach despite being private (comma list of CIDRs)."""
    return [
        ipaddress.ip_network(part.strip(), strict=False)
        for part in os.environ.get(ALLOW_ENV, "").split(",")
        if part.strip()
    ]


async def check_target(url: str) -> None:
    """Refuse loopback, private, link-local and other non-public addresses (after DNS)."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise FatalError(f"$.input.url: {url!r} is not an http(s) URL")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parsed.hostname, port)
    except OSError as exc:
        raise RetryableError(f"$.input.url: cannot resolve {parsed.hostname!r}: {exc}") from exc
    allowed = allowed_networks()
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if address.is_global or any(address in net for net in allowed):
            continue
        raise FatalError(
            f"$.input.url: {parsed.hostname} resolves to {address}, a non-public address;"
            f" allow its network in {ALLOW_ENV} (e.g. 127.0.0.0/8) if this is intended"
        )


async def send(ctx: RunContext, data: JSON) -> JSON:
    await check_target(data["url"])
    kwargs: dict[str, Any] = {
        "headers": data.get("headers") or {},
        "params": data.get("query") or None,
        "timeout": data.get("timeout", 30),
    }
    if "json" in data:
        kwargs["json"] = data["json"]
    elif "body" in data:
        kwargs["content"] = str(data["body"]).encode()
    kwargs["headers"].setdefault("idempotency-key", ctx.idempotency_key)
    try:
        response = await ctx.http.request(data.get("method", "POST"), data["url"], **kwargs)
    except httpx.TimeoutException as exc:
        raise RetryableError(f"{data['url']} timed out: {type(exc).__name__}") from exc
    except httpx.TransportError as exc:
        raise RetryableError(f"{data['url']} could not be reached: {exc}") from exc
    if response.status_code == 429 or response.status_code >= 500:
        raise RetryableError.from_response(
            f"{data['url']} answered {response.status_code}", response
        )
    if response.status_code >= 400:
        raise FatalError(f"{data['url']} answered {response.status_code}: {response.text[:300]}")
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return {"status": response.status_code, "headers": dict(response.headers), "body": body}


http_request = Action(
    key="http.request",
    title="HTTP request",
    description=(
        "Send an HTTP request (JSON by default) and return the status, headers and body."
        " 429 and 5xx answers and timeouts are retried; other 4xx answers fail the run."
    ),
    input_schema={
        "type": "object",
        "required": ["url"],
        "properties": {
            "url": {"type": "string", "description": "http(s) URL to call"},
            "method": {
                "enum": ["GET", "POST", "PUT", "PATCH", "DELETE"],
                "default": "POST",
                "description": "HTTP method",
            },
            "headers": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Request headers",
            },
            "query": {
                "type": "object",
                "additionalProperties": {"type": ["string", "number", "boolean"]},
                "description": "Query string parameters",
            },
            "json": {"description": "A JSON body"},
            "body": {"type": "string", "description": "A raw text body (when json is not given)"},
            "timeout": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": 300,
                "default": 30,
                "description": "Seconds before the request counts as timed out (and is retried)",
            },
        },
        "additionalProperties": False,
    },
    output_schema={
        "type": "object",
        "required": ["status", "headers", "body"],
        "properties": {
            "status": {"type": "integer"},
            "headers": {"type": "object"},
            "body": {},
        },
    },
    sample={"status": 200, "headers": {"content-type": "application/json"}, "body": {"ok": True}},
    run=send,
    retry=RetryPolicy(max_attempts=6),
)
