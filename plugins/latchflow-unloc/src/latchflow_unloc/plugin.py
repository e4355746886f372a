"""The latchflow hooks of the Unloc plugin."""

from __future__ import annotations

from collections.abc import Callable

from latchflow import Action, CredentialProvider, Trigger, Vendor, hookimpl
from latchflow_unloc import (
    access,
    create_key,
    create_keys,
    integrator_actions,
    integrator_creates,
    read_actions,
    revoke_actions,
    triggers,
)
from latchflow_unloc.vendors import UNLOC, UNLOC_INTEGRATORS

ACTIONS = (
    create_key.CREATE_KEY,
    create_keys.CREATE_KEYS,
    revoke_actions.REVOKE_KEY,
    revoke_actions.REVOKE_KEYS,
    read_actions.GET_KEY,
    read_actions.LIST_KEYS,
    read_actions.LIST_LOCKS,
    read_actions.GET_JOB,
    integrator_actions.LIST_LOCK_HOLDERS,
    integrator_creates.CREATE_LOCK_HOLDER,
    integrator_actions.LIST_LOCKS,
    integrator_actions.GET_LOCK,
    integrator_actions.LIST_KEYS,
    integrator_creates.CREATE_KEY,
)
TRIGGERS = (
    triggers.KEY_STATE_CHANGED,
    triggers.KEY_EXPIRED,
    triggers.LOCK_UNLOCKED,
    triggers.KEY_USED,
)


@hookimpl
def register_vendors(register: Callable[[Vendor], None]) -> None:
    register(UNLOC)
    register(UNLOC_INTEGRATORS)


@hookimpl
def register_triggers(register: Callable[[Trigger], None]) -> None:
    for trigger in TRIGGERS:
        register(trigger)


@hookimpl
def register_actions(register: Callable[[Action], None]) -> None:
    for action in ACTIONS:
        register(action)


@hookimpl
def register_credential_providers(register: Callable[[CredentialProvider], None]) -> None:
    register(access.PROVIDER)
