"""What expressions work on and produce: JSON data, its limits, and how it is shown.

Everything that enters the scope is copied to plain JSON types (``plain_data``). The limits every
evaluation is held to are here; ``latchflow.flows.budget`` enforces them. The small helpers here
turn values into the text that interpolation and error messages show; ``show`` looks only at the
beginning of a value, however large it is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any, cast

from latchflow.plugin.errors import ExpressionError

__all__ = [
    "MAX_BUILT",
    "MAX_DEPTH",
    "MAX_EXPRESSION_LENGTH",
    "MAX_FUNCTION_STRING",
    "MAX_VALUE_SIZE",
    "PIN_DIGITS",
    "TIME_BUDGET",
    "as_text",
    "child_path",
    "iso_text",
    "plain_data",
    "scope_data",
    "show",
    "show_expression",
]

#: Longest expression (the text between ``{{`` and ``}}``) accepted, in characters.
MAX_EXPRESSION_LENGTH = 4000
#: Largest value an expression may build, and largest rendered template, in "JSON units": one per
#: null/bool/number/array/object, the length of every string (at least one) and object key, and the
#: digits of a very large integer (about the bytes of its JSON).
MAX_VALUE_SIZE = 4 * 1024 * 1024
#: Most one evaluation (one render, or one evaluate) may build in all, in JSON units: the sizes of
#: all the values its expressions build, added up.
MAX_BUILT = 8 * MAX_VALUE_SIZE
#: Longest string a library function (format, concat, format_time, ...) may return.
MAX_FUNCTION_STRING = 1024 * 1024
#: CPU seconds one evaluation (one render, or one evaluate) may take.
TIME_BUDGET = 0.1
#: CPU seconds a step's rendering may take on the event loop before it goes on in a worker
#: process (``render_aside``).
ON_LOOP_SECONDS = 0.005
#: Deepest nesting of arrays/objects accepted in the scope, in templates and in results.
MAX_DEPTH = 64
#: Digits random_pin() may produce.
PIN_DIGITS = (4, 12)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


# ---------------------------------------------------------------------------------------------
# JSON text and paths


def _json_text(value: Any) -> str:
    """Compact JSON, as interpolation and messages show values."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def show(value: Any, limit: int = 80) -> str:
    """A value for an error message: JSON text, shortened (only its beginning is ever written)."""
    try:
        text = _json_text(_beginning(value, [limit + 1]))
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _beginning(value: Any, left: list[int]) -> Any:
    """A copy of as much of ``value`` as its first ``left[0]`` JSON characters need.

    Every item and character kept prints as at least one character, so the copy's JSON text starts
    like the value's for that many characters; ``left`` is the count still wanted, shared.
    """
    left[0] -= 1
    if isinstance(value, str):
        kept = value[: max(left[0], 0) + 1]
        left[0] -= len(kept)
        return kept
    if isinstance(value, dict):
        copy: dict[str, Any] = {}
        for key, item in value.items():
            if left[0] <= 0:
                break
            short_key = key[: max(left[0], 0) + 1] if isinstance(key, str) else key
            left[0] -= len(short_key) if isinstance(short_key, str) else 1
            copy[short_key] = _beginning(item, left)
        return copy
    if isinstance(value, list):
        items: list[Any] = []
        for item in value:
            if left[0] <= 0:
                break
            items.append(_beginning(item, left))
        return items
    return value


def child_path(path: str, key: str | int) -> str:
    """The JSON path of an object member or array item, as error messages name it."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENTIFIER.match(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def show_expression(expression: str) -> str:
    """An expression as error messages name it: in its braces, shortened."""
    shown = expression.strip()
    if len(shown) > 120:
        shown = shown[:117] + "..."
    return f"{{{{ {shown} }}}}"


def as_text(value: Any) -> str:
    """How a value appears inside a string: null is empty, strings as-is, the rest as JSON.

    For scalars and small values; ``Budget.text`` writes values of any size within a limit.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return _json_text(value)


def iso_text(moment: datetime) -> str:
    """ISO 8601 with the moment's offset; UTC is written with ``Z``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


# ---------------------------------------------------------------------------------------------
# Data checks: what may enter


def plain_data(value: Any, where: str) -> Any:
    """A copy of ``value`` made only of JSON types; datetimes become ISO 8601 strings.

    Anything else (objects, bytes, sets, non-string keys) is refused, so that no Python object can
    ever be reached from an expression.
    """
    if isinstance(value, datetime | date):
        return iso_text(value) if isinstance(value, datetime) else value.isoformat()
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
            item_path = child_path(path, key)
            if isinstance(item, dict | list | tuple):
                copy: Any = {} if isinstance(item, dict) else []
                stack.append((item, copy, item_path, depth + 1))
            elif isinstance(item, datetime | date):
                copy = iso_text(item) if isinstance(item, datetime) else item.isoformat()
            elif item is None or isinstance(item, str | bool | int | float):
                copy = item
            else:
                raise ExpressionError(f"{item_path}: a {type(item).__name__} is not JSON data")
            if isinstance(target, dict):
                target[key] = copy
            else:
                target.append(copy)
    return root


def scope_data(scope: dict[str, Any]) -> dict[str, Any]:
    """The scope as plain JSON data, the only form an expression ever sees."""
    if not isinstance(scope, dict):
        raise ExpressionError(f"the scope must be an object, got {type(scope).__name__}")
    return cast(dict[str, Any], plain_data(scope, "scope"))
