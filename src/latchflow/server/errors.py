"""Refusals as clear JSON errors, the same shape whoever refuses.

``{"error", "where", "hint"}`` for a refusal, ``{"error", "errors": [{"path", "message"}]}``
for an invalid document or request body; FastAPI's own refusals (unknown route, method not
allowed, a body that does not match its model) are answered in the same shapes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.routing import compile_path

from latchflow.plugin.errors import LatchflowError, ValidationError
from latchflow.server.responses import SafeJSONResponse


class Rejected(Exception):
    """A request refused before anything was stored."""

    def __init__(
        self, status_code: int, error: str, where: str | None = None, hint: str | None = None
    ) -> None:
        super().__init__(error)
        self.status_code = status_code
        self.error = error
        self.where = where
        self.hint = hint

    def problem(self) -> dict[str, str | None]:
        """The JSON body of the refusal: what was wrong, where, and what to do."""
        return {"error": self.error, "where": self.where, "hint": self.hint}


def add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Rejected, _rejected)
    app.add_exception_handler(ValidationError, _invalid_document)
    app.add_exception_handler(LatchflowError, _latchflow_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)


async def _rejected(request: Request, exc: Exception) -> SafeJSONResponse:
    assert isinstance(exc, Rejected)
    return SafeJSONResponse(exc.problem(), status_code=exc.status_code)


async def _invalid_document(request: Request, exc: Exception) -> SafeJSONResponse:
    assert isinstance(exc, ValidationError)
    return SafeJSONResponse(
        {"error": "invalid document", "errors": [e.as_dict() for e in exc.errors]},
        status_code=422,
    )


async def _latchflow_error(request: Request, exc: Exception) -> SafeJSONResponse:
    return SafeJSONResponse(
        {"error": str(exc), "where": getattr(exc, "path", None), "hint": None}, status_code=400
    )


async def _http_error(request: Request, exc: Exception) -> SafeJSONResponse:
    assert isinstance(exc, HTTPException)
    where, hint, headers = "path", "GET /docs lists the routes and their methods", exc.headers
    if exc.status_code == 405:
        allowed = _documented_methods(request) or (headers or {}).get("Allow", "")
        where, headers = "method", {"Allow": allowed}
        hint = f"use {allowed}; GET /docs lists the routes and their methods"
    body = {"error": str(exc.detail), "where": where, "hint": hint}
    return SafeJSONResponse(body, status_code=exc.status_code, headers=headers)


def _documented_methods(request: Request) -> str | None:
    """The methods the OpenAPI document lists for the request's path (FastAPI has a route per
    method, and its 405 names only the methods of the first route on the path)."""
    path: str = request.scope["path"]
    root_path: str = request.scope.get("root_path", "")
    if root_path and path.startswith(root_path + "/"):
        path = path[len(root_path) :]
    for template, operations in request.app.openapi()["paths"].items():
        if _path_pattern(template).fullmatch(path):
            return ", ".join(sorted(method.upper() for method in operations))
    return None


@functools.lru_cache(maxsize=256)
def _path_pattern(template: str) -> re.Pattern[str]:
    return compile_path(template)[0]


async def _invalid_request(request: Request, exc: Exception) -> SafeJSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"path": _where(error.get("loc", ())), "message": str(error.get("msg", "invalid"))}
        for error in exc.errors()
    ]
    return SafeJSONResponse({"error": "invalid request", "errors": errors}, status_code=422)


def _where(location: Sequence[Any]) -> str:
    """A FastAPI error location as latchflow names places: ``$.a.b[0]`` in the body, else
    ``query limit``, ``header x``, ``path run_id``."""
    kind, *rest = list(location) or ["body"]
    if kind != "body":
        return f"{kind} {'.'.join(str(part) for part in rest)}".strip()
    path = "$"
    for part in rest:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer."""
    from latchflow.server.schemas import ErrorBody

    return {code: {"model": ErrorBody} for code in codes}
