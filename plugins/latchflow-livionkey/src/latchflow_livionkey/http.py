"""One HTTP exchange with a LivionKey API: how long to wait for it, and what its failures mean.

A failure before the request left (no connection) cannot have been applied; a lost answer (a
timeout, a reset or closed connection, a 5xx from a gateway) may have been: the errors say
which (``maybe_applied``), so the engine retries only what is safe to retry.
"""

from __future__ import annotations

from typing import Any

import httpx

from latchflow import JSON, Connection, RateLimitedError, RetryableError

DEFAULT_TIMEOUT_SECONDS = 20.0
TIMEOUT_SETTING: JSON = {
    "type": "number",
    "minimum": 1,
    "maximum": 300,
    "default": DEFAULT_TIMEOUT_SECONDS,
    "description": "Seconds to wait for LivionKey's answer to one call; a call without an answer by then counts as lost (LivionKey may still have applied it)",
}


def timeout_of(connection: Connection) -> float:
    """The connection's ``timeoutSeconds`` setting."""
    return float(connection.config.get("timeoutSeconds") or DEFAULT_TIMEOUT_SECONDS)


async def send(
    http: httpx.AsyncClient, method: str, url: str, where: str, within: float, **kwargs: Any
) -> httpx.Response:
    """One request answered ``within`` seconds; a failure on the way becomes a RetryableError
    that says whether LivionKey may have applied it."""
    try:
        return await http.request(method, url, timeout=within, **kwargs)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise RetryableError(
            f"{where}: could not connect to LivionKey ({type(exc).__name__}: {exc});"
            " nothing was sent",
            maybe_applied=False,
        ) from exc
    except httpx.TimeoutException as exc:
        raise RetryableError(
            f"{where}: no answer within {within:g} s (timed out); LivionKey may have applied"
            " the call",
            maybe_applied=True,
        ) from exc
    except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError) as exc:
        raise RetryableError(
            f"{where}: the connection was reset or closed before LivionKey answered"
            f" ({type(exc).__name__}); LivionKey may have applied the call",
            maybe_applied=True,
        ) from exc
    except httpx.TransportError as exc:
        raise RetryableError(f"{where} failed: {type(exc).__name__}: {exc}") from exc


def refused_for_now(where: str, response: httpx.Response, answer: str) -> RetryableError | None:
    """The error for an answer that asks to try again (429, 5xx), or None for any other."""
    status = response.status_code
    if status == 429:
        return RateLimitedError.from_response(
            f"{where}: LivionKey rate-limited the call ({answer})", response
        )
    if status >= 500:
        return RetryableError.from_response(f"{where}: LivionKey answered {answer}", response)
    return None
