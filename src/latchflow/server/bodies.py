"""Request bodies: read up to a limit whatever Content-Length claims, and parsed as strict JSON.

Strict JSON is what every stored event and every management API body must be: UTF-8 without a
BOM, no ``NaN``/``Infinity`` and no number too large to be finite, no lone UTF-16 surrogate
escapes (``"\\ud800"``: they cannot be written back out as UTF-8), and nested at most
``MAX_DEPTH`` levels. Anything else is refused with 400 before it is stored.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from fastapi import Request
from starlette.requests import ClientDisconnect
from starlette.types import Receive

from latchflow.server.errors import Rejected

MAX_DEPTH = 32
"""Deepest nesting of arrays and objects in a body (deeper bodies are refused)."""
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
"""A UTF-16 surrogate written as an escape: the only way a lone one can reach a parsed body."""
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
HINT = (
    f"send UTF-8 JSON nested at most {MAX_DEPTH} levels, with finite numbers and whole UTF-16"
    " surrogate pairs"
)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"the number {text[:40]} is too large")
    return number


DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite)
"""One decoder for every body: ``json.loads`` with an argument builds a new one per call."""


async def chunks(receive: Receive) -> AsyncIterator[bytes]:
    """A request's body as it arrives; ``ClientDisconnect`` if the client leaves first."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


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
    """The body's JSON value, or 400 saying what is wrong with it and where."""
    problem: tuple[str, str] | None
    try:
        text = body.decode("utf-8")
        if text.startswith("\ufeff"):  # refused as json.loads refuses it
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        value = DECODER.decode(text)
    except RecursionError:
        value, problem = None, (f"nested more than {MAX_DEPTH} levels deep", "$")
    except (UnicodeDecodeError, ValueError) as exc:
        raise Rejected(
            400, f"the body is not valid JSON: {exc}", "body", "send one UTF-8 JSON document"
        ) from exc
    else:
        deep = body.count(b"[") + body.count(b"{") > MAX_DEPTH
        problem = _problem(value, SURROGATE_ESCAPE.search(body) is not None, deep)
    if problem is not None:
        message, path = problem
        raise Rejected(400, f"the body is refused: {message}", f"body {path}", HINT)
    return value


def _problem(value: Any, surrogates: bool, deep: bool) -> tuple[str, str] | None:
    """What makes a parsed body unsafe to keep, and where: a lone surrogate or too deep."""
    if not (surrogates or deep):
        return None
    stack: list[tuple[Any, str, int]] = [(value, "$", 0)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, str):
            if surrogates and LONE_SURROGATE.search(node):
                return "a string holds a lone UTF-16 surrogate (\\ud800-\\udfff)", path
            continue
        if not isinstance(node, dict | list):
            continue
        if depth >= MAX_DEPTH:
            return f"nested more than {MAX_DEPTH} levels deep", path
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, item in items:
            if surrogates and isinstance(key, str) and LONE_SURROGATE.search(key):
                return "an object key holds a lone UTF-16 surrogate", path
            stack.append(
                (item, f"{path}.{key}" if isinstance(key, str) else f"{path}[{key}]", depth + 1)
            )
    return None


def refuse_unsafe_json(body: bytes, content_type: str) -> None:
    """Refuse a JSON body (by its content type) that ``parse_json`` would refuse."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        parse_json(body)


def require_json_content_type(content_type: str) -> None:
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise Rejected(
            415,
            f"content type {content_type or '(none)'!r} is not accepted",
            "header content-type",
            "send the body as JSON with 'Content-Type: application/json'",
        )
