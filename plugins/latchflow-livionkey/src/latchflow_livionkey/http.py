"""What both LivionKey API clients do with an HTTP exchange that failed on the way."""

from __future__ import annotations

from typing import Any

import httpx

from latchflow import RetryableError


async def send(
    http: httpx.AsyncClient, method: str, url: str, where: str, **kwargs: Any
) -> httpx.Response:
    """One request; timeouts and connection failures become RetryableError naming ``where``."""
    try:
        return await http.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise RetryableError(f"{where} timed out: {exc}") from exc
    except httpx.HTTPError as exc:
        raise RetryableError(f"{where} failed to connect: {exc}") from exc
