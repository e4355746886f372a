"""API V2 client: every request signed with the service account's RSA key; offset pagination.

Bodies go out as compact JSON in raw UTF-8 (``JSON.stringify`` output, as Livion's own
examples sign it), and the signature covers exactly those bytes.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import httpx

from latchflow import ConfigurationError, Connection, FatalError
from latchflow_livionkey import v2_signing
from latchflow_livionkey.assumptions import V2_BASE_URL, V2_PAGE_LIMIT_MAX
from latchflow_livionkey.http import refused_for_now, send, timeout_of

KEY_CACHE_KEY = "livionkey.v2.private_key"


class V2Error(FatalError):
    """A 4xx answer of API V2 that retrying cannot fix; ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int, vendor_message: str) -> None:
        super().__init__(message)
        self.status = status
        self.vendor_message = vendor_message


def error_text(response: httpx.Response) -> str:
    """The NestJS-style ``message`` (string or list) of an error body, else its text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()
    if isinstance(body, dict):
        message = body.get("message", body)
        if isinstance(message, list):
            return "; ".join(str(m) for m in message)
        return str(message)
    return str(body)


def answer_of(response: httpx.Response) -> str:
    """The vendor's answer as people read it: status, NestJS error name, message."""
    try:
        body = response.json()
    except ValueError:
        body = None
    name = body.get("error") if isinstance(body, dict) else None
    status = f"HTTP {response.status_code}" + (f" {name}" if name else "")
    return f"{status} ({error_text(response) or 'no message'})"


def encode(body: Any) -> bytes:
    """The exact bytes sent and signed: compact JSON, raw UTF-8, no ``\\u`` escapes."""
    if body is None:
        return b""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


class V2Client:
    """Signs and sends requests for one ``livionkey_v2`` connection."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        config = connection.config
        self.base_url = str(config.get("base_url") or V2_BASE_URL).rstrip("/")
        self.account_id = str(config.get("service_account_id") or "")
        self.timeout = timeout_of(connection)
        if not self.account_id:
            raise ConfigurationError("is required", path="service_account_id")

    def _key(self) -> Any:
        pem = str(self.connection.config.get("private_key_pem") or "")
        cached = self.connection.cache.get(KEY_CACHE_KEY)
        if cached is None or cached[0] != hash(pem):
            cached = (hash(pem), v2_signing.load_private_key(pem))
            self.connection.cache[KEY_CACHE_KEY] = cached
        return cached[1]

    def url(self, path: str, params: dict[str, Any] | None = None) -> str:
        """The exact URL sent and signed: base + path + encoded query (no None values)."""
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        return f"{self.base_url}{path}" + (f"?{urlencode(query)}" if query else "")

    def signed_headers(self, method: str, url: str, body: bytes) -> dict[str, str]:
        stamp = int(self.connection.clock.now().timestamp() * 1000)
        headers = v2_signing.signature_headers(
            self._key(), self.account_id, stamp, method, url, body
        )
        headers["content-type"] = "application/json"
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        within: float | None = None,
    ) -> Any:
        """Send one signed request; returns the JSON body (None for 204).

        ``within`` shortens the connection's ``timeoutSeconds`` for this call.
        """
        url = self.url(path, params)
        body = encode(json_body)
        response = await send(
            self.connection.http,
            method,
            url,
            f"LivionKey API V2 {method} {path}",
            self.timeout if within is None else min(within, self.timeout),
            content=body or None,
            headers=self.signed_headers(method, url, body),
        )
        return self._result(method, path, response)

    def _result(self, method: str, path: str, response: httpx.Response) -> Any:
        status, where = response.status_code, f"LivionKey API V2 {method} {path}"
        again = refused_for_now(where, response, answer_of(response))
        if again is not None:
            raise again
        if status == 401:
            raise ConfigurationError(
                f"{where} was refused ({answer_of(response)}): check the service account id"
                " and private key, and that this machine's clock is right",
                path="private_key_pem",
            )
        if status == 403:
            raise ConfigurationError(
                f"{where} was refused ({answer_of(response)}): the service account has no"
                " access to this organisation unit"
            )
        if status >= 400:
            raise V2Error(
                f"{where} was refused ({answer_of(response)})", status, error_text(response)
            )
        if status == 204 or not response.content:
            return None
        return response.json()

    async def list_all(
        self, path: str, params: dict[str, Any] | None = None, *, max_items: int = 1000
    ) -> list[Any]:
        """Every item of an offset-paginated list (``after``/``limit``/``hasNext``)."""
        items: list[Any] = []
        offset = 0
        while True:
            page = await self.request(
                "GET",
                path,
                params={**(params or {}), "after": str(offset), "limit": V2_PAGE_LIMIT_MAX},
            )
            data = list(page.get("data") or [])
            items.extend(data)
            offset += len(data)
            # GET /iloq/accessRights documents no hasNext: a full page means "maybe more".
            has_next = page.get("hasNext", len(data) >= V2_PAGE_LIMIT_MAX)
            if not has_next or not data or len(items) >= max_items:
                return items[:max_items]


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
