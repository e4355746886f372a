"""Conformance checks for a plugin's registrations, and checks that no secret leaks."""

from __future__ import annotations

import base64
import urllib.parse

from latchflow.plugin.host import Registry
from latchflow.plugin.types import JSON

SECRET_WORDS = ("secret", "password", "private", "token", "pem")


def conformance_problems(registry: Registry, plugin_name: str) -> list[str]:
    """What a plugin's registrations lack, beyond what registration already refuses.

    Secret-looking connection fields must be ``writeOnly``; every top-level field of a
    connection or input schema needs a description; every action declares its
    ``retry_safety``; a plugin registers something.
    """
    info = next((p for p in registry.plugins if p.name == plugin_name), None)
    if info is None:
        return [f"plugin {plugin_name!r} is not loaded"]
    problems: list[str] = []
    if not (info.vendors or info.triggers or info.actions):
        problems.append(f"plugin {plugin_name!r} registers nothing")
    for key in info.vendors:
        schema = registry.vendors[key].connection_schema
        for name, prop in schema.get("properties", {}).items():
            if any(w in name.lower() for w in SECRET_WORDS) and not prop.get("writeOnly"):
                problems.append(
                    f"vendor {key!r}: connection field {name!r} looks secret but is not writeOnly"
                )
        problems += _undescribed(schema, f"vendor {key!r} connection_schema")
    for key in info.triggers:
        problems += _undescribed(
            registry.triggers[key].input_schema, f"trigger {key!r} input_schema"
        )
    for key in info.actions:
        action = registry.actions[key]
        problems += _undescribed(action.input_schema, f"action {key!r} input_schema")
        if action.retry_safety is None:
            problems.append(
                f"action {key!r} declares no retry_safety: say how a retry after a lost answer"
                " avoids a second effect (RetrySafety)"
            )
    return problems


def _undescribed(schema: JSON, where: str) -> list[str]:
    return [
        f"{where}: property {name!r} has no description"
        for name, prop in schema.get("properties", {}).items()
        if not (isinstance(prop, dict) and prop.get("description"))
    ]


def secret_forms(secret: str) -> list[str]:
    """A secret as it could leak: raw, URL-encoded, Base64 and Base64url."""
    raw = secret.encode()
    return [
        secret,
        urllib.parse.quote(secret, safe=""),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ]


def assert_no_secret(text: str, secrets: list[str]) -> None:
    """Fail if any secret, raw or encoded, appears in ``text`` (logs, run history, API output)."""
    for secret in secrets:
        for form in secret_forms(secret):
            assert form not in text, f"a secret leaked (as {form[:4]}...)"
