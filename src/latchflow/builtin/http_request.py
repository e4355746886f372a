"""The ``http.request`` action: call any HTTP endpoint, refusing non-public addresses by default.

The request goes through the guarded client of :mod:`latchflow.builtin.egress` (not the
engine's shared client): the address checked is the address connected to.
"""

from __future__ import annotations

from typing import Any

import httpx

from latchflow import (
    JSON,
    Action,
    FatalError,
    RetryableError,
    RetrySafety,
    RunContext,
)
from latchflow.builtin.egress import Egress
from latchflow.builtin.http_credentials import HTTP, credential_headers, literal_credentials

EGRESS = Egress()
"""The guarded clients every ``http.request`` step uses (tests pass their own to ``send``)."""


def check_url(url: str) -> None:
    """Refuse anything but an absolute http(s) URL."""
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise FatalError(f"$.input.url: {url!r} is not a valid URL: {exc}") from exc
    if target.scheme not in ("http", "https") or not target.host:
        raise FatalError(f"$.input.url: {url!r} is not an http(s) URL")


async def send(ctx: RunContext, data: JSON, egress: Egress = EGRESS) -> JSON:
    check_url(data["url"])
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
    if ctx.connection is not None and ctx.connection.vendor == HTTP.key:
        kwargs["headers"].update(credential_headers(ctx.connection, data["url"]))
    try:
        async with egress.client() as client:
            response = await client.request(data.get("method", "POST"), data["url"], **kwargs)
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
        " Non-public addresses are refused unless LATCHFLOW_HTTP_ALLOW_NETWORKS allows them;"
        " proxies are not used and redirects are not followed. Credentials come from an"
        " 'http' connection named in the step, never from the flow. Every attempt of a step"
        " sends the same Idempotency-Key header: a receiver that honours it applies a retried"
        " request once."
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
    connection=HTTP.key,
    connection_required=False,
    retry_safety=RetrySafety.IDEMPOTENCY_KEY,
    check_input=literal_credentials,
)
