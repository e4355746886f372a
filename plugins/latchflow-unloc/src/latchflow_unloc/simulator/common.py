"""Problem JSON, bearer-token checks and input validation shared by the simulator's APIs."""

from __future__ import annotations

import urllib.parse
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from latchflow_unloc.assumptions import DAY_NAMES, END_BEFORE_START_REASON, END_IN_PAST_REASON
from latchflow_unloc.simulator.model import E164, SimToken, UnlocWorld, parse_iso


class Problem(Exception):
    """An error answer; raised inside routes and rendered by the app's exception handler."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        invalid: list[dict[str, str]] | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(title)
        self.status, self.title, self.detail, self.invalid, self.body = (
            status,
            title,
            detail,
            invalid,
            body,
        )

    def response(self) -> JSONResponse:
        if self.body is not None:
            return JSONResponse(self.body, status_code=self.status)
        content: dict[str, Any] = {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.invalid:
            content["invalidParams"] = self.invalid
        return JSONResponse(content, status_code=self.status, media_type="application/problem+json")


def bearer(world: UnlocWorld, request: Request, kind: str) -> SimToken:
    header = request.headers.get("authorization", "")
    value = header[7:] if header.lower().startswith("bearer ") else ""
    token = world.tokens.get(value)
    if token is None:
        raise Problem(
            401, "", body={"error": "JsonWebTokenError", "errorDescription": "invalid token"}
        )
    if token.expires_at <= world.now():
        raise Problem(
            401, "", body={"error": "JsonWebTokenError", "errorDescription": "JWT expired"}
        )
    if token.kind != kind:
        raise Problem(403, "Forbidden", f"this token is not valid for the {kind} API")
    return token


async def body_of(request: Request) -> dict[str, Any]:
    """JSON or form body (one public client posts its token request form-encoded)."""
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return dict(urllib.parse.parse_qsl((await request.body()).decode()))
    try:
        data = await request.json()
    except ValueError:
        raise Problem(400, "Bad Request", "body must be JSON") from None
    if not isinstance(data, dict):
        raise Problem(400, "Bad Request", "body must be a JSON object")
    return data


def check_time(
    item: dict[str, Any], name: str, path: str, invalid: list[dict[str, str]], *, nullable: bool
) -> None:
    if name not in item or (nullable and item[name] is None):
        return
    value = item[name]
    if not isinstance(value, str):
        invalid.append({"name": f"{path}.{name}", "reason": "must be of type string"})
        return
    try:
        parse_iso(value)
    except ValueError:
        invalid.append({"name": f"{path}.{name}", "reason": 'must match format "date-time"'})


def check_recurrence(value: Any, path: str, invalid: list[dict[str, str]]) -> None:
    if not isinstance(value, dict):
        invalid.append({"name": path, "reason": "must be object"})
        return
    limits = {"startHour": 24, "startMinute": 59, "endHour": 24, "endMinute": 59}
    for day, window in value.items():
        if day not in DAY_NAMES:
            invalid.append(
                {"name": f"{path}.{day}", "reason": "must NOT have additional properties"}
            )
            continue
        if not isinstance(window, dict):
            invalid.append({"name": f"{path}.{day}", "reason": "must be object"})
            continue
        for name, top in limits.items():
            number = window.get(name)
            if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number <= top:
                invalid.append(
                    {"name": f"{path}.{day}.{name}", "reason": f"must be integer <= {top}"}
                )


def check_phone(value: Any, name: str, invalid: list[dict[str, str]]) -> None:
    if not isinstance(value, str):
        invalid.append({"name": name, "reason": "must be of type string"})
    elif not E164.match(value):
        invalid.append({"name": name, "reason": "must be an E.164 phone number"})


def check_period(
    item: dict[str, Any], path: str, now: datetime, invalid: list[dict[str, str]]
) -> None:
    """An end must not be past and must come after the start; ``path`` prefixes the field
    names in the answer."""
    try:
        start = parse_iso(item["start"]) if item.get("start") else now
        if item.get("end"):
            end, name = parse_iso(item["end"]), "end"
        elif isinstance(item.get("durationMinutes"), int):
            end, name = start + timedelta(minutes=item["durationMinutes"]), "durationMinutes"
        else:
            return
    except (AttributeError, TypeError, ValueError):
        return  # reported by check_time
    if end <= now:
        invalid.append({"name": f"{path}{name}", "reason": END_IN_PAST_REASON})
    elif end <= start:
        invalid.append({"name": f"{path}{name}", "reason": END_BEFORE_START_REASON})
