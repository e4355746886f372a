"""The KEYVOX API client: signed POST calls, envelope handling, cursor pagination.

Every call is ``POST <base>/<function>`` with a JSON body; every answer is an envelope
``{"code", "msg", "data"}`` and only ``code == "0"`` is success. Vendor codes and HTTP
failures become the engine's errors, so the executor knows whether to retry.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import httpx

from latchflow import ConfigurationError, Connection, FatalError, RateLimitedError, RetryableError
from latchflow_keyvox import assumptions as A
from latchflow_keyvox.signing import compact_json, signed_headers

TIMEOUT_SECONDS = 20.0


class KeyvoxClient:
    """Calls KEYVOX functions for one connection (``apiKey``, ``apiSecret``, ``baseUrl``)."""

    def __init__(self, connection: Connection) -> None:
        config = connection.config
        self.http = connection.http
        self.clock = connection.clock
        self.api_key = str(config.get("apiKey") or "")
        self.secret = str(config.get("apiSecret") or "")
        self.base_url = str(config.get("baseUrl") or A.DEFAULT_BASE_URL).rstrip("/")
        if not self.api_key or not self.secret:
            raise ConfigurationError(
                "the KEYVOX connection needs an API key and secret (BACS console → Organization"
                " → Developer → Generate API key)",
                path="$.connection.apiKey" if not self.api_key else "$.connection.apiSecret",
            )

    def url(self, function: str) -> str:
        return f"{self.base_url}/{function}"

    async def call(self, function: str, body: dict[str, Any] | None = None) -> Any:
        """Call ``function`` with ``body`` and return the envelope's ``data``."""
        url = self.url(function)
        raw = compact_json(body or {})
        path = urllib.parse.urlsplit(url).path
        headers = signed_headers(self.api_key, self.secret, path, raw, self.clock.now())
        try:
            response = await self.http.post(
                url, content=raw, headers=headers, timeout=TIMEOUT_SECONDS
            )
        except httpx.TimeoutException as exc:
            raise RetryableError(f"KEYVOX {function} timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise RetryableError(
                f"KEYVOX {function}: could not reach {self.base_url}: {exc}"
            ) from exc
        return _envelope_data(function, response)

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


def _envelope_data(function: str, response: httpx.Response) -> Any:
    status = response.status_code
    if status == 429:
        raise RateLimitedError.from_response(
            f"KEYVOX {function}: rate limited (HTTP 429); slowing down", response
        )
    if status >= 500:
        raise RetryableError(f"KEYVOX {function}: server error HTTP {status}")
    try:
        envelope = response.json()
    except ValueError:
        envelope = None
    if not isinstance(envelope, dict) or "code" not in envelope:
        if status in (401, 403):
            raise ConfigurationError(
                f"KEYVOX {function}: access refused (HTTP {status}); check the API key, the"
                " secret and that this server's IP is whitelisted in the BACS console"
            )
        raise FatalError(
            f"KEYVOX {function}: unexpected HTTP {status} answer without an envelope;"
            " check the connection's base URL"
        )
    code = str(envelope.get("code"))
    if code == "0":
        return envelope.get("data")
    raise error_for_code(function, code, str(envelope.get("msg") or ""), status)


def error_for_code(function: str, code: str, msg: str, status: int = 200) -> Exception:
    """The engine error for a KEYVOX business code (exposed for tests)."""
    text = f"KEYVOX {function} failed with {code}: {msg}"
    if code == A.E_LOCK_OFFLINE:
        return RetryableError(
            text + " (the lock is offline: battery empty or Wi-Fi down; retrying later)",
            retry_after=60,
        )
    if code in A.RETRYABLE_CODES:
        return RetryableError(text)
    if code in A.AUTH_CODES or status in (401, 403):
        return ConfigurationError(
            text + " (check the API key and secret, the server clock, the IP whitelist and that"
            " the ids belong to this organization)"
        )
    if code == A.E_NOT_FOUND:
        return FatalError(text + " (the id does not exist or belongs to another organization)")
    if code == A.E_PARAM:
        return FatalError(text + " (a parameter is invalid; check the step's input)")
    return FatalError(text)
