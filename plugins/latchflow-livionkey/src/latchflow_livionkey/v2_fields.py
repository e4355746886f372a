"""What the API V2 action modules share: the retry policy and the step's client."""

from __future__ import annotations

from functools import partial

from latchflow import RetryPolicy, RunContext
from latchflow_livionkey.assumptions import V2_RETRY_BACKOFF
from latchflow_livionkey.schemas import VENDOR_V2, action, connection_of
from latchflow_livionkey.v2_client import V2Client

RETRY = RetryPolicy(
    max_attempts=V2_RETRY_BACKOFF[2],
    initial_delay=V2_RETRY_BACKOFF[0],
    multiplier=V2_RETRY_BACKOFF[1],
)

v2_action = partial(action, VENDOR_V2, retry=RETRY)
"""A ``livionkey.<key>`` action on a ``livionkey_v2`` connection, with API V2's retry policy."""


def client_of(ctx: RunContext) -> V2Client:
    return V2Client(connection_of(ctx, VENDOR_V2))
