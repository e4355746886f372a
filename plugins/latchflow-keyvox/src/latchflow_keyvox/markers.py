"""The marker a create leaves in a name so that a later attempt of the same step finds it.

KEYVOX has no idempotency key. A create appends `` #lf-<hash of the step's idempotency
key>`` to a name it sends (a PIN's ``targetName``, a booking's ``orderContact``); a retried
or replayed step looks for that name before creating. The marker is stripped from every name
the plugin shows.
"""

from __future__ import annotations

import hashlib

from latchflow_keyvox import assumptions as A


def marker(idempotency_key: str) -> str:
    """The suffix a step with ``idempotency_key`` adds to the names it sends."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[: A.IDEMPOTENCY_TAG_LENGTH]
    return f"{A.IDEMPOTENCY_TAG_PREFIX}{digest}"


def strip_marker(name: str) -> str:
    """``name`` without the marker a create added to it."""
    cut = name.rfind(A.IDEMPOTENCY_TAG_PREFIX)
    return name[:cut] if cut >= 0 else name
