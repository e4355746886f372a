"""API V1 client: JWT login, token cache and refresh, error mapping.

One ``V1Client`` per call wraps the connection's shared ``httpx.AsyncClient``; the token lives
in ``connection.cache`` so every action on the connection reuses it until shortly before expiry.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import jwt

from latchflow import ConfigurationError, Connection, FatalError, RetryableError
from latchflow_livionkey.assumptions import (
    V1_BASE_URL,
    V1_BUSY_MESSAGES,
    V1_REFRESH_MARGIN_SECONDS,
)
from latchflow_livionkey.http import refused_for_now, send, timeout_of

TOKEN_CACHE_KEY = "livionkey.v1.token"  # noqa: S105 - a cache slot name, not a secret

# The documented business 400s, and what the user should do about each.
BUSINESS_ERRORS: dict[str, str] = {
    "Overlapping contract existing": (
        "the key already has a contract at that time (private keys allow no overlap):"
        " choose other times, delete the other contract, or make the key shared"
    ),
    "Pincode already used in existing contracts": (
        "another contract already uses this pincode: give another pincode or leave it out"
        " to have one generated"
    ),
    "Start time should be in the future": (
        "the contract start is in the past: give a start time after now"
    ),
    "Start time should be before End time": "the contract ends before it starts",
    "ContractId already in use": (
        "another contract already has this contractId: contractId must be unique"
    ),
    "key already exists with that keyId": "a key with this keyId exists: keyId must be unique",
    "KeyId not found": "the device has no key with this keyId",
    "Contract not found": "no contract has this object id (use the contract's 'id', not 'contractId')",
    "Device not found": "no device has this deviceId, or the account cannot see it",
    "no such device": "no device has this deviceId, or the account cannot see it",
    "no such key": "the device has no key with this keyId",
    "no free lockers": "the device has no free locker for another key",
}


def error_text(response: httpx.Response) -> str:
    """The message of a V1 error: plain text, a JSON string, or a JSON object's message."""
    text = response.text.strip()
    try:
        body = json.loads(text)
    except ValueError:
        return text
    if isinstance(body, str):
        return body
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or text)
    return text


def answer_of(response: httpx.Response) -> str:
    """The vendor's answer as people read it: status and message."""
    return f"HTTP {response.status_code} ({error_text(response) or 'no message'})"


def token_expiry(token: str, expiration_time: str | None) -> datetime:
    """When a token expires: its ``exp`` claim, else the login response's ``expirationTime``.

    The JWT is signed by Livion with a key clients never get, so its signature cannot be
    checked here; the claim is only read to know when to refresh. The server checks it.
    """
    with contextlib.suppress(jwt.PyJWTError):  # not a JWT we can read: use expirationTime
        claims = jwt.decode(token, options={"verify_signature": False})
        if "exp" in claims:
            return datetime.fromtimestamp(int(claims["exp"]), UTC)
    if expiration_time:
        return parsedate_to_datetime(expiration_time).astimezone(UTC)
    raise FatalError(
        "LivionKey login returned a token without an expiry (no exp, no expirationTime)"
    )


class V1Client:
    """Calls API V1 with a cached bearer token: refreshed early, re-obtained once on 401."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.base_url = str(connection.config.get("base_url") or V1_BASE_URL).rstrip("/")
        self.timeout = timeout_of(connection)

    async def login(self) -> str:
        config = self.connection.config
        where = "LivionKey API V1 login (POST /auth/login)"
        response = await send(
            self.connection.http,
            "POST",
            f"{self.base_url}/auth/login",
            where,
            self.timeout,
            json={"email": config.get("email", ""), "password": config.get("password", "")},
        )
        again = refused_for_now(where, response, answer_of(response))
        if again is not None:
            raise again
        if response.status_code != 200:
            raise ConfigurationError(
                f"LivionKey refused the login ({answer_of(response)}):"
                " check the email and password, and that Livion enabled the account for API use",
                path="email",
            )
        body = response.json()
        token = str(body["token"])
        expires = token_expiry(token, body.get("expirationTime"))
        self.connection.cache[TOKEN_CACHE_KEY] = {"token": token, "expires": expires}
        return token

    async def token(self) -> str:
        cached = self.connection.cache.get(TOKEN_CACHE_KEY)
        margin = timedelta(seconds=V1_REFRESH_MARGIN_SECONDS)
        if cached and self.connection.clock.now() < cached["expires"] - margin:
            return str(cached["token"])
        return await self.login()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        within: float | None = None,
    ) -> Any:
        """Send one request; returns the JSON body, or the text of a plain-text success.

        ``within`` shortens the connection's ``timeoutSeconds`` for this call.
        """
        token = await self.token()
        wait = self.timeout if within is None else min(within, self.timeout)
        response = await self._send(method, path, token, params, json_body, wait)
        if response.status_code == 401:
            # The token expired early or was revoked: drop it, log in again, retry once.
            self.connection.cache.pop(TOKEN_CACHE_KEY, None)
            token = await self.login()
            response = await self._send(method, path, token, params, json_body, wait)
            if response.status_code == 401:
                raise ConfigurationError(
                    f"LivionKey API V1 refused {method} {path} even with a fresh token"
                    f" ({answer_of(response)}): the account has no access to this resource"
                )
        return self._result(method, path, response)

    async def _send(
        self,
        method: str,
        path: str,
        token: str,
        params: dict[str, Any] | None,
        json_body: Any,
        within: float,
    ) -> httpx.Response:
        return await send(
            self.connection.http,
            method,
            f"{self.base_url}{path}",
            f"LivionKey API V1 {method} {path}",
            within,
            params={k: v for k, v in (params or {}).items() if v is not None},
            json=json_body,
            headers={"Authorization": f"Bearer {token}"},
        )

    def _result(self, method: str, path: str, response: httpx.Response) -> Any:
        status, where = response.status_code, f"LivionKey API V1 {method} {path}"
        message = error_text(response)
        again = refused_for_now(where, response, answer_of(response))
        if again is not None:
            raise again
        if status == 403:
            raise ConfigurationError(f"{where} was refused ({answer_of(response)})")
        if status == 409 or message in V1_BUSY_MESSAGES:
            raise RetryableError.from_response(
                f"{where}: the device is reserved or busy ({answer_of(response)}); trying again",
                response,
            )
        if status >= 400:
            advice = BUSINESS_ERRORS.get(message)
            detail = f": {advice}" if advice else ""
            raise V1BusinessError(
                f"{where} was refused ({answer_of(response)}){detail}", status, message
            )
        try:
            return response.json()
        except ValueError:
            return response.text


class V1BusinessError(FatalError):
    """A 4xx answer of API V1 that retrying cannot fix; ``vendor_message`` is its exact text."""

    def __init__(self, message: str, status: int, vendor_message: str) -> None:
        super().__init__(message)
        self.status = status
        self.vendor_message = vendor_message
