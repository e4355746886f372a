"""The plugin contract: hooks a latchflow plugin may implement.

Each hook receives a ``register`` callback; the host validates every registration when it
happens, so a bad schema or a duplicate key fails with the plugin's name at load time.
The hooks are called once, when the registry is built, in this order: vendors, triggers,
actions, credential providers.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from latchflow.plugin.access import CredentialProvider
from latchflow.plugin.types import Action, Trigger, Vendor

hookspec = pluggy.HookspecMarker("latchflow")
hookimpl = pluggy.HookimplMarker("latchflow")


@hookspec
def register_vendors(register: Callable[[Vendor], None]) -> None:
    """Register vendor APIs (connection schema, connection test, webhook handler, simulator).

    :param register: call once per ``Vendor``.
    """


@hookspec
def register_triggers(register: Callable[[Trigger], None]) -> None:
    """Register triggers: events a flow can start on.

    Called after every plugin's vendors are registered, so ``Trigger.connection`` can name them.

    :param register: call once per ``Trigger``.
    """


@hookspec
def register_actions(register: Callable[[Action], None]) -> None:
    """Register actions: commands a flow step can run.

    Called after every plugin's vendors are registered, so ``Action.connection`` can name them.

    :param register: call once per ``Action``.
    """


@hookspec
def register_credential_providers(register: Callable[[CredentialProvider], None]) -> None:
    """Register credential providers: how access grants issue, change, revoke and inspect
    credentials on a vendor's resource kinds.

    Called after every plugin's vendors are registered, so ``CredentialProvider.vendor`` can
    name them.

    :param register: call once per ``CredentialProvider``.
    """
