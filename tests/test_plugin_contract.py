"""The plugin contract: hooks documented and tested, registrations validated, loading controlled."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

import latchflow
from latchflow import (
    Action,
    CredentialKind,
    CredentialProvider,
    ResourceKind,
    RetrySafety,
    Trigger,
    Vendor,
    hookimpl,
)
from latchflow.builtin.actions import ACTIONS
from latchflow.builtin.triggers import MANUAL
from latchflow.plugin import hookspecs
from latchflow.plugin.errors import PluginError
from latchflow.plugin.host import load_registry
from latchflow.testing import conformance_problems

from .support import AcmePlugin

ROOT = Path(__file__).parent.parent
HOOKS = [name for name, f in vars(hookspecs).items() if hasattr(f, "latchflow_spec")]


def test_the_public_api_is_frozen() -> None:
    assert latchflow.__all__ == [
        "JSON", "AccessWindow", "Action", "ActionError", "Clock", "ConfigurationError", "Connection",
        "CredentialKind", "CredentialProvider", "CredentialRequest", "ErrorDetail",
        "ExpressionError", "FakeClock", "FatalError", "Holder", "LatchflowError", "Pending",
        "PluginError", "PollResult", "RateLimitedError", "Resource", "ResourceKind", "RetryPolicy", "RetrySafety",
        "RetryableError", "RunContext", "RunFiltered", "SkipError", "SystemClock", "Trigger",
        "TriggerEvent", "UnmappedEvent", "ValidationError", "Vendor", "VendorCredential",
        "WebhookError", "WebhookRequest", "WeeklyHours", "event_types_schema", "hookimpl",
        "map_event", "match_fields", "parse_moment", "unix_seconds",
    ]  # fmt: skip
    for name in latchflow.__all__:
        assert hasattr(latchflow, name)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_its_exact_signature(hook: str) -> None:
    docs = (ROOT / "docs" / "plugin-hooks.md").read_text()
    signature = str(inspect.signature(getattr(hookspecs, hook))).replace("'", "")
    assert f"## {hook}\n" in docs
    assert f"def {hook}{signature}" in docs


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook: str) -> None:
    tests = "".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    assert re.search(rf"def test_hook_{hook}\b", tests)


def single(hook: str, item: object) -> object:
    class One:
        """A plugin object that gets one hook implementation set on it."""

    def impl(register: Callable[[object], None]) -> None:
        register(item)

    setattr(One, hook, staticmethod(hookimpl(impl)))
    return One()


def test_hook_register_vendors(acme: AcmePlugin) -> None:
    registry = load_registry(extra=[acme])
    assert registry.vendors["acme"].title == "Acme Locks"
    assert next(p for p in registry.plugins if p.vendors == ["acme"])


def test_hook_register_triggers() -> None:
    trigger = replace(MANUAL, key="acme.door_opened", title="Door opened")
    registry = load_registry(extra=[single("register_triggers", trigger)])
    assert registry.triggers["acme.door_opened"].title == "Door opened"
    assert {"webhook", "schedule", "manual"} <= set(registry.triggers)


def test_hook_register_actions(acme: AcmePlugin) -> None:
    registry = load_registry(extra=[acme])
    assert {"acme.record", "core.set", "core.filter", "core.delay", "http.request"} <= set(
        registry.actions
    )
    builtin = next(p for p in registry.plugins if p.name == "latchflow.builtin.actions")
    assert builtin.actions == [a.key for a in ACTIONS]
    assert builtin.version == metadata.version("latchflow")


def test_hook_register_credential_providers() -> None:
    async def nothing(*_args: object) -> Any:
        return []

    provider = CredentialProvider(
        vendor="http",
        resource_kinds=(
            ResourceKind("http.door", "Door", "A door behind an HTTP API", (CredentialKind.PIN,)),
        ),
        issue=nothing,
        revoke=nothing,
        inspect=nothing,
    )
    registry = load_registry(extra=[single("register_credential_providers", provider)])
    assert registry.providers["http.door"] is provider
    twice = [single("register_credential_providers", provider) for _ in range(2)]
    with pytest.raises(PluginError, match=re.escape("'http.door' is already registered")):
        load_registry(extra=twice)
    nobody = replace(provider, vendor="nobody")
    with pytest.raises(PluginError, match="names vendor 'nobody', which no plugin registered"):
        load_registry(extra=[single("register_credential_providers", nobody)])


BASE = ACTIONS[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"key": "Bad Key"}, "key must look like 'vendor.noun_verb'"),
        ({"key": "core.set"}, "key 'core.set' is already registered"),
        ({"title": " "}, "title is required"),
        ({"description": ""}, "description is required"),
        ({"input_schema": {"type": "nonsense"}}, "input_schema: invalid JSON Schema"),
        (
            {"output_schema": {"type": "object", "required": ["x"]}},
            "sample does not match output_schema",
        ),
        ({"connection": "nobody"}, "connection names vendor 'nobody', which no plugin registered"),
    ],
)
def test_invalid_registrations_fail_naming_the_plugin(
    change: dict[str, object], message: str
) -> None:
    bad = replace(BASE, **({"key": "test.thing"} | change))  # type: ignore[arg-type]
    with pytest.raises(PluginError, match=re.escape(message)) as caught:
        load_registry(extra=[single("register_actions", bad)])
    assert "plugin '" in str(caught.value)


def test_a_misspelled_hook_fails_loudly() -> None:
    class Typo:
        @hookimpl
        def register_action(self, register: Callable[[Action], None]) -> None:
            """Misspelled: the hook is register_actions."""

    with pytest.raises(Exception, match="register_action"):
        load_registry(extra=[Typo()])


def test_load_plugins_env_restricts_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATCHFLOW_LOAD_PLUGINS", "")
    names = {p.name for p in load_registry().plugins}
    assert names == {
        "latchflow.builtin.access",
        "latchflow.builtin.actions",
        "latchflow.builtin.http_credentials",
        "latchflow.builtin.triggers",
    }
    monkeypatch.setenv("LATCHFLOW_LOAD_PLUGINS", "no-such-plugin")
    assert {p.name for p in load_registry().plugins} == names


def test_vendor_schema_errors_are_caught() -> None:
    vendor = Vendor(
        key="broken",
        title="Broken",
        description="x",
        connection_schema={"type": 3},
        test_connection=lambda c: None,  # type: ignore[arg-type,return-value]
    )
    with pytest.raises(PluginError, match="connection_schema: invalid JSON Schema"):
        load_registry(extra=[single("register_vendors", vendor)])


def test_trigger_sample_must_match() -> None:
    trigger = Trigger(
        key="x.happened",
        title="X",
        description="x",
        input_schema={},
        output_schema={"type": "string"},
        sample={"not": "a string"},
    )
    with pytest.raises(PluginError, match="sample does not match"):
        load_registry(extra=[single("register_triggers", trigger)])


def test_the_conformance_check_fails_an_action_that_declares_no_retry_safety() -> None:
    undeclared = replace(BASE, key="test.make_thing", retry_safety=None)
    registry = load_registry(extra=[single("register_actions", undeclared)])
    (plugin,) = [p.name for p in registry.plugins if p.actions == ["test.make_thing"]]
    assert conformance_problems(registry, plugin) == [
        "action 'test.make_thing' declares no retry_safety: say how a retry after a lost answer"
        " avoids a second effect (RetrySafety)"
    ]
    declared = replace(undeclared, retry_safety=RetrySafety.RECONCILE)
    registry = load_registry(extra=[single("register_actions", declared)])
    (plugin,) = [p.name for p in registry.plugins if p.actions == ["test.make_thing"]]
    assert conformance_problems(registry, plugin) == []
