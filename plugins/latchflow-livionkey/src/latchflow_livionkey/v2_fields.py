"""What the API V2 action modules share: the action factory and the step's client."""

from __future__ import annotations

from functools import partial

from latchflow import RunContext
from latchflow_livionkey.schemas import VENDOR_V2, action, connection_of
from latchflow_livionkey.v2_client import V2Client

v2_action = partial(action, VENDOR_V2)
"""A ``livionkey.<key>`` action on a ``livionkey_v2`` (API V2) connection."""


def client_of(ctx: RunContext) -> V2Client:
    return V2Client(connection_of(ctx, VENDOR_V2))
