"""The ``http`` vendor: credentials ``http.request`` sends, kept in a connection instead of a flow.

A flow document is stored and shown as written, so a token written into it is a token in plain
text. An ``http`` connection keeps it sealed (its secret fields are ``writeOnly``) and names the
one origin it may be sent to (``base_url``): a step that names the connection gets the header;
a URL elsewhere fails rather than leak it. Literal credential headers in an ``http.request``
step are a validation error that points here.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

import httpx

from latchflow import JSON, Connection, ErrorDetail, FatalError, Vendor, hookimpl

CREDENTIAL_HEADER = re.compile(
    r"authorization|cookie|secret|password|passwd|token|api[_-]?key|private|credential", re.I
)
"""Header names whose value is a credential."""

HTTP = Vendor(
    key="http",
    title="HTTP credentials",
    description=(
        "Credentials http.request sends to one origin: a bearer token, a user and password"
        " (basic) or one header. Name the connection in the step."
    ),
    connection_schema={
        "type": "object",
        "required": ["base_url", "auth"],
        "properties": {
            "base_url": {
                "type": "string",
                "pattern": "^https?://",
                "description": "Origin the credentials may be sent to, e.g. https://pms.example.com",
            },
            "auth": {
                "enum": ["bearer", "basic", "header"],
                "description": "bearer: Authorization: Bearer <token>; basic: user and password;"
                " header: <header_name>: <header_value>",
            },
            "token": {"type": "string", "writeOnly": True, "description": "Bearer token"},
            "username": {"type": "string", "description": "User name (basic)"},
            "password": {"type": "string", "writeOnly": True, "description": "Password (basic)"},
            "header_name": {"type": "string", "description": "Header name, e.g. X-Api-Key"},
            "header_value": {
                "type": "string",
                "writeOnly": True,
                "description": "Header value",
            },
        },
        "additionalProperties": False,
    },
    test_connection=lambda connection: _describe(connection),
)


async def _describe(connection: Connection) -> JSON:
    """What the connection sends where (nothing is called: the origin may have no test URL)."""
    header, _ = auth_header(connection.config)
    return {"sends": header, "to": origin(connection.config["base_url"])}


def origin(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii')}"


def auth_header(config: JSON) -> tuple[str, str]:
    """The header (name, value) an ``http`` connection's settings make."""
    auth = config.get("auth")
    if auth == "bearer" and config.get("token"):
        return "authorization", f"Bearer {config['token']}"
    if auth == "basic" and config.get("username") is not None and config.get("password"):
        pair = f"{config['username']}:{config['password']}".encode()
        return "authorization", "Basic " + base64.b64encode(pair).decode()
    if auth == "header" and config.get("header_name") and config.get("header_value"):
        return str(config["header_name"]).lower(), str(config["header_value"])
    needs = {
        "bearer": "token",
        "basic": "username and password",
        "header": "header_name and header_value",
    }
    raise FatalError(
        f"the http connection's auth {auth!r} needs {needs.get(str(auth), 'an auth kind')}"
    )


def credential_headers(connection: Connection, url: str) -> dict[str, str]:
    """The header to send ``url`` with the connection's credentials (FatalError elsewhere)."""
    allowed = origin(connection.config["base_url"])
    if origin(url) != allowed:
        raise FatalError(
            f"$.input.url: connection {connection.id!r} sends its credentials only to {allowed};"
            f" {origin(url)} is elsewhere (use a connection for that origin)"
        )
    name, value = auth_header(connection.config)
    return {name: value}


def literal_credentials(data: JSON, where: str) -> list[ErrorDetail]:
    """Credential headers written into a flow as text (an expression is fine)."""
    headers: Any = data.get("headers")
    if not isinstance(headers, dict):
        return []
    return [
        ErrorDetail(
            f"{where}.headers.{name}",
            "a credential written into the flow is stored and shown in plain text; keep it in"
            " an 'http' connection (auth bearer, basic or header) and name that connection in"
            " the step's 'connection'",
        )
        for name, value in headers.items()
        if CREDENTIAL_HEADER.search(str(name))
        and isinstance(value, str)
        and "{{" not in value
        and value.strip()
    ]


@hookimpl
def register_vendors(register: Callable[[Vendor], None]) -> None:
    register(HTTP)
