"""Errors, sorted by what the engine should do about them.

    LatchflowError
    ├── ActionError                 raised by actions and vendor clients during a step
    │   ├── RetryableError          try the step again later (429, 5xx, timeouts, lock offline);
    │   │                           ``retry_after`` (seconds) overrides the backoff when known
    │   │   └── RateLimitedError    the vendor rate-limited the connection (429): every call on
    │   │                           that connection waits, not only this step
    │   ├── FatalError              the run fails; retrying cannot help (bad input, not found)
    │   │   └── ConfigurationError  the connection or settings are wrong (credentials, permissions)
    │   ├── SkipError               this step is skipped, the run goes on
    │   └── RunFiltered             the run ends as "filtered" (not failed): nothing to do
    ├── ValidationError             a document or input is invalid; lists ErrorDetail(path, message)
    ├── ExpressionError             a ``{{ ... }}`` expression cannot be parsed or evaluated
    ├── PluginError                 a plugin registered something invalid
    └── WebhookError                an incoming webhook is refused (carries the HTTP status)

Every message says what was wrong, where (a JSON path such as ``$.steps[1].input.unitId``
or a header name) and, where it helps, what to do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Self

import httpx


class LatchflowError(Exception):
    """Base class of every error latchflow raises on purpose."""


class ActionError(LatchflowError):
    """An action could not complete; the subclass tells the executor what to do."""


class RetryableError(ActionError):
    """A transient failure: the step is retried with backoff, or after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @classmethod
    def from_response(cls, message: str, response: httpx.Response) -> Self:
        """The error for a vendor's answer, waiting as long as its ``Retry-After`` asks."""
        return cls(message, retry_after=retry_after_seconds(response.headers))


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait: delay-seconds, or an HTTP date counted
    from the answer's ``Date`` (else from now); None when it is missing or unreadable."""
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
        if seconds < 0:
            return None
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
            sent = parsedate_to_datetime(headers["date"]) if "date" in headers else None
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:  # an HTTP date is in GMT; this one did not say so
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - (sent or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


class RateLimitedError(RetryableError):
    """The vendor refused the call for its rate limit (HTTP 429, throttling).

    Besides retrying this step, the engine cools the whole connection down: its other runs wait
    until ``retry_after`` (or the step's backoff) has passed, while other connections go on.
    """


class FatalError(ActionError):
    """A permanent failure: the run fails and the message is stored with it."""


class ConfigurationError(FatalError):
    """The connection or configuration is wrong; ``path`` names the field, when known."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


class SkipError(ActionError):
    """The step does not apply; it is recorded as skipped and the run continues."""


class RunFiltered(ActionError):
    """The event does not concern this flow: the run ends as "filtered", not failed."""


@dataclass(frozen=True)
class ErrorDetail:
    """One problem in a document: its JSON path and what is wrong there."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class ValidationError(LatchflowError):
    """A document or an input is invalid; ``errors`` lists every problem with its JSON path."""

    def __init__(self, errors: list[ErrorDetail]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors

    @classmethod
    def at(cls, path: str, message: str) -> ValidationError:
        return cls([ErrorDetail(path, message)])


class ExpressionError(LatchflowError):
    """An expression is malformed or failed to evaluate."""


class PluginError(LatchflowError):
    """A plugin registered an invalid vendor, trigger or action."""


class WebhookError(LatchflowError):
    """An incoming webhook is refused; nothing of it is stored."""

    def __init__(self, message: str, *, status_code: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code
