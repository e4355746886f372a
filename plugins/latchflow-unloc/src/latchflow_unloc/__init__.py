"""latchflow plugin for Unloc digital keys: v2 Projects API and Integrators v1 API."""

from latchflow_unloc.client import UnlocClient
from latchflow_unloc.integrators import IntegratorsClient
from latchflow_unloc.phone import to_e164

__all__ = ["IntegratorsClient", "UnlocClient", "to_e164"]
