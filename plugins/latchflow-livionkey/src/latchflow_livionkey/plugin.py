"""latchflow entry point: the LivionKey vendors (API V1 and V2), their triggers and actions."""

from __future__ import annotations

from collections.abc import Callable

from latchflow import Action, CredentialProvider, Trigger, Vendor, hookimpl
from latchflow_livionkey.access import PROVIDERS
from latchflow_livionkey.connection import VENDORS
from latchflow_livionkey.triggers import TRIGGERS
from latchflow_livionkey.v1_actions import ACTIONS as V1_ACTIONS
from latchflow_livionkey.v2_actions import ACTIONS as V2_ACTIONS


@hookimpl
def register_vendors(register: Callable[[Vendor], None]) -> None:
    for vendor in VENDORS:
        register(vendor)


@hookimpl
def register_triggers(register: Callable[[Trigger], None]) -> None:
    for trigger in TRIGGERS:
        register(trigger)


@hookimpl
def register_actions(register: Callable[[Action], None]) -> None:
    for action in [*V1_ACTIONS, *V2_ACTIONS]:
        register(action)


@hookimpl
def register_credential_providers(register: Callable[[CredentialProvider], None]) -> None:
    for provider in PROVIDERS:
        register(provider)
