"""OAuth2 client-credentials tokens, cached per connection until shortly before they expire."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from latchflow import ConfigurationError, Connection
from latchflow_unloc.assumptions import TOKEN_LIFETIME, TOKEN_REFRESH_MARGIN
from latchflow_unloc.http import Call, VendorAnswer, raise_for_status, send, timeout_of


async def fetch_token(
    connection: Connection, url: str, body: dict[str, Any], action: str, *, force: bool = False
) -> str:
    """A bearer token for ``body`` (the grant), from the connection cache unless ``force``.

    Unloc asks clients to reuse a token until near its expiry instead of fetching one per call.
    """
    cache = connection.cache
    now = connection.clock.now()
    cached = cache.get("token")
    if not force and cached and cached["url"] == url and cached["expires_at"] > now:
        return str(cached["access_token"])
    call = Call(action, "token request", "POST", url, timeout_of(connection.config))
    response = await send(connection.http, call, json=body)
    if response.status_code in (400, 401, 403):
        raise ConfigurationError(
            f"{call}: Unloc refused the token request ({VendorAnswer.of(response)})."
            " Check the client id, client secret and the project / lock holder id.",
            path="connection",
        )
    raise_for_status(response, call)
    data = response.json()
    token = data.get("access_token")
    if not token:
        raise ConfigurationError(
            f"{call}: Unloc's token answer has no access_token", path="connection"
        )
    lifetime = float(data.get("expires_in") or TOKEN_LIFETIME)
    cache["token"] = {
        "url": url,
        "access_token": token,
        "expires_at": now + timedelta(seconds=max(0.0, lifetime - TOKEN_REFRESH_MARGIN)),
        "scope": data.get("scope"),
    }
    return str(token)
