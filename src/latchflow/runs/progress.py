"""A run being advanced: its rows and scope kept across its steps, and what a step came to."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jsonschema import Draft202012Validator

from latchflow.flows.document import Flow
from latchflow.plugin.types import JSON, Action
from latchflow.storage.journal import RunRow, StepRow
from latchflow.storage.secrets import at_paths

_VALIDATORS: dict[int, tuple[JSON, Draft202012Validator]] = {}


def validator(schema: JSON) -> Draft202012Validator:
    """A validator for an action's schema, built once (actions' schemas do not change)."""
    cached = _VALIDATORS.get(id(schema))
    if cached is None or cached[0] is not schema:
        cached = _VALIDATORS[id(schema)] = (schema, Draft202012Validator(schema))
    return cached[1]


class ClaimLost(Exception):
    """Another worker claimed the run between its loading and its first checkpoint."""


@dataclass
class Progress:
    """A run being advanced: its rows and its scope, read once and kept across its steps."""

    run: RunRow
    flow: Flow
    scope: JSON
    records: dict[str, StepRow]
    claim: bool
    """Claim the run with its first checkpoint and release it with its last (``execute``)."""
    loaded: tuple[str, int, datetime | None]
    """Status, step index and due time as loaded: the claim holds only if none has changed."""
    claimed: bool = False
    changed: dict[str, StepRow] = field(default_factory=dict)
    """Steps to write with the next checkpoint."""
    queue_at: datetime | None = None
    """When the next checkpoint queues the run to be advanced again."""
    inputs: dict[str, Any] = field(default_factory=dict)
    """Inputs rendered by this process, so its first call need not decrypt them."""
    credentials: frozenset[str] = frozenset()
    """Credentials the run's steps issued: masked wherever the run is shown."""

    def remember_credentials(self, action: Action | None, output: Any) -> None:
        """Remember the credentials in a step's output (``Action.credentials``), to mask them
        from then on."""
        if action is not None and action.credentials:
            found = at_paths(output, action.credentials)
            self.credentials |= {str(v) for v in found if not isinstance(v, dict | list)}

    def touch(self, *records: StepRow) -> None:
        for record in records:
            self.changed[record.step_id] = record


class Outcome(enum.Enum):
    CONTINUE = "continue"
    WAIT = "wait"
    DONE = "done"
