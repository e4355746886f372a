"""Turning Unloc HTTP responses into latchflow errors, shared by the v2 and integrators clients."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from latchflow import ConfigurationError, FatalError, RateLimitedError, RetryableError


class UnlocHTTPError(FatalError):
    """A 4xx answer the caller may want to handle (``status`` says which)."""

    def __init__(self, message: str, *, status: int, body: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def problem_text(response: httpx.Response) -> str:
    """The most useful words of an error body: problem JSON, ``error`` JSON or raw text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if not isinstance(body, dict):
        return str(body)[:300]
    parts = [
        str(body[k])
        for k in ("title", "detail", "error", "errorDescription", "message")
        if body.get(k)
    ]
    for item in body.get("invalidParams") or []:
        if isinstance(item, dict):
            parts.append(f"{item.get('name')}: {item.get('reason')}")
    return "; ".join(parts) or str(body)[:300]


def raise_for_status(response: httpx.Response, what: str) -> None:
    """Raise the latchflow error that says what the engine should do about a failed call."""
    status = response.status_code
    if status < 400:
        return
    text = problem_text(response)
    where = f"Unloc {what} ({response.request.method} {response.request.url.path})"
    if status == 429:
        raise RateLimitedError.from_response(f"{where}: rate limited (429): {text}", response)
    if status >= 500:
        raise RetryableError.from_response(f"{where}: Unloc answered {status}: {text}", response)
    if status == 401:
        raise ConfigurationError(
            f"{where}: 401 unauthorised: {text}. Check the connection's client id and secret."
        )
    if status == 403:
        raise ConfigurationError(
            f"{where}: 403 forbidden: {text}. The credentials do not reach this project or lock"
            " holder, or lack the needed scope/module."
        )
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if status == 404:
        raise UnlocHTTPError(f"{where}: not found (404): {text}", status=status, body=body)
    raise UnlocHTTPError(f"{where}: rejected ({status}): {text}", status=status, body=body)


async def send(
    http: httpx.AsyncClient, method: str, url: str, what: str, **kwargs: Any
) -> httpx.Response:
    """One request; network failures and timeouts become RetryableError."""
    try:
        return await http.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise RetryableError(f"Unloc {what}: timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise RetryableError(
            f"Unloc {what}: could not reach Unloc ({type(exc).__name__}: {exc})"
        ) from exc


async def send_authorised(
    http: httpx.AsyncClient,
    token: Callable[[bool], Awaitable[str]],
    method: str,
    url: str,
    what: str,
    **kwargs: Any,
) -> httpx.Response:
    """A request with a bearer token; on 401 the token is fetched again once (it may have
    expired). Any other failed answer raises the error ``raise_for_status`` picks."""
    response: httpx.Response | None = None
    for force in (False, True):
        headers = {"authorization": f"Bearer {await token(force)}"}
        response = await send(http, method, url, what, headers=headers, **kwargs)
        if response.status_code != 401:
            break
    assert response is not None
    raise_for_status(response, what)
    return response
