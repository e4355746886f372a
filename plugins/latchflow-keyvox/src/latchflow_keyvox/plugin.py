"""The latchflow entry point: registers the KEYVOX vendor, its triggers, its actions and its
credential providers."""

from __future__ import annotations

from collections.abc import Callable

from latchflow import Action, CredentialProvider, Trigger, Vendor, hookimpl
from latchflow_keyvox.access import PROVIDERS
from latchflow_keyvox.actions import ACTIONS
from latchflow_keyvox.triggers import triggers
from latchflow_keyvox.vendor import KEYVOX


@hookimpl
def register_vendors(register: Callable[[Vendor], None]) -> None:
    register(KEYVOX)


@hookimpl
def register_triggers(register: Callable[[Trigger], None]) -> None:
    for trigger in triggers():
        register(trigger)


@hookimpl
def register_actions(register: Callable[[Action], None]) -> None:
    for action in ACTIONS:
        register(action)


@hookimpl
def register_credential_providers(register: Callable[[CredentialProvider], None]) -> None:
    for provider in PROVIDERS:
        register(provider)
