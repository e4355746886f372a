"""The states runs, steps and events are stored in (the values of their ``status`` columns).

A run goes ``queued → running → (waiting → running)* → succeeded | failed | filtered |
cancelled | needs_attention``. A step goes ``running → (retrying | waiting → running)* → succeeded | failed |
skipped | filtered | needs_attention``. An event is ``accepted`` (it has a run), a ``duplicate`` of an earlier one,
``filtered`` (it did not concern the flow) or ``dropped`` (no trigger stands for it). The members are strings, so they compare equal to
the stored text and serialise as it.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"
    """A retry, a delay, a pending vendor job or a cool-down: due again at ``due_at``."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    FILTERED = "filtered"
    """An action said the event does not concern the flow: ended, not failed."""
    CANCELLED = "cancelled"
    NEEDS_ATTENTION = "needs_attention"
    """A step that cannot be retried safely may have reached the vendor: a person checks,
    then replays or cancels the run."""


ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING)
FINISHED = (
    RunStatus.SUCCEEDED,
    RunStatus.FAILED,
    RunStatus.FILTERED,
    RunStatus.CANCELLED,
    RunStatus.NEEDS_ATTENTION,
)
CANCELLABLE = (*ACTIVE, RunStatus.NEEDS_ATTENTION)


class StepStatus(StrEnum):
    RUNNING = "running"
    RETRYING = "retrying"
    WAITING = "waiting"
    """A pending vendor job or a delay: checked again at the run's ``due_at``."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    FILTERED = "filtered"
    NEEDS_ATTENTION = "needs_attention"


DONE = (StepStatus.SUCCEEDED, StepStatus.SKIPPED)
"""Steps a run moves on from."""
FINISHED_STEP = (*DONE, StepStatus.FAILED, StepStatus.FILTERED, StepStatus.NEEDS_ATTENTION)


class EventStatus(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    FILTERED = "filtered"
    DROPPED = "dropped"
    """A vendor event no trigger stands for: kept with the vendor's type, for no flow."""
