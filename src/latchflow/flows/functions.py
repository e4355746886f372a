"""The function library of the expression language, on top of the JMESPath built-ins.

Moments (ISO 8601 or unix seconds), IANA time zones, ISO 8601 durations and strftime patterns are
read strictly here; every failure is an ``ExpressionError`` naming the function. Each evaluation
has its own instance, measuring against its budget: the strings built here are refused before they
would pass ``MAX_FUNCTION_STRING`` (the JMESPath built-ins are bounded in
``latchflow.flows.standard_functions``).
"""

from __future__ import annotations

import contextlib
import math
import re
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from jmespath.functions import signature

from latchflow.flows.standard_functions import BoundedFunctions
from latchflow.flows.values import MAX_FUNCTION_STRING, PIN_DIGITS, as_text, iso_text, show
from latchflow.phone import PhoneNumberError, e164
from latchflow.plugin.errors import ExpressionError, FatalError
from latchflow.plugin.timeparse import parse_moment

__all__ = [
    "FUNCTION_NAMES",
    "LatchflowFunctions",
    "check_call",
]


# ---------------------------------------------------------------------------------------------
# Moments, durations, zones


def _moment(function: str, value: Any) -> datetime:
    """An aware datetime from ISO 8601 (keeping its offset) or unix seconds (UTC)."""
    try:
        moment = parse_moment(value)
    except FatalError as exc:
        raise ExpressionError(f"{function}(): {exc}") from None
    if isinstance(value, str):
        try:
            original = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            original = None
        if original is not None and original.tzinfo is not None:
            return moment.astimezone(original.tzinfo)
    return moment


_ZONE_KEY = re.compile(r"[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+)*\Z")


def _zone(function: str, name: str) -> tzinfo:
    if name in ("UTC", "Z", "Etc/UTC"):
        return UTC
    if len(name) <= 64 and _ZONE_KEY.match(name):
        with contextlib.suppress(KeyError, ValueError, OSError):
            return ZoneInfo(name)
    raise ExpressionError(
        f"{function}(): {show(name)} is not an IANA time zone (e.g. 'Europe/Berlin', 'UTC')"
    )


_DURATION = re.compile(
    r"(?P<sign>[+-])?P(?!\Z)(?:(?P<weeks>\d{1,6})W)?(?:(?P<days>\d{1,7})D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d{1,8})H)?(?:(?P<minutes>\d{1,10})M)?"
    r"(?:(?P<seconds>\d{1,12}(?:[.,]\d{1,6})?)S)?)?\Z"
)
_CALENDAR_DURATION = re.compile(r"[+-]?P(?:\d+Y)?(?:\d+M)?(?:\d+[WD])*(?:T.*)?\Z")


def _duration(function: str, value: Any) -> timedelta:
    """A timedelta from an ISO 8601 duration (weeks, days, hours, minutes, seconds) or seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or abs(value) > 10**12:
            raise ExpressionError(f"{function}(): {show(value)} seconds is out of range")
        return timedelta(seconds=value)
    text = value.strip().upper() if isinstance(value, str) else ""
    match = _DURATION.match(text)
    if match is None:
        if _CALENDAR_DURATION.match(text) and ("Y" in text or "M" in text.split("T")[0]):
            raise ExpressionError(
                f"{function}(): {show(value)} uses months or years, whose length varies;"
                " use days or weeks instead (e.g. 'P30D')"
            )
        raise ExpressionError(
            f"{function}(): {show(value)} is not an ISO 8601 duration"
            " (e.g. 'PT1H', '-PT30M', 'P1D', 'P1DT2H') or a number of seconds"
        )
    parts = {
        k: float(v.replace(",", ".")) for k, v in match.groupdict().items() if v and k != "sign"
    }
    delta = timedelta(
        weeks=parts.get("weeks", 0),
        days=parts.get("days", 0),
        hours=parts.get("hours", 0),
        minutes=parts.get("minutes", 0),
        seconds=parts.get("seconds", 0),
    )
    return -delta if match.group("sign") == "-" else delta


# Plain strftime directives that mean the same on every platform (no locale-dependent %c/%x/%X,
# no glibc extensions such as %-d or %e).
_STRFTIME_DIRECTIVES = set("aAbBdfHIjmMpSUwWyYzZGuV%")
_DIRECTIVE = re.compile(r"%(.?)", re.DOTALL)


def _check_pattern(pattern: str) -> None:
    if len(pattern) > 200:
        raise ExpressionError("format_time(): the pattern is longer than 200 characters")
    for match in _DIRECTIVE.finditer(pattern):
        directive = match.group(1)
        if directive not in _STRFTIME_DIRECTIVES:
            shown = f"%{directive}" if directive else "a lone % at the end"
            raise ExpressionError(
                f"format_time(): {shown} is not supported; use plain strftime directives"
                " (%Y %m %d %H %M %S %f %z %Z %a %A %b %B %I %p %j %U %W %w %u %G %V %y %%)"
            )


# ---------------------------------------------------------------------------------------------
# The function library


_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_NAME_OR_INDEX = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*|\d{1,6})\Z")


def _too_long(function: str) -> ExpressionError:
    return ExpressionError(
        f"{function}(): the result is longer than {MAX_FUNCTION_STRING} characters"
    )


def _arity(name: str, count: int, low: int, high: int) -> None:
    if not low <= count <= high:
        expected = f"{low} or {high}" if high == low + 1 else f"{low} to {high}"
        raise ExpressionError(f"{name}() takes {expected} arguments, got {count}")


# Functions with trailing optional arguments: name -> how many may be left out. A left-out argument
# is passed as null, so each optional argument's signature accepts "null".
_OPTIONAL_ARGUMENTS = {"iso": 1, "format_time": 1, "e164": 1}


def _placeholder_value(placeholder: str, values: dict[str, Any] | list[Any]) -> Any:
    """The value format() fills a ``{name}`` or ``{0}`` placeholder with."""
    name = placeholder.strip()
    if not _NAME_OR_INDEX.match(name):
        raise ExpressionError(
            f"format(): {{{name}}} is not a placeholder; use {{name}} or {{0}}"
            " (write {{ and }} for literal braces)"
        )
    if isinstance(values, dict):
        if name not in values:
            raise ExpressionError(f"format(): no value for {{{name}}} in {show(values)}")
        return values[name]
    if not name.isdigit() or int(name) >= len(values):
        raise ExpressionError(f"format(): no value for {{{name}}} in an array of {len(values)}")
    return values[int(name)]


class LatchflowFunctions(BoundedFunctions):
    """The documented library, on top of the JMESPath built-ins."""

    def call_function(self, function_name: str, resolved_args: Iterable[Any]) -> Any:
        resolved_args = list(resolved_args)
        optional = _OPTIONAL_ARGUMENTS.get(function_name, 0)
        if optional and function_name in self.FUNCTION_TABLE:
            size = len(self.FUNCTION_TABLE[function_name]["signature"])
            _arity(function_name, len(resolved_args), size - optional, size)
            resolved_args = resolved_args + [None] * (size - len(resolved_args))
        return super().call_function(function_name, resolved_args)

    # Time -------------------------------------------------------------------------------------

    @signature({"types": ["string", "number"]})
    def _func_unix(self, moment: Any) -> int:
        return int(_moment("unix", moment).timestamp())

    @signature({"types": ["string", "number"]}, {"types": ["string", "null"]})
    def _func_iso(self, moment: Any, zone: str | None = None) -> str:
        value = _moment("iso", moment)
        return iso_text(value.astimezone(_zone("iso", zone) if zone is not None else UTC))

    @signature({"types": ["string", "number"]}, {"types": ["string", "number"]})
    def _func_add_time(self, moment: Any, duration: Any) -> str:
        start = _moment("add_time", moment)
        delta = _duration("add_time", duration)
        try:
            return iso_text(start + delta)
        except OverflowError:
            raise ExpressionError(
                f"add_time(): {show(moment)} plus {show(duration)} is out of the date range"
            ) from None

    @signature(
        {"types": ["string", "number"]},
        {"types": ["string"]},
        {"types": ["string", "null"]},
    )
    def _func_format_time(self, moment: Any, pattern: str, zone: str | None = None) -> str:
        _check_pattern(pattern)
        value = _moment("format_time", moment)
        if zone is not None:
            value = value.astimezone(_zone("format_time", zone))
        try:  # at most 200 pattern characters: a short result, however they are chosen
            return value.strftime(pattern)
        except (ValueError, OverflowError):
            raise ExpressionError(
                f"format_time(): cannot format {show(moment)} with {show(pattern)}"
            ) from None

    # Text -------------------------------------------------------------------------------------

    @signature({"types": ["string", "number"]}, {"types": ["string", "null"]})
    def _func_e164(self, phone: Any, region: str | None = None) -> str:
        try:
            return e164(as_text(phone), region)
        except PhoneNumberError as exc:
            shown = show(phone) if exc.value != region else show(region)
            raise ExpressionError(f"e164(): {shown} {exc}") from None

    @signature({"types": ["string"]}, {"types": ["object", "array"]})
    def _func_format(self, template: str, values: dict[str, Any] | list[Any]) -> str:
        if len(template) > MAX_FUNCTION_STRING:
            raise ExpressionError("format(): the template is too long")
        pieces: list[str] = []
        total = 0  # characters in pieces
        position = 0
        for match in _PLACEHOLDER.finditer(template):
            pieces.append(template[position : match.start()])
            total += match.start() - position
            position = match.end()
            token = match.group(0)
            if token in ("{{", "}}"):
                text: str | None = token[0]
            else:
                value = _placeholder_value(match.group(1) or "", values)
                text = self.budget.as_text(value, MAX_FUNCTION_STRING - total)
            if text is None:
                raise _too_long("format")
            total += len(text)
            pieces.append(text)
        if total + len(template) - position > MAX_FUNCTION_STRING:
            raise _too_long("format")
        pieces.append(template[position:])
        return "".join(pieces)

    @signature({"types": ["string", "number", "null"], "variadic": True})
    def _func_concat(self, *parts: Any) -> str:
        # JMESPath type-checks only the first variadic argument: check the rest here.
        for number, part in enumerate(parts, 1):
            if isinstance(part, bool | list | dict):
                kind = {bool: "a boolean", list: "an array", dict: "an object"}[type(part)]
                raise ExpressionError(
                    f"concat(): argument {number} is {kind}; concat joins strings and numbers"
                    " (use to_string() or join() for others)"
                )
        texts = [as_text(part) for part in parts]  # strings as they are, numbers are short
        if sum(map(len, texts)) > MAX_FUNCTION_STRING:
            raise _too_long("concat")
        return "".join(texts)

    @signature({"types": []}, {"types": []})
    def _func_default(self, value: Any, fallback: Any) -> Any:
        return fallback if value is None or value == "" else value

    @signature({"types": ["number"]})
    def _func_random_pin(self, digits: float) -> str:
        low, high = PIN_DIGITS
        if not (isinstance(digits, int) or digits.is_integer()) or not low <= digits <= high:
            raise ExpressionError(
                f"random_pin(): the number of digits must be a whole number from {low} to {high},"
                f" got {show(digits)}"
            )
        count = int(digits)
        return str(secrets.randbelow(10**count)).zfill(count)


#: Names of the library functions (JMESPath built-ins come in addition).
FUNCTION_NAMES = frozenset(
    name[len("_func_") :] for name in vars(LatchflowFunctions) if name.startswith("_func_")
)


def check_call(name: str, count: int) -> None:
    """Refuse a call of an unknown function or with the wrong number of arguments."""
    table: dict[str, dict[str, Any]] = LatchflowFunctions.FUNCTION_TABLE
    spec = table.get(name)
    if spec is None:
        raise ExpressionError(f"unknown function {name}()")
    sig = spec["signature"]
    optional = _OPTIONAL_ARGUMENTS.get(name, 0)
    if sig and sig[-1].get("variadic"):
        if count < len(sig):
            raise ExpressionError(f"{name}() takes at least {len(sig)} arguments, got {count}")
    else:
        _arity(name, count, len(sig) - optional, len(sig))
