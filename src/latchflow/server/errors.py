"""Refusals as clear JSON errors: ``{"error", "where", "hint"}`` with a 4xx status."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse


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


async def rejected_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Rejected)
    return JSONResponse(exc.problem(), status_code=exc.status_code)


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer."""
    from latchflow.server.schemas import ErrorBody

    return {code: {"model": ErrorBody} for code in codes}
