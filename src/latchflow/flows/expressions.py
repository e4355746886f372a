"""The flow expression language: ``{{ ... }}`` templates of JMESPath plus a small function library.

A template is any JSON value (a step's input, an ``if`` condition). Every string in it may hold
``{{ expression }}`` parts; an expression is JMESPath evaluated over the scope::

    {"trigger": {...event data...}, "steps": {"<step id>": {...output...}},
     "flow": {"id": ..., "name": ..., "version": ...}, "now": "2026-03-01T15:00:00Z"}

A string that is exactly one expression keeps the expression's JSON type; a string mixing text and
expressions becomes a string. Functions (``unix``, ``iso``, ``add_time``, ``format_time``, ``e164``,
``format``, ``concat``, ``default``, ``random_pin``) are registered as JMESPath custom functions;
docs/flow-format.md ("Expressions") describes each.

The language is data only: nothing but dict/list/str/int/float/bool/None enters the scope or leaves
a function, every intermediate value and every rendered template is bounded in size, and every
failure (syntax, types, bad arguments, exhausted limits) is an ``ExpressionError`` whose message names
the JSON path inside the template and the expression.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import math
import re
import secrets
import warnings
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

import jmespath
import jmespath.exceptions
import phonenumbers
from jmespath.functions import Functions, signature
from jmespath.lexer import Lexer
from jmespath.visitor import Options, TreeInterpreter

from latchflow.plugin.errors import ErrorDetail, ExpressionError, FatalError
from latchflow.plugin.timeparse import parse_moment

if TYPE_CHECKING:
    from jmespath.visitor import _TreeNode

__all__ = [
    "FUNCTION_NAMES",
    "MAX_EXPRESSION_LENGTH",
    "MAX_VALUE_SIZE",
    "build_scope",
    "check",
    "evaluate",
    "is_truthy",
    "referenced_steps",
    "render",
]

#: Longest expression (the text between ``{{`` and ``}}``) accepted, in characters.
MAX_EXPRESSION_LENGTH = 4000
#: Largest value an expression may build, and largest rendered template, in "JSON units": one per
#: null/bool/number/array/object plus the length of every string and object key (about bytes).
MAX_VALUE_SIZE = 4 * 1024 * 1024
#: Longest string a library function (format, concat, format_time, ...) may return.
MAX_FUNCTION_STRING = 1024 * 1024
#: Deepest nesting of arrays/objects accepted in the scope, in templates and in results.
MAX_DEPTH = 64
#: Digits random_pin() may produce.
PIN_DIGITS = (4, 12)

_OPEN = "{{"
_CLOSE = "}}"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


# ---------------------------------------------------------------------------------------------
# Small helpers: JSON text, paths, messages


def _json_text(value: Any) -> str:
    """Compact JSON, as interpolation and messages show values."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _show(value: Any, limit: int = 80) -> str:
    """A value for an error message: JSON text, shortened."""
    try:
        text = _json_text(value)
    except (TypeError, ValueError):
        text = type(value).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _child_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENTIFIER.match(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _where(expression: str) -> str:
    shown = expression.strip()
    if len(shown) > 120:
        shown = shown[:117] + "..."
    return f"{{{{ {shown} }}}}"


def _as_text(value: Any) -> str:
    """How a value appears inside a string: null is empty, strings as-is, the rest as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return _json_text(value)


# ---------------------------------------------------------------------------------------------
# Data checks: what may enter and leave


class _Budget:
    """Sizes of the values one evaluation builds, memoised by identity (shared parts count once
    per reference, as JSON would print them, but are measured once)."""

    def __init__(self, limit: int = MAX_VALUE_SIZE) -> None:
        self.limit = limit
        self._sizes: dict[int, int] = {}
        self._keep: list[Any] = []  # keeps measured containers alive so their ids stay unique

    def size(self, value: Any) -> int:
        if isinstance(value, str):
            return len(value)
        if not isinstance(value, list | dict):
            return 1
        known = self._sizes.get(id(value))
        if known is not None:
            return known
        # Iterative post-order walk: no recursion, whatever the depth.
        stack: list[tuple[Any, bool]] = [(value, False)]
        while stack:
            node, expanded = stack.pop()
            if id(node) in self._sizes:
                continue
            children = node.values() if isinstance(node, dict) else node
            if not expanded:
                stack.append((node, True))
                stack.extend(
                    (c, False)
                    for c in children
                    if isinstance(c, list | dict) and id(c) not in self._sizes
                )
                continue
            total = 1 + (sum(len(k) for k in node) if isinstance(node, dict) else 0)
            for child in children:
                if isinstance(child, list | dict):
                    total += self._sizes[id(child)]
                elif isinstance(child, str):
                    total += len(child)
                else:
                    total += 1
                if total > self.limit:
                    break
            self._sizes[id(node)] = total
            self._keep.append(node)
        return self._sizes[id(value)]

    def check(self, value: Any) -> None:
        if self.size(value) > self.limit:
            raise ExpressionError(
                f"the value built is too large (more than {self.limit} JSON characters)"
            )


def _plain_data(value: Any, where: str) -> Any:
    """A copy of ``value`` made only of JSON types; datetimes become ISO 8601 strings.

    Anything else (objects, bytes, sets, non-string keys) is refused, so that no Python object can
    ever be reached from an expression.
    """
    if isinstance(value, datetime | date):
        return _iso_text(value) if isinstance(value, datetime) else value.isoformat()
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if not isinstance(value, dict | list | tuple):
        raise ExpressionError(f"{where}: a {type(value).__name__} is not JSON data")
    root: Any = {} if isinstance(value, dict) else []
    # Iterative copy: (source, target, path, depth)
    stack: list[tuple[Any, Any, str, int]] = [(value, root, where, 1)]
    while stack:
        source, target, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExpressionError(f"{path}: nested deeper than {MAX_DEPTH} levels")
        items: Iterator[tuple[Any, Any]] = (
            iter(source.items()) if isinstance(source, dict) else enumerate(source)
        )
        for key, item in items:
            if isinstance(source, dict) and not isinstance(key, str):
                raise ExpressionError(f"{path}: object key {key!r} is not a string")
            child_path = _child_path(path, key)
            if isinstance(item, dict | list | tuple):
                copy: Any = {} if isinstance(item, dict) else []
                stack.append((item, copy, child_path, depth + 1))
            elif isinstance(item, datetime | date):
                copy = _iso_text(item) if isinstance(item, datetime) else item.isoformat()
            elif item is None or isinstance(item, str | bool | int | float):
                copy = item
            else:
                raise ExpressionError(f"{child_path}: a {type(item).__name__} is not JSON data")
            if isinstance(target, dict):
                target[key] = copy
            else:
                target.append(copy)
    return root


def _check_result(value: Any, budget: _Budget) -> None:
    """Refuse results that are not JSON data (e.g. an ``&expression``) or not finite numbers."""
    budget.check(value)
    seen: set[int] = set()
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, bool) or node is None or isinstance(node, str | int):
            continue
        if isinstance(node, float):
            if not math.isfinite(node):
                raise ExpressionError(f"the result {node} is not a finite number")
            continue
        if isinstance(node, list | dict):
            if depth > MAX_DEPTH:
                raise ExpressionError(f"the result is nested deeper than {MAX_DEPTH} levels")
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.extend(
                (child, depth + 1) for child in (node.values() if isinstance(node, dict) else node)
            )
            continue
        kind = "an &expression" if type(node).__name__ == "_Expression" else type(node).__name__
        raise ExpressionError(f"the result contains {kind}, which is not JSON data")


# ---------------------------------------------------------------------------------------------
# Moments, durations, zones


def _iso_text(moment: datetime) -> str:
    """ISO 8601 with the moment's offset; UTC is written with ``Z``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _moment(function: str, value: Any) -> datetime:
    """An aware datetime from ISO 8601 (keeping its offset) or unix seconds (UTC)."""
    try:
        moment = parse_moment(value)
    except FatalError as exc:
        raise ExpressionError(f"{function}(): {exc}") from None
    except (ValueError, OverflowError, OSError):
        raise ExpressionError(
            f"{function}(): {_show(value)} is out of the supported date range"
        ) from None
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
        f"{function}(): {_show(name)} is not an IANA time zone (e.g. 'Europe/Berlin', 'UTC')"
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
            raise ExpressionError(f"{function}(): {_show(value)} seconds is out of range")
        return timedelta(seconds=value)
    text = value.strip().upper() if isinstance(value, str) else ""
    match = _DURATION.match(text)
    if match is None:
        if _CALENDAR_DURATION.match(text) and ("Y" in text or "M" in text.split("T")[0]):
            raise ExpressionError(
                f"{function}(): {_show(value)} uses months or years, whose length varies;"
                " use days or weeks instead (e.g. 'P30D')"
            )
        raise ExpressionError(
            f"{function}(): {_show(value)} is not an ISO 8601 duration"
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


def _cap(function: str, text: str) -> str:
    if len(text) > MAX_FUNCTION_STRING:
        raise ExpressionError(
            f"{function}(): the result is longer than {MAX_FUNCTION_STRING} characters"
        )
    return text


def _arity(name: str, args: list[Any], low: int, high: int) -> None:
    if not low <= len(args) <= high:
        expected = f"{low} or {high}" if high == low + 1 else f"{low} to {high}"
        raise ExpressionError(f"{name}() takes {expected} arguments, got {len(args)}")


# Functions with trailing optional arguments: name -> how many may be left out. A left-out argument
# is passed as null, so each optional argument's signature accepts "null".
_OPTIONAL_ARGUMENTS = {"iso": 1, "format_time": 1, "e164": 1}


class LatchflowFunctions(Functions):
    """The documented library, on top of the JMESPath built-ins."""

    def call_function(self, function_name: str, resolved_args: Iterable[Any]) -> Any:
        resolved_args = list(resolved_args)
        optional = _OPTIONAL_ARGUMENTS.get(function_name, 0)
        if optional and function_name in self.FUNCTION_TABLE:
            size = len(self.FUNCTION_TABLE[function_name]["signature"])
            _arity(function_name, resolved_args, size - optional, size)
            resolved_args = resolved_args + [None] * (size - len(resolved_args))
        return super().call_function(function_name, resolved_args)

    # Time -------------------------------------------------------------------------------------

    @signature({"types": ["string", "number"]})
    def _func_unix(self, moment: Any) -> int:
        return int(_moment("unix", moment).timestamp())

    @signature({"types": ["string", "number"]}, {"types": ["string", "null"]})
    def _func_iso(self, moment: Any, zone: str | None = None) -> str:
        value = _moment("iso", moment)
        return _iso_text(value.astimezone(_zone("iso", zone) if zone is not None else UTC))

    @signature({"types": ["string", "number"]}, {"types": ["string", "number"]})
    def _func_add_time(self, moment: Any, duration: Any) -> str:
        start = _moment("add_time", moment)
        delta = _duration("add_time", duration)
        try:
            return _iso_text(start + delta)
        except OverflowError:
            raise ExpressionError(
                f"add_time(): {_show(moment)} plus {_show(duration)} is out of the date range"
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
        try:
            return _cap("format_time", value.strftime(pattern))
        except (ValueError, OverflowError):
            raise ExpressionError(
                f"format_time(): cannot format {_show(moment)} with {_show(pattern)}"
            ) from None

    # Text -------------------------------------------------------------------------------------

    @signature({"types": ["string", "number"]}, {"types": ["string", "null"]})
    def _func_e164(self, phone: Any, region: str | None = None) -> str:
        text = _as_text(phone).strip()
        where = f" (region {region})" if region else ""
        if region is not None and not re.fullmatch(r"[A-Za-z]{2}", region):
            raise ExpressionError(
                f"e164(): {_show(region)} is not a two-letter region code (e.g. 'DE', 'US')"
            )
        if len(text) > 64:
            raise ExpressionError(f"e164(): {_show(phone)} is not a phone number")
        try:
            number = phonenumbers.parse(text, region.upper() if region else None)
        except phonenumbers.NumberParseException:
            hint = "" if region or text.startswith("+") else "; give a region or a +country code"
            raise ExpressionError(
                f"e164(): {_show(phone)} is not a phone number{where}{hint}"
            ) from None
        if not phonenumbers.is_valid_number(number):
            raise ExpressionError(f"e164(): {_show(phone)} is not a valid phone number{where}")
        return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))

    @signature({"types": ["string"]}, {"types": ["object", "array"]})
    def _func_format(self, template: str, values: dict[str, Any] | list[Any]) -> str:
        if len(template) > MAX_FUNCTION_STRING:
            raise ExpressionError("format(): the template is too long")
        pieces: list[str] = []
        total = 0
        position = 0
        for match in _PLACEHOLDER.finditer(template):
            pieces.append(template[position : match.start()])
            position = match.end()
            token = match.group(0)
            if token in ("{{", "}}"):
                pieces.append(token[0])
                continue
            name = (match.group(1) or "").strip()
            if not _NAME_OR_INDEX.match(name):
                raise ExpressionError(
                    f"format(): {{{name}}} is not a placeholder; use {{name}} or {{0}}"
                    " (write {{ and }} for literal braces)"
                )
            if isinstance(values, dict):
                if name not in values:
                    raise ExpressionError(f"format(): no value for {{{name}}} in {_show(values)}")
                value = values[name]
            else:
                if not name.isdigit() or int(name) >= len(values):
                    raise ExpressionError(
                        f"format(): no value for {{{name}}} in an array of {len(values)}"
                    )
                value = values[int(name)]
            text = _as_text(value)
            total += len(text)
            if total > MAX_FUNCTION_STRING:
                raise ExpressionError(
                    f"format(): the result is longer than {MAX_FUNCTION_STRING} characters"
                )
            pieces.append(text)
        pieces.append(template[position:])
        return _cap("format", "".join(pieces))

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
        return _cap("concat", "".join(_as_text(part) for part in parts))

    @signature({"types": []}, {"types": []})
    def _func_default(self, value: Any, fallback: Any) -> Any:
        return fallback if value is None or value == "" else value

    @signature({"types": ["number"]})
    def _func_random_pin(self, digits: float) -> str:
        low, high = PIN_DIGITS
        if not (isinstance(digits, int) or digits.is_integer()) or not low <= digits <= high:
            raise ExpressionError(
                f"random_pin(): the number of digits must be a whole number from {low} to {high},"
                f" got {_show(digits)}"
            )
        count = int(digits)
        return str(secrets.randbelow(10**count)).zfill(count)


#: Names of the library functions (JMESPath built-ins come in addition).
FUNCTION_NAMES = frozenset(
    name[len("_func_") :] for name in vars(LatchflowFunctions) if name.startswith("_func_")
)
_FUNCTIONS = LatchflowFunctions()
_OPTIONS = Options(custom_functions=_FUNCTIONS)
# Node types whose result is a value built by the expression (not a part of the scope).
_BUILDING = frozenset(
    {
        "multi_select_list",
        "multi_select_dict",
        "projection",
        "value_projection",
        "filter_projection",
        "flatten",
        "function_expression",
        "slice",
    }
)


class _Interpreter(TreeInterpreter):
    """JMESPath's interpreter, measuring every value it builds against a budget."""

    def __init__(self, budget: _Budget) -> None:
        super().__init__(_OPTIONS)
        self._budget = budget

    def visit(self, node: _TreeNode, *args: Any, **kwargs: Any) -> Any:
        result = super().visit(node, *args, **kwargs)
        if node["type"] in _BUILDING and isinstance(result, list | dict | str):
            self._budget.check(result)
        return result


# ---------------------------------------------------------------------------------------------
# Parsing


def _one_line(message: str) -> str:
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


def _syntax_message(exc: jmespath.exceptions.JMESPathError) -> str:
    if isinstance(exc, jmespath.exceptions.IncompleteExpressionError):
        return "the expression ends too early"
    if isinstance(exc, jmespath.exceptions.LexerError):
        return f"{exc.message} at character {exc.lexer_position + 1}"
    if isinstance(exc, jmespath.exceptions.ParseError):
        message = f"{exc.msg} at character {exc.lex_position + 1}"
        if exc.token_type == "NUMBER":  # noqa: S105 - a token kind, not a password
            message += " (write number literals in backticks, e.g. `1`)"
        return message
    return _one_line(str(exc))


def _refuse_legacy_literals(text: str) -> None:
    """JMESPath still reads `text` (not JSON) as the string "text", with a deprecation warning.

    The lexer is run on its own (jmespath caches parses, so the warning comes only once) and such a
    literal is refused, the same way every time.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        collections.deque(Lexer().tokenize(text), maxlen=0)  # run the lexer to its end
    if any(issubclass(w.category, DeprecationWarning | PendingDeprecationWarning) for w in caught):
        raise ExpressionError(
            "a `...` literal must be JSON (e.g. `1`, `true`, `\"text\"`); write 'text' for a string"
        )


@functools.lru_cache(maxsize=4096)
def _parse(expression: str, *, check_functions: bool = True) -> dict[str, Any]:
    """The JMESPath AST of an expression, or ExpressionError saying what is wrong. Kept for
    the next render of the same flow (read the tree, never change it)."""
    text = expression.strip()
    if not text:
        raise ExpressionError("the expression is empty")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(f"the expression is longer than {MAX_EXPRESSION_LENGTH} characters")
    try:
        _refuse_legacy_literals(text)
        parsed = cast(dict[str, Any], jmespath.compile(text).parsed)
    except jmespath.exceptions.JMESPathError as exc:
        raise ExpressionError(f"syntax error: {_syntax_message(exc)}") from None
    except RecursionError:
        raise ExpressionError("the expression is nested too deeply") from None
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise ExpressionError(
            f"syntax error: {_one_line(str(exc)) or type(exc).__name__}"
        ) from None
    if check_functions:
        _check_functions(parsed)
    return parsed


def _nodes(tree: dict[str, Any]) -> Iterator[dict[str, Any]]:
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(c for c in node.get("children", ()) if isinstance(c, dict))


def _check_functions(tree: dict[str, Any]) -> None:
    """Unknown functions and wrong argument counts are reported before anything runs."""
    table: dict[str, dict[str, Any]] = _FUNCTIONS.FUNCTION_TABLE
    for node in _nodes(tree):
        if node["type"] != "function_expression":
            continue
        name = node["value"]
        spec = table.get(name)
        if spec is None:
            raise ExpressionError(f"unknown function {name}()")
        sig = spec["signature"]
        count = len(node["children"])
        optional = _OPTIONAL_ARGUMENTS.get(name, 0)
        if sig and sig[-1].get("variadic"):
            if count < len(sig):
                raise ExpressionError(f"{name}() takes at least {len(sig)} arguments, got {count}")
        else:
            low, high = len(sig) - optional, len(sig)
            if not low <= count <= high:
                _arity(name, [None] * count, low, high)


def _split(text: str) -> Iterator[tuple[bool, str]]:
    """Pieces of a template string: (False, literal text) and (True, expression source).

    ``}}`` ends an expression only outside JMESPath string literals and outside ``{...}``
    multi-select hashes, so ``{{ {a: {b: c}} }}`` and ``{{ 'x}}' }}`` work.
    """
    position = 0
    while True:
        start = text.find(_OPEN, position)
        if start < 0:
            if position < len(text):
                yield False, text[position:]
            return
        if start > position:
            yield False, text[position:start]
        index = start + 2
        depth = 0
        quote = ""
        end = -1
        while index < len(text):
            char = text[index]
            if quote:
                if char == "\\":
                    index += 2
                    continue
                if char == quote:
                    quote = ""
            elif char in "'\"`":
                quote = char
            elif char == "{":
                depth += 1
            elif char == "}":
                if depth == 0 and text.startswith(_CLOSE, index):
                    end = index
                    break
                depth = max(depth - 1, 0)
            index += 1
        if end < 0:
            raise ExpressionError(f"{{{{ at character {start + 1} is never closed by }}}}")
        yield True, text[start + 2 : end]
        position = end + 2


@functools.lru_cache(maxsize=4096)
def _pieces(text: str) -> tuple[tuple[bool, str], ...]:
    return tuple(_split(text))


def _single(pieces: tuple[tuple[bool, str], ...]) -> str | None:
    """The expression when a string is exactly one ``{{ ... }}`` (blank text around allowed)."""
    expressions = [p for p in pieces if p[0]]
    if len(expressions) == 1 and all(is_expr or not part.strip() for is_expr, part in pieces):
        return expressions[0][1]
    return None


# ---------------------------------------------------------------------------------------------
# Evaluation


def _run(expression: str, data: Any, budget: _Budget) -> Any:
    tree = _parse(expression)
    interpreter = _Interpreter(budget)
    try:
        result = interpreter.visit(cast("_TreeNode", tree), data)
    except ExpressionError:
        raise
    except jmespath.exceptions.JMESPathTypeError as exc:
        raise ExpressionError(_one_line(str(exc))) from None
    except jmespath.exceptions.JMESPathError as exc:
        raise ExpressionError(_one_line(str(exc))) from None
    except RecursionError:
        raise ExpressionError("the expression nests too deeply to evaluate") from None
    except MemoryError:
        raise ExpressionError("the expression needs too much memory") from None
    except (TypeError, ValueError, OverflowError, ArithmeticError) as exc:
        raise ExpressionError(
            f"cannot evaluate: {_one_line(str(exc)) or type(exc).__name__}"
        ) from None
    except Exception as exc:  # any other failure is still the expression's
        raise ExpressionError(f"cannot evaluate: {type(exc).__name__}: {exc}") from None
    _check_result(result, budget)
    return result


def _scope_data(scope: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(scope, dict):
        raise ExpressionError(f"the scope must be an object, got {type(scope).__name__}")
    return cast(dict[str, Any], _plain_data(scope, "scope"))


def evaluate(expression: str, scope: dict[str, Any]) -> Any:
    """The JSON value of one expression over ``scope``.

    ``expression`` is bare JMESPath (``trigger.unitId``); a string that is exactly one
    ``{{ ... }}`` is accepted too. Raises ExpressionError naming the expression.
    """
    if not isinstance(expression, str):
        raise ExpressionError(f"an expression must be a string, got {type(expression).__name__}")
    source = expression
    if expression.strip().startswith(_OPEN):
        try:
            single = _single(_pieces(expression))
        except ExpressionError as exc:
            raise ExpressionError(f"{exc} (in {_show(expression, 120)})") from None
        if single is None:
            raise ExpressionError(
                f"{_show(expression, 120)} is not a single expression; use render() for templates"
            )
        source = single
    data = _scope_data(scope)
    try:
        return _run(source, data, _Budget())
    except ExpressionError as exc:
        raise ExpressionError(f"{exc} (in {_where(source)})") from None


def render(template: Any, scope: dict[str, Any], path: str = "$") -> Any:
    """``template`` with every ``{{ ... }}`` evaluated over ``scope``.

    Dicts and lists are walked (keys are kept as written); a string that is exactly one expression
    becomes the expression's JSON value; other strings interpolate (null is empty, numbers and
    booleans as JSON, objects and arrays as compact JSON). Errors are ExpressionError messages
    starting with the JSON path of the failing string, e.g. ``$.input.unitId: ...``.
    """
    data = _scope_data(scope)
    budget = _Budget()
    total = [0]

    def account(value: Any, where: str) -> None:
        total[0] += budget.size(value)
        if total[0] > MAX_VALUE_SIZE:
            raise ExpressionError(
                f"{where}: the rendered document is larger than {MAX_VALUE_SIZE} JSON characters"
            )

    def render_string(text: str, where: str) -> Any:
        try:
            pieces = _pieces(text)
        except ExpressionError as exc:
            raise ExpressionError(f"{where}: {exc}") from None
        single = _single(pieces)
        if single is not None:
            try:
                value = _run(single, data, budget)
            except ExpressionError as exc:
                raise ExpressionError(f"{where}: {exc} (in {_where(single)})") from None
            account(value, where)
            return value
        out: list[str] = []
        for is_expression, part in pieces:
            if not is_expression:
                out.append(part)
                account(part, where)
                continue
            try:
                value = _run(part, data, budget)
                text_value = _as_text(value)
            except ExpressionError as exc:
                raise ExpressionError(f"{where}: {exc} (in {_where(part)})") from None
            except (TypeError, ValueError) as exc:  # a huge integer cannot be printed
                raise ExpressionError(f"{where}: {exc} (in {_where(part)})") from None
            account(text_value, where)
            out.append(text_value)
        return "".join(out)

    def walk(node: Any, where: str, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise ExpressionError(f"{where}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, str):
            return render_string(node, where) if _OPEN in node else node
        if isinstance(node, dict):
            result: dict[str, Any] = {}
            for key, value in node.items():
                if not isinstance(key, str):
                    raise ExpressionError(f"{where}: object key {key!r} is not a string")
                result[key] = walk(value, _child_path(where, key), depth + 1)
            return result
        if isinstance(node, list | tuple):
            return [walk(item, _child_path(where, i), depth + 1) for i, item in enumerate(node)]
        if node is None or isinstance(node, bool | int | float):
            return node
        raise ExpressionError(f"{where}: a {type(node).__name__} is not JSON data")

    return walk(template, path, 1)


def is_truthy(value: Any) -> bool:
    """JMESPath truthiness, for ``if`` conditions: null, false, "", [] and {} are false."""
    return not (value is None or value is False or value in ("", [], {}))


def build_scope(
    *,
    trigger: Any,
    steps: dict[str, Any] | None = None,
    flow: dict[str, Any] | None = None,
    now: datetime | str | None = None,
) -> dict[str, Any]:
    """The scope expressions see; ``now`` defaults to the current time, as ISO 8601 UTC."""
    moment = now if now is not None else datetime.now(UTC)
    return {
        "trigger": trigger,
        "steps": steps or {},
        "flow": flow or {},
        "now": _iso_text(moment.astimezone(UTC)) if isinstance(moment, datetime) else moment,
    }


# ---------------------------------------------------------------------------------------------
# Static checks for flow validation


def _strings(template: Any, path: str) -> Iterator[tuple[str, str]]:
    """(JSON path, string) for every string in a template that contains ``{{``."""
    stack: list[tuple[Any, str, int]] = [(template, path, 1)]
    while stack:
        node, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            continue
        if isinstance(node, str):
            if _OPEN in node:
                yield where, node
        elif isinstance(node, dict):
            stack.extend(
                (v, _child_path(where, k), depth + 1)
                for k, v in reversed(list(node.items()))
                if isinstance(k, str)
            )
        elif isinstance(node, list | tuple):
            stack.extend(
                (v, _child_path(where, i), depth + 1) for i, v in reversed(list(enumerate(node)))
            )


def check(template: Any, path: str = "$") -> list[ErrorDetail]:
    """Syntax problems in a template (unclosed ``{{``, JMESPath syntax, unknown functions, wrong
    argument counts), without evaluating anything. Each ErrorDetail names the JSON path."""
    problems: list[ErrorDetail] = []
    for where, text in _strings(template, path):
        try:
            pieces = _pieces(text)
        except ExpressionError as exc:
            problems.append(ErrorDetail(where, str(exc)))
            continue
        for is_expression, part in pieces:
            if not is_expression:
                continue
            try:
                _parse(part)
            except ExpressionError as exc:
                problems.append(ErrorDetail(where, f"{exc} (in {_where(part)})"))
    return problems


_CHAINS = frozenset(
    {"subexpression", "index_expression", "projection", "value_projection", "filter_projection"}
)


def _leading_field(node: dict[str, Any]) -> str | None:
    """The first field name a path starts with (``pin`` in ``pin[0].x``)."""
    while True:
        if node["type"] == "field":
            return cast(str, node["value"])
        if node["type"] in _CHAINS | {"flatten"} and node.get("children"):
            node = node["children"][0]
            continue
        return None


def _step_references(tree: dict[str, Any]) -> set[str]:
    """Ids in ``steps.<id>`` paths evaluated against the scope root (not inside projections)."""
    found: set[str] = set()
    stack: list[tuple[dict[str, Any], bool]] = [(tree, True)]
    while stack:
        node, at_root = stack.pop()
        kind = node["type"]
        children = [c for c in node.get("children", ()) if isinstance(c, dict)]
        if kind == "subexpression":
            chain = children
            while at_root and len(chain) > 1 and chain[0]["type"] == "current":
                chain = chain[1:]
            first = chain[0]
            if (
                at_root
                and len(chain) > 1
                and first["type"] == "field"
                and first["value"] == "steps"
            ):
                step = _leading_field(chain[1])
                if step is not None:
                    found.add(step)
            stack.append((first, at_root))
            stack.extend((c, False) for c in chain[1:])
        elif kind in _CHAINS or kind == "pipe":
            if children:
                stack.append((children[0], at_root))
                stack.extend((c, False) for c in children[1:])
        elif kind == "expref":
            stack.extend((c, False) for c in children)
        else:
            stack.extend((c, at_root) for c in children)
    return found


def referenced_steps(template: Any) -> set[str]:
    """Step ids the template reads as ``steps.<id>`` (from the parsed expressions).

    Expressions with syntax errors are skipped (``check`` reports them).
    """
    found: set[str] = set()
    for _where_path, text in _strings(template, "$"):
        try:
            pieces = _pieces(text)
        except ExpressionError:
            continue
        for is_expression, part in pieces:
            if not is_expression:
                continue
            try:
                tree = _parse(part, check_functions=False)
            except ExpressionError:
                continue
            found |= _step_references(tree)
    return found
