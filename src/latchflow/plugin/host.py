"""Loading plugins and validating what they register."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from latchflow.plugin import hookspecs
from latchflow.plugin.access import CredentialProvider, ResourceKind
from latchflow.plugin.errors import PluginError
from latchflow.plugin.types import Action, Trigger, Vendor

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$")
BUILTIN_PLUGINS = (
    "latchflow.builtin.http_credentials",
    "latchflow.builtin.actions",
    "latchflow.builtin.triggers",
    "latchflow.builtin.access",
)


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin: its name, version and what it registered."""

    name: str
    version: str | None
    vendors: list[str] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    resource_kinds: list[str] = field(default_factory=list)


@dataclass
class Registry:
    """Every vendor, trigger and action the loaded plugins registered, by key."""

    vendors: dict[str, Vendor] = field(default_factory=dict)
    triggers: dict[str, Trigger] = field(default_factory=dict)
    actions: dict[str, Action] = field(default_factory=dict)
    providers: dict[str, CredentialProvider] = field(default_factory=dict)
    """Credential providers by the resource kinds they serve."""
    plugins: list[PluginInfo] = field(default_factory=list)

    def add_vendor(self, vendor: Vendor, plugin: PluginInfo) -> None:
        where = f"plugin {plugin.name!r}, vendor {vendor.key!r}"
        _check_key(vendor.key, self.vendors, where)
        _check_text(vendor, where)
        _check_schema(vendor.connection_schema, f"{where}, connection_schema")
        self.vendors[vendor.key] = vendor
        plugin.vendors.append(vendor.key)

    def add_trigger(self, trigger: Trigger, plugin: PluginInfo) -> None:
        where = f"plugin {plugin.name!r}, trigger {trigger.key!r}"
        self._check_component(trigger, self.triggers, where)
        self.triggers[trigger.key] = trigger
        plugin.triggers.append(trigger.key)

    def add_action(self, action: Action, plugin: PluginInfo) -> None:
        where = f"plugin {plugin.name!r}, action {action.key!r}"
        self._check_component(action, self.actions, where)
        self.actions[action.key] = action
        plugin.actions.append(action.key)

    def add_provider(self, provider: CredentialProvider, plugin: PluginInfo) -> None:
        where = f"plugin {plugin.name!r}, credential provider for {provider.vendor!r}"
        if provider.vendor not in self.vendors:
            raise PluginError(
                f"{where}: names vendor {provider.vendor!r}, which no plugin registered"
            )
        if not provider.resource_kinds:
            raise PluginError(f"{where}: give at least one resource kind")
        for kind in provider.resource_kinds:
            _check_key(kind.key, self.providers, f"{where}, resource kind {kind.key!r}")
            _check_text(kind, f"{where}, resource kind {kind.key!r}")
            if not kind.credentials:
                raise PluginError(
                    f"{where}, resource kind {kind.key!r}: name the credential kinds it issues"
                )
        for kind in provider.resource_kinds:
            self.providers[kind.key] = provider
            plugin.resource_kinds.append(kind.key)

    def _check_component(
        self, item: Action | Trigger, existing: dict[str, Any], where: str
    ) -> None:
        _check_key(item.key, existing, where)
        _check_text(item, where)
        _check_schema(item.input_schema, f"{where}, input_schema")
        _check_schema(item.output_schema, f"{where}, output_schema")
        errors = list(Draft202012Validator(item.output_schema).iter_errors(item.sample))
        if errors:
            raise PluginError(f"{where}: sample does not match output_schema: {errors[0].message}")
        if item.connection is not None and item.connection not in self.vendors:
            raise PluginError(
                f"{where}: connection names vendor {item.connection!r}, which no plugin registered"
            )


def _check_key(key: str, existing: dict[str, Any], where: str) -> None:
    if not KEY_PATTERN.match(key):
        raise PluginError(
            f"{where}: key must look like 'vendor.noun_verb' (lowercase, underscores)"
        )
    if key in existing:
        raise PluginError(f"{where}: key {key!r} is already registered")


def _check_text(item: Vendor | Action | Trigger | ResourceKind, where: str) -> None:
    for attr in ("title", "description"):
        if not str(getattr(item, attr, "")).strip():
            raise PluginError(f"{where}: {attr} is required")


def _check_schema(schema: Any, where: str) -> None:
    if not isinstance(schema, dict):
        raise PluginError(f"{where}: must be a JSON Schema object")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise PluginError(f"{where}: invalid JSON Schema: {exc.message}") from exc


def plugin_manager(extra: Iterable[object] = ()) -> pluggy.PluginManager:
    """The built-ins, the installed plugins allowed by ``LATCHFLOW_LOAD_PLUGINS``, and ``extra``.

    ``LATCHFLOW_LOAD_PLUGINS`` is a comma list of entry point names; set but empty loads none.
    ``LATCHFLOW_TRACE_HOOKS=1`` prints every hook call, for debugging plugins.
    """
    pm = pluggy.PluginManager("latchflow")
    pm.add_hookspecs(hookspecs)
    for module_name in BUILTIN_PLUGINS:
        module = __import__(module_name, fromlist=["_"])
        pm.register(module, name=module_name)
    allowed = os.environ.get("LATCHFLOW_LOAD_PLUGINS")
    names = None if allowed is None else {n.strip() for n in allowed.split(",") if n.strip()}
    for ep in metadata.entry_points(group="latchflow"):
        if names is not None and ep.name not in names:
            continue
        if pm.get_plugin(ep.name) is None:
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"plugin {ep.name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc};"
                    " reinstall it, or leave it out with LATCHFLOW_LOAD_PLUGINS"
                ) from exc
            pm.register(plugin, name=ep.name)
    for plugin in extra:
        pm.register(plugin)
    pm.check_pending()
    if os.environ.get("LATCHFLOW_TRACE_HOOKS"):
        pm.trace.root.setwriter(print)
        pm.enable_tracing()
    return pm


def build_registry(pm: pluggy.PluginManager) -> Registry:
    """Call the registration hooks, one plugin at a time so errors name the plugin."""
    registry = Registry()
    infos: dict[str, PluginInfo] = {}
    for name, plugin in pm.list_name_plugin():
        infos[name] = PluginInfo(name=name, version=_version(pm, plugin, name))
        registry.plugins.append(infos[name])
    hooks = (
        ("register_vendors", registry.add_vendor),
        ("register_triggers", registry.add_trigger),
        ("register_actions", registry.add_action),
        ("register_credential_providers", registry.add_provider),
    )
    for hook_name, add in hooks:
        for name, plugin in pm.list_name_plugin():
            others = [p for p in pm.get_plugins() if p is not plugin]
            call_one = pm.subset_hook_caller(hook_name, remove_plugins=others)
            info = infos[name]
            call_one(register=lambda item, add=add, info=info: add(item, info))
    return registry


def load_registry(extra: Iterable[object] = ()) -> Registry:
    """Load plugins and build the registry."""
    return build_registry(plugin_manager(extra))


def _version(pm: pluggy.PluginManager, plugin: object, name: str) -> str | None:
    for dist_plugin, dist in pm.list_plugin_distinfo():
        if dist_plugin is plugin:
            return str(dist.version)
    if name in BUILTIN_PLUGINS:
        return metadata.version("latchflow")
    return None
