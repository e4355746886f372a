"""JSON answers: rendered as FastAPI renders them, written straight to ASGI where routing is
skipped, and never a 500 for text that cannot be UTF-8 (a lone surrogate kept from before such
bodies were refused is written as its JSON escape)."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse
from starlette.types import Send


def render(content: Any) -> bytes:
    """JSON as ``JSONResponse`` renders it, escaping what UTF-8 cannot hold."""
    try:
        return _dumps(content, ascii_only=False).encode("utf-8")
    except UnicodeEncodeError:
        return _dumps(content, ascii_only=True).encode("ascii")


def _dumps(content: Any, ascii_only: bool) -> str:
    return json.dumps(
        content, ensure_ascii=ascii_only, allow_nan=False, indent=None, separators=(",", ":")
    )


class SafeJSONResponse(JSONResponse):
    """The app's default response class: ``render`` instead of JSONResponse's own."""

    def render(self, content: Any) -> bytes:
        return render(content)


async def send_json(send: Send, status: int, body: bytes, close: bool = False) -> None:
    """Answer with a rendered JSON body; ``close`` asks the client to close the connection
    (its request body was not read)."""
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
