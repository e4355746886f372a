"""What expressions work on and produce: JSON data, its limits, and how it is shown.

Everything that enters the scope is copied to plain JSON types (``plain_data``), every value an
evaluation builds is measured against a size ``Budget``, and every result is checked to be finite
JSON (``check_result``). The small helpers here turn values into the text that interpolation and
error messages show.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any, cast

from latchflow.plugin.errors import ExpressionError

__all__ = [
    "MAX_DEPTH",
    "MAX_EXPRESSION_LENGTH",
    "MAX_FUNCTION_STRING",
    "MAX_VALUE_SIZE",
    "PIN_DIGITS",
    "Budget",
    "as_text",
    "check_result",
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
#: null/bool/number/array/object plus the length of every string and object key (about bytes).
MAX_VALUE_SIZE = 4 * 1024 * 1024
#: Longest string a library function (format, concat, format_time, ...) may return.
MAX_FUNCTION_STRING = 1024 * 1024
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
    """A value for an error message: JSON text, shortened."""
    try:
        text = _json_text(value)
    except (TypeError, ValueError):
        text = type(value).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
    """How a value appears inside a string: null is empty, strings as-is, the rest as JSON."""
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
# Data checks: what may enter and leave


class Budget:
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


def check_result(value: Any, budget: Budget) -> None:
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


def scope_data(scope: dict[str, Any]) -> dict[str, Any]:
    """The scope as plain JSON data, the only form an expression ever sees."""
    if not isinstance(scope, dict):
        raise ExpressionError(f"the scope must be an object, got {type(scope).__name__}")
    return cast(dict[str, Any], plain_data(scope, "scope"))
