"""Key inputs as the v2 API wants them, recurrence checks, and reading job results."""

from __future__ import annotations

from typing import Any

from latchflow import FatalError, parse_moment
from latchflow_unloc.assumptions import CREATED_KEY_ID_FIELDS, DAY_NAMES
from latchflow_unloc.phone import to_e164

WINDOW_LIMITS = {"startHour": 24, "startMinute": 59, "endHour": 24, "endMinute": 59}

RECURRENCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Days the key works on and the window each day (lock-local time), e.g."
    ' {"mon": {"startHour": 9, "startMinute": 0, "endHour": 18, "endMinute": 0}}.'
    " Days not listed are inactive.",
    "propertyNames": {"enum": list(DAY_NAMES)},
    "additionalProperties": {
        "type": "object",
        "required": ["startHour", "startMinute", "endHour", "endMinute"],
        "properties": {
            "startHour": {"type": "integer", "minimum": 0, "maximum": 24},
            "startMinute": {"type": "integer", "minimum": 0, "maximum": 59},
            "endHour": {"type": "integer", "minimum": 0, "maximum": 24},
            "endMinute": {"type": "integer", "minimum": 0, "maximum": 59},
        },
        "additionalProperties": False,
    },
}


def iso_utc(value: Any) -> str:
    """A moment as Unloc writes it: ISO 8601 UTC with milliseconds and ``Z``."""
    moment = parse_moment(value)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def check_recurrence(recurrence: Any, where: str = "recurrence") -> dict[str, Any]:
    """The recurrence object unchanged, or FatalError naming the first thing wrong with it."""
    if not isinstance(recurrence, dict) or not recurrence:
        raise FatalError(f"{where}: must map day names ({', '.join(DAY_NAMES)}) to time windows")
    for day, window in recurrence.items():
        if day not in DAY_NAMES:
            raise FatalError(f"{where}.{day}: unknown day; use one of {', '.join(DAY_NAMES)}")
        if not isinstance(window, dict):
            raise FatalError(
                f"{where}.{day}: must be an object with startHour, startMinute, endHour, endMinute"
            )
        for name, top in WINDOW_LIMITS.items():
            value = window.get(name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top:
                raise FatalError(f"{where}.{day}.{name}: must be an integer from 0 to {top}")
        if (window["startHour"], window["startMinute"]) >= (window["endHour"], window["endMinute"]):
            raise FatalError(f"{where}.{day}: the window must end after it starts")
    return recurrence


def key_input(item: dict[str, Any], where: str = "input") -> dict[str, Any]:
    """One ``KeyInput`` for ``POST /v2/projects/{id}/keys`` from a step's input.

    The phone number becomes E.164; start/end become ISO UTC and are left out when not given
    (v2 rejects ``null`` with 400 "must be of type string").
    """
    out: dict[str, Any] = {
        "lockId": item["lockId"],
        "appUserId": to_e164(
            item["appUserId"], item.get("defaultRegion"), field=f"{where}.appUserId"
        ),
    }
    for name in ("start", "end"):
        if item.get(name) not in (None, ""):
            try:
                out[name] = iso_utc(item[name])
            except FatalError as exc:
                raise FatalError(f"{where}.{name}: {exc}") from None
    if "start" in out and "end" in out and out["end"] <= out["start"]:
        raise FatalError(f"{where}.end: must be after start ({out['start']})")
    if item.get("durationMinutes") is not None:
        if "end" in out:
            raise FatalError(f"{where}: give either end or durationMinutes, not both")
        out["durationMinutes"] = int(item["durationMinutes"])
    if item.get("recurrence"):
        out["recurrence"] = check_recurrence(item["recurrence"], f"{where}.recurrence")
    if item.get("metadata"):
        out["metadata"] = {str(k): str(v) for k, v in item["metadata"].items()}
    return out


def created_key_id(item: Any) -> str | None:
    """The id of a key listed in a job's ``createdKeys`` (``id``, ``keyId`` or ``key.id``)."""
    if not isinstance(item, dict):
        return str(item) if item else None
    for name in CREATED_KEY_ID_FIELDS:
        if item.get(name):
            return str(item[name])
    nested = item.get("key")
    if isinstance(nested, dict) and nested.get("id"):
        return str(nested["id"])
    return None


def flat_key(key: dict[str, Any]) -> dict[str, Any]:
    """A key as flows see it: the v2 fields plus ``keyId`` and ``appUserId`` at the top."""
    app_user = key.get("appUser") or key.get("toUser") or {}
    return {
        "keyId": key.get("id"),
        "lockId": key.get("lockId"),
        "appUserId": str(app_user.get("id")) if app_user.get("id") is not None else None,
        "state": key.get("state"),
        "start": key.get("start"),
        "end": key.get("end"),
        "created": key.get("created"),
        "recurrence": key.get("recurrence"),
        "metadata": key.get("metadata"),
    }
