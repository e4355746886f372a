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
a function; every value built, everything one render builds and every rendered template is bounded
in size, and one render has a CPU time budget; every failure (syntax, types, bad arguments,
exhausted limits) is an ``ExpressionError`` whose message names the JSON path inside the template
and the expression.

This module parses, splits templates, renders and checks; ``latchflow.flows.interpreter`` evaluates
under a ``latchflow.flows.budget.Budget``, ``latchflow.flows.values`` holds the limits and the data
checks, ``latchflow.flows.functions`` the function library.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import multiprocessing
import os
import warnings
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from typing import Any, cast

import jmespath
import jmespath.exceptions
from jmespath.lexer import Lexer

from latchflow.flows.budget import Budget, TimeSpent
from latchflow.flows.functions import FUNCTION_NAMES, check_call
from latchflow.flows.interpreter import Interpreter, one_line
from latchflow.flows.values import (
    MAX_DEPTH,
    MAX_EXPRESSION_LENGTH,
    MAX_VALUE_SIZE,
    ON_LOOP_SECONDS,
    TIME_BUDGET,
    child_path,
    iso_text,
    scope_data,
    show,
    show_expression,
)
from latchflow.plugin.errors import ErrorDetail, ExpressionError

__all__ = [
    "FUNCTION_NAMES",
    "MAX_EXPRESSION_LENGTH",
    "MAX_VALUE_SIZE",
    "TIME_BUDGET",
    "build_scope",
    "check",
    "evaluate",
    "is_truthy",
    "referenced_steps",
    "render",
    "render_aside",
]

_OPEN = "{{"
_CLOSE = "}}"


# ---------------------------------------------------------------------------------------------
# Parsing


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
    return one_line(str(exc))


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
        raise ExpressionError(f"syntax error: {one_line(str(exc)) or type(exc).__name__}") from None
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
    for node in _nodes(tree):
        if node["type"] == "function_expression":
            check_call(node["value"], len(node["children"]))


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


def evaluate(expression: str, scope: dict[str, Any], *, time_budget: float = TIME_BUDGET) -> Any:
    """The JSON value of one expression over ``scope``, within one evaluation's budget.

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
            raise ExpressionError(f"{exc} (in {show(expression, 120)})") from None
        if single is None:
            raise ExpressionError(
                f"{show(expression, 120)} is not a single expression; use render() for templates"
            )
        source = single
    data = scope_data(scope)
    try:
        return Interpreter(Budget(seconds=time_budget)).run(_parse(source), data)[0]
    except ExpressionError as exc:  # the same kind, named where
        raise type(exc)(f"{exc} (in {show_expression(source)})") from None


def render(
    template: Any, scope: dict[str, Any], path: str = "$", *, time_budget: float = TIME_BUDGET
) -> Any:
    """``template`` with every ``{{ ... }}`` evaluated over ``scope``.

    Dicts and lists are walked (keys are kept as written); a string that is exactly one expression
    becomes the expression's JSON value; other strings interpolate (null is empty, numbers and
    booleans as JSON, objects and arrays as compact JSON). All the expressions share one budget:
    ``time_budget`` CPU seconds and what they may build together. Errors are ExpressionError
    messages starting with the JSON path of the failing string, e.g. ``$.input.unitId: ...``.
    """
    data = scope_data(scope)
    return _Renderer(data, Budget(seconds=time_budget)).walk(template, path, 1)


async def render_aside(template: Any, scope: dict[str, Any], path: str = "$") -> Any:
    """``render``, off the event loop when it takes long: it starts on the loop with
    ``ON_LOOP_SECONDS``; one that needs more starts again in a worker process with the whole
    budget, so that the loop (and the interpreter lock) go on serving other runs meanwhile."""
    try:
        return render(template, scope, path, time_budget=ON_LOOP_SECONDS)
    except TimeSpent:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_aside(), render, template, scope, path)


@functools.cache
def _aside() -> ProcessPoolExecutor:
    """The worker processes, started on first use, at a lower priority than the event loop's;
    "spawn" because the caller's threads and event loop do not survive a fork."""
    return ProcessPoolExecutor(
        max_workers=2,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=os.nice,
        initargs=(10,),
    )


class _Renderer:
    """One render: the scope data, the budget its evaluations share, and the size rendered so far."""

    def __init__(self, data: dict[str, Any], budget: Budget) -> None:
        self.data = data
        self.interpreter = Interpreter(budget)
        self.budget = budget
        self.total = 0

    def account(self, size: int, where: str) -> None:
        self.total += size
        if self.total > MAX_VALUE_SIZE:
            raise self.too_large(where)

    def too_large(self, where: str) -> ExpressionError:
        return ExpressionError(
            f"{where}: the rendered document is larger than {MAX_VALUE_SIZE} JSON characters"
        )

    def run(self, expression: str, where: str, *, text: bool = False) -> tuple[Any, int]:
        """The value of ``expression`` and its size or, with ``text``, the text it interpolates
        as and its length; errors name ``where`` and the expression."""
        try:
            value, size = self.interpreter.run(_parse(expression), self.data)
            if not text:
                return value, size
            written = self.budget.as_text(value, MAX_VALUE_SIZE - self.total)
        except ExpressionError as exc:  # the same kind, named where
            raise type(exc)(f"{where}: {exc} (in {show_expression(expression)})") from None
        except (TypeError, ValueError) as exc:  # a huge integer cannot be printed
            raise ExpressionError(f"{where}: {exc} (in {show_expression(expression)})") from None
        if written is None:
            raise self.too_large(where)
        return written, len(written)

    def render_string(self, text: str, where: str) -> Any:
        try:
            pieces = _pieces(text)
        except ExpressionError as exc:
            raise ExpressionError(f"{where}: {exc}") from None
        single = _single(pieces)
        if single is not None:
            value, size = self.run(single, where)
            self.account(size, where)
            return value
        out: list[str] = []
        for is_expression, part in pieces:
            written, size = self.run(part, where, text=True) if is_expression else (part, len(part))
            self.account(size, where)
            out.append(written)
        return "".join(out)

    def walk(self, node: Any, where: str, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise ExpressionError(f"{where}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, str):
            return self.render_string(node, where) if _OPEN in node else node
        if isinstance(node, dict):
            result: dict[str, Any] = {}
            for key, value in node.items():
                if not isinstance(key, str):
                    raise ExpressionError(f"{where}: object key {key!r} is not a string")
                result[key] = self.walk(value, child_path(where, key), depth + 1)
            return result
        if isinstance(node, list | tuple):
            return [self.walk(item, child_path(where, i), depth + 1) for i, item in enumerate(node)]
        if node is None or isinstance(node, bool | int | float):
            return node
        raise ExpressionError(f"{where}: a {type(node).__name__} is not JSON data")


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
        "now": iso_text(moment.astimezone(UTC)) if isinstance(moment, datetime) else moment,
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
                (v, child_path(where, k), depth + 1)
                for k, v in reversed(list(node.items()))
                if isinstance(k, str)
            )
        elif isinstance(node, list | tuple):
            stack.extend(
                (v, child_path(where, i), depth + 1) for i, v in reversed(list(enumerate(node)))
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
                problems.append(ErrorDetail(where, f"{exc} (in {show_expression(part)})"))
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
