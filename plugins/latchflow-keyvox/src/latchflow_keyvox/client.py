"""The KEYVOX API client: signed POST calls and cursor pagination.

Every call is ``POST <base>/<function>`` with a JSON body (``answers.py`` reads the answer).
A failure in transit becomes a RetryableError that says whether KEYVOX may have applied the
call: not when the connection could not be opened, yes when the answer was lost after the
request was sent (a read timeout, a reset or closed connection).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx

from latchflow import ConfigurationError, Connection, RetryableError
from latchflow_keyvox import assumptions as A
from latchflow_keyvox.answers import data_of
from latchflow_keyvox.signing import compact_json, signed_headers

DEFAULT_TIMEOUT_SECONDS = 10.0


class KeyvoxClient:
    """Calls KEYVOX functions for one connection on behalf of ``what`` (the action or trigger
    key the user configured, named in every error)."""

    def __init__(self, connection: Connection, what: str = "KEYVOX connection") -> None:
        config = connection.config
        self.what = what
        self.http = connection.http
        self.api_key = str(config.get("apiKey") or "")
        self.secret = str(config.get("apiSecret") or "")
        self.base_url = str(config.get("baseUrl") or A.DEFAULT_BASE_URL).rstrip("/")
        self.timeout = float(config.get("timeoutSeconds") or DEFAULT_TIMEOUT_SECONDS)
        if not self.api_key or not self.secret:
            raise ConfigurationError(
                "the KEYVOX connection needs an API key and secret (BACS console → Organization"
                " → Developer → Generate API key)",
                path="$.connection.apiKey" if not self.api_key else "$.connection.apiSecret",
            )

    def url(self, function: str) -> str:
        return f"{self.base_url}/{function}"

    async def call(
        self, function: str, body: dict[str, Any] | None = None, *, within: float | None = None
    ) -> Any:
        """Call ``function`` with ``body`` and return the envelope's ``data``; ``within``
        (seconds) shortens the connection's ``timeoutSeconds`` for this call."""
        url = self.url(function)
        raw = compact_json(body or {})
        path = urllib.parse.urlsplit(url).path
        # KEYVOX compares the date with its own clock: sign with the wall clock, not with
        # the engine's (which a test or a replay may have moved)
        headers = signed_headers(self.api_key, self.secret, path, raw, datetime.now(UTC))
        wait = self.timeout if within is None else within
        try:
            response = await self.http.post(url, content=raw, headers=headers, timeout=wait)
        except httpx.TransportError as exc:
            raise self.transport_error(function, exc, wait) from exc
        return data_of(self.what, function, response)

    def transport_error(
        self, function: str, exc: httpx.TransportError, wait: float
    ) -> RetryableError:
        """What a failure in transit means: sent or not, and what the user sees."""
        kind = type(exc).__name__
        head = f"{self.what}: KEYVOX {function}"
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            message = f"{head} was not sent: no connection within {wait:g} s ({kind})"
            return RetryableError(message, maybe_applied=False)
        if isinstance(exc, httpx.ConnectError):
            message = f"{head} was not sent: could not reach {self.base_url} ({kind}: {exc})"
            return RetryableError(message, maybe_applied=False)
        if isinstance(exc, httpx.TimeoutException):
            message = (
                f"{head} did not answer within {wait:g} s ({kind}); KEYVOX may have applied it"
            )
        elif isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError):
            message = (
                f"{head}: the connection was reset or closed before KEYVOX answered ({kind}:"
                f" {exc}); KEYVOX may have applied it"
            )
        else:
            message = f"{head} failed in transit ({kind}: {exc}); KEYVOX may have applied it"
        return RetryableError(message, maybe_applied=True)

    async def pages(
        self, function: str, body: dict[str, Any], list_key: str, records: int = A.DEFAULT_RECORDS
    ) -> AsyncIterator[dict[str, Any]]:
        """Every item of a ``position``/``records`` paginated listing, page after page."""
        position = ""
        while True:
            data = await self.call(
                function, {**body, "position": position, "records": str(records)}
            )
            items = (data or {}).get(list_key) or []
            for item in items:
                yield item
            position = str((data or {}).get("position") or "")
            if not position or not items:
                return
