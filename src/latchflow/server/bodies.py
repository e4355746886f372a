"""Request bodies: read up to a limit whatever Content-Length claims, and parsed as strict JSON."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable
from typing import Any

from fastapi import Request
from starlette.requests import ClientDisconnect

from latchflow.server.errors import Rejected


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


DECODER = json.JSONDecoder(parse_constant=_reject_constant)
"""One decoder for every body: ``json.loads`` with an argument builds a new one per call."""


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing more than ``limit`` bytes whatever Content-Length claims."""
    return await collect_body(request.stream(), request.headers.get("content-length"), limit)


async def collect_body(chunks: AsyncIterable[bytes], declared: str | None, limit: int) -> bytes:
    """The body from its chunks, refusing more than ``limit`` bytes (also when ``declared``,
    the Content-Length, says so at once)."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Rejected(
            413,
            f"the body is {declared} bytes; the limit is {limit}",
            "body",
            "send a smaller JSON document",
        )
    parts, size = [], 0
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise Rejected(
                    413,
                    f"the body exceeds the limit of {limit} bytes",
                    "body",
                    "send a smaller JSON document",
                )
            parts.append(chunk)
    except ClientDisconnect as exc:  # nobody is left to read the answer: nothing to log
        raise Rejected(
            400, "the client disconnected before the body was complete", "body", "send it again"
        ) from exc
    return b"".join(parts)


def parse_json(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
        if text.startswith("\ufeff"):  # refused as json.loads refuses it
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        return DECODER.decode(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Rejected(
            400, f"the body is not valid JSON: {exc}", "body", "send one UTF-8 JSON document"
        ) from exc


def require_json_content_type(content_type: str) -> None:
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise Rejected(
            415,
            f"content type {content_type or '(none)'!r} is not accepted",
            "header content-type",
            "send the body as JSON with 'Content-Type: application/json'",
        )
