"""Errors, sorted by what the engine should do about them.

    LatchflowError
    ├── ActionError                 raised by actions and vendor clients during a step
    │   ├── RetryableError          try the step again later (429, 5xx, timeouts, lock offline);
    │   │                           ``retry_after`` (seconds) overrides the backoff when known;
    │   │                           ``maybe_applied``: the vendor may have applied the request
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
    """A transient failure: the step is retried with backoff, or after ``retry_after`` seconds.

    ``maybe_applied`` says whether the vendor may have applied the request although it failed
    (an answer lost after the request was sent); None judges by the error it was raised from
    (see ``maybe_applied``).
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        maybe_applied: bool | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.maybe_applied = maybe_applied
        self.status = status
        """The vendor's HTTP status, when it answered."""

    @classmethod
    def from_response(cls, message: str, response: httpx.Response) -> Self:
        """The error for a vendor's answer, waiting as long as its ``Retry-After`` asks. A 5xx
        other than 503 may come after the vendor applied the request (a gateway that lost its
        answer, a failure half-way); a 503 refuses it."""
        status = response.status_code
        return cls(
            message,
            retry_after=retry_after_seconds(response.headers),
            maybe_applied=status >= 500 and status != 503,
            status=status,
        )

    @classmethod
    def from_transport(cls, exc: httpx.TransportError) -> Self:
        """The error for a network failure: its kind (a reset is not a timeout) and its text;
        whether it may have been applied is judged from ``exc``."""
        message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        error = cls(message)
        error.__cause__ = exc
        return error


NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Transport errors raised before the request left: the vendor cannot have seen it."""


def maybe_applied(exc: BaseException) -> bool:
    """Whether the vendor may have applied the request that failed with ``exc``: a read
    timeout, a reset or a 5xx after the request was sent, not a refusal before it was."""
    if isinstance(exc, RetryableError) and exc.maybe_applied is not None:
        return exc.maybe_applied
    cause = _transport_error(exc)
    return cause is not None and not isinstance(cause, NOT_SENT)


def vendor_unavailable(exc: BaseException) -> bool:
    """Whether the failure says the vendor itself is unavailable (a 5xx, a timeout, a reset, a
    refused connection), not one device or one request."""
    if isinstance(exc, RetryableError) and exc.status is not None:
        return exc.status >= 500
    if isinstance(exc, RetryableError) and exc.maybe_applied:
        return True
    return _transport_error(exc) is not None


def _transport_error(exc: BaseException) -> httpx.TransportError | None:
    """The network error ``exc`` is, or was raised from."""
    cause = exc if isinstance(exc, httpx.TransportError) else exc.__cause__
    return cause if isinstance(cause, httpx.TransportError) else None


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
