"""Every API V1 action (connection type ``livionkey``), one module per API category."""

from __future__ import annotations

from latchflow import Action
from latchflow_livionkey import v1_contracts, v1_devices, v1_keys

ACTIONS: list[Action] = [*v1_devices.ACTIONS, *v1_keys.ACTIONS, *v1_contracts.ACTIONS]
