"""Calls to Unloc and what their failures mean for the engine, shared by both API clients.

Every error names the action (or trigger) the user configured, what it was doing and the
request, and carries Unloc's answer: its HTTP status, code and message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from latchflow import ConfigurationError, FatalError, RateLimitedError, RetryableError

DEFAULT_TIMEOUT_SECONDS = 30.0
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Transport errors raised before the request left: Unloc cannot have applied it."""


@dataclass(frozen=True)
class Call:
    """One request as error messages name it: the configured action and what it was doing."""

    action: str
    what: str
    method: str
    url: str
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    def __str__(self) -> str:
        return f"{self.action}: {self.what} ({self.method} {httpx.URL(self.url).path})"


@dataclass(frozen=True)
class VendorAnswer:
    """What Unloc answered: status, its code (``error`` or problem ``title``) and message."""

    status: int
    code: str
    message: str
    body: Any

    @classmethod
    def of(cls, response: httpx.Response) -> VendorAnswer:
        try:
            body = response.json()
        except ValueError:
            text = response.text[:300]
            return cls(response.status_code, response.reason_phrase, text, text)
        if not isinstance(body, dict):
            return cls(response.status_code, response.reason_phrase, str(body)[:300], body)
        code = str(body.get("error") or body.get("title") or response.reason_phrase)
        parts = [str(body[k]) for k in ("detail", "errorDescription", "message") if body.get(k)]
        for item in body.get("invalidParams") or []:
            if isinstance(item, dict):
                parts.append(f"{item.get('name')}: {item.get('reason')}")
        return cls(response.status_code, code, "; ".join(parts), body)

    def __str__(self) -> str:
        code = f" {self.code}" if self.code else ""
        return f"HTTP {self.status}{code}" + (f": {self.message}" if self.message else "")


class UnlocHTTPError(FatalError):
    """Unloc refused the request (a 4xx answer the caller may handle: 404, 409)."""

    def __init__(self, message: str, *, answer: VendorAnswer) -> None:
        super().__init__(message)
        self.answer = answer
        self.status = answer.status


def raise_for_status(response: httpx.Response, call: Call) -> None:
    """Raise the latchflow error that says what the engine should do about a failed answer."""
    status = response.status_code
    if status < 400:
        return
    answer = VendorAnswer.of(response)
    if status == 429:
        raise RateLimitedError.from_response(
            f"{call}: Unloc is rate limiting this connection ({answer})", response
        )
    if status >= 500:
        raise RetryableError.from_response(f"{call}: Unloc answered {answer}", response)
    if status == 401:
        raise ConfigurationError(
            f"{call}: Unloc refused the token ({answer}). Check the connection's client id and"
            " secret."
        )
    if status == 403:
        raise ConfigurationError(
            f"{call}: Unloc refused access ({answer}). The credentials do not reach this"
            " project or lock holder, or lack the scope or module it needs."
        )
    raise UnlocHTTPError(f"{call}: Unloc refused the request ({answer})", answer=answer)


def transport_error(call: Call, exc: httpx.TransportError) -> RetryableError:
    """The error for a request that got no answer: not sent, timed out, or cut off."""
    name = type(exc).__name__
    if isinstance(exc, NOT_SENT):
        reason = (
            f"no connection to Unloc within {call.timeout:g} s"
            if isinstance(exc, httpx.TimeoutException)
            else f"could not reach Unloc ({exc})"
        )
        return RetryableError(f"{call}: {reason} ({name}); it was not sent", maybe_applied=False)
    if isinstance(exc, httpx.TimeoutException):
        reason = f"no answer from Unloc within {call.timeout:g} s"
    else:
        reason = f"the connection was reset or closed before Unloc answered ({exc})"
    return RetryableError(
        f"{call}: {reason} ({name}); Unloc may have applied the request", maybe_applied=True
    )


async def send(http: httpx.AsyncClient, call: Call, **kwargs: Any) -> httpx.Response:
    """One request; failures to get an answer become RetryableError."""
    try:
        return await http.request(call.method, call.url, timeout=call.timeout, **kwargs)
    except httpx.TransportError as exc:
        raise transport_error(call, exc) from exc


async def send_authorised(
    http: httpx.AsyncClient,
    token: Callable[[bool], Awaitable[str]],
    call: Call,
    **kwargs: Any,
) -> httpx.Response:
    """A request with a bearer token; on 401 the token is fetched again once (it may have
    expired). Any other failed answer raises the error ``raise_for_status`` picks."""
    response: httpx.Response | None = None
    for force in (False, True):
        headers = {"authorization": f"Bearer {await token(force)}"}
        response = await send(http, call, headers=headers, **kwargs)
        if response.status_code != 401:
            break
    assert response is not None
    raise_for_status(response, call)
    return response


def timeout_of(config: dict[str, Any]) -> float:
    """Seconds a call on the connection waits for Unloc (its ``timeoutSeconds`` setting)."""
    return float(config.get("timeoutSeconds") or DEFAULT_TIMEOUT_SECONDS)
