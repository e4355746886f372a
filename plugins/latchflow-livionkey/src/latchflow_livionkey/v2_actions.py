"""Every API V2 action (connection type ``livionkey_v2``), one module per API category."""

from __future__ import annotations

from latchflow import Action
from latchflow_livionkey import v2_automats, v2_contracts

ACTIONS: list[Action] = [*v2_contracts.ACTIONS, *v2_automats.ACTIONS]
