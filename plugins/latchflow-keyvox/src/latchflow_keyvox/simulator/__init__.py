"""A KEYVOX simulator: signed API, state, rules, webhooks and ``/_sim/`` controls."""

from latchflow_keyvox.simulator.app import create_app
from latchflow_keyvox.simulator.world import World

__all__ = ["World", "create_app"]
