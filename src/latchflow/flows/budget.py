"""The budget of one evaluation: how much its expressions may build, and for how long they may run.

One ``Budget`` serves one evaluation: one ``render`` (all the expressions of a step's input, of its
``if``, or of a flow's output) or one ``evaluate``. It holds the evaluation to three bounds.

- Each value an expression builds (a projection, multi-select, slice or flattening, a function's
  result) is measured in JSON units and refused above the per-value limit. Functions measure what
  they would build before building it (``size``, ``text``), so no single call allocates more.
- The sizes of all the values built are added up, and the evaluation fails once the sum passes the
  total limit. Every value is built from parts that were measured when they were built, or from
  the scope, so this also bounds the memory the evaluation can hold at once and the work it can do,
  the measuring included.
- The evaluation may use so much of its thread's CPU time. The interpreter looks at the clock every
  few nodes and after every function call and comparison, and the long loops here look too. A cheap
  wall clock is read first and the thread's CPU clock only once the wall clock is past the
  deadline, so time spent waiting for a CPU does not count; nor does a garbage collection that
  happens to run meanwhile (it walks the whole process's heap, not the expression's values).

Sizes are measured by walking the value. A part shared within one value is measured once (by its
identity, during that walk only, while it is certainly alive) and counted once per reference, as
JSON would print it. Nothing is remembered from one walk to the next, so the budget keeps no value
alive.

``text`` writes JSON piece by piece: parts that surely fit are written at once, larger ones are
opened and written in batches, and writing stops as soon as the text would pass its limit.
"""

from __future__ import annotations

import gc
import json
import threading
import time
from collections.abc import Callable
from functools import partial
from math import isfinite
from typing import Any, TypeVar

from latchflow.flows.values import MAX_BUILT, MAX_DEPTH, MAX_VALUE_SIZE, TIME_BUDGET
from latchflow.plugin.errors import ExpressionError

__all__ = ["Budget"]

#: Integers beyond this count about their digits instead of one unit.
_BIG = 10**15
#: Most JSON characters one JSON unit prints as, punctuation included (a float such as
#: -2.2250738585072014e-308 prints as 24).
_EXPANSION = 32
#: Most JSON characters one character of a string prints as (two \uXXXX escapes).
_ESCAPED = 12
#: Container slots walked or written between two looks at the clock.
_LOOK_EVERY = 1 << 14
#: JSON characters written that count as much time as one slot walked.
_CHARACTERS_PER_SLOT = 8

_CONTAINERS = (list, dict)
_FINE = object()  # the "first item that is not JSON data" of a value that has none

#: JSON as interpolation writes it, and as JMESPath's to_string writes it (ASCII, NaN allowed).
_TEXT_JSON = partial(json.dumps, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_ASCII_JSON = partial(json.dumps, separators=(",", ":"))

_T = TypeVar("_T")
_Memo = dict[int, tuple[int, int]]  # id of a container -> (size, height), during one walk or write


def _units(item: Any) -> int:
    """The size of anything but an array or object."""
    kind = type(item)
    if kind is str:
        return len(item) or 1
    if kind is int and not -_BIG < item < _BIG:
        return int(item.bit_length() * 3 // 10)  # never more than its digits
    return 1


_STRINGS = frozenset({str})
_NUMBERS = frozenset({int, float})
#: Arrays at least this long are first tried as arrays of plain strings or plain numbers.
_PLAIN_CHECK = 32


def _plain_array_size(node: Any) -> int | None:
    """The size of an array of strings only, or of numbers only (finite, no very large integer),
    added up at C speed; None for any other array."""
    if type(node) is not list:
        return None
    kinds = set(map(type, node))
    if kinds == _STRINGS:
        return 1 + sum(map(len, node)) + node.count("")
    if kinds <= _NUMBERS and min(node) > -_BIG and max(node) < _BIG and all(map(isfinite, node)):
        return 1 + len(node)
    return None


def _is_json_scalar(item: Any) -> bool:
    kind = type(item)
    return item is None or kind in (str, int, bool) or (kind is float and isfinite(item))


class _Piece(str):
    """Text that ``Budget.text`` writes as it is (punctuation)."""

    __slots__ = ()


class _Cursor:
    """An array, object or long string that ``Budget.text`` is writing in batches."""

    __slots__ = ("closing", "entries", "index", "kind", "opening")

    def __init__(self, node: Any) -> None:
        self.kind = type(node)
        self.index = 0
        self.entries: Any = list(node.items()) if self.kind is dict else node
        brackets = "{}" if self.kind is dict else "[]" if self.kind is list else '""'
        self.opening, self.closing = brackets[0], brackets[1]


class TimeSpent(ExpressionError):
    """The evaluation used its CPU time."""


_gc = threading.local()
"""Per thread: CPU seconds spent in garbage collections (``seconds``) and the start of the one
running (``started``)."""


def _collecting() -> float:
    return float(getattr(_gc, "seconds", 0.0))


def _count_collections(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc.started = time.thread_time()
    elif (started := getattr(_gc, "started", None)) is not None:
        _gc.seconds = _collecting() + time.thread_time() - started
        _gc.started = None


gc.callbacks.append(_count_collections)


class Budget:
    """What one evaluation may still build and how long it may still run (see the module)."""

    def __init__(
        self, *, seconds: float = TIME_BUDGET, limit: int = MAX_VALUE_SIZE, total: int = MAX_BUILT
    ) -> None:
        self.limit = limit
        self.total = total
        self.seconds = seconds
        self.built = 0
        self._measured: tuple[Any, int] | None = None  # a function's result and its size
        self._work = 0
        self._next_look = _LOOK_EVERY
        self._wall_deadline = time.perf_counter() + seconds
        self._cpu_deadline = time.thread_time() + seconds
        self._collecting = _collecting()

    # Time -------------------------------------------------------------------------------------

    def look(self) -> None:
        """Fail once the evaluation has used its CPU time."""
        if time.perf_counter() <= self._wall_deadline:
            return
        collecting = _collecting() - self._collecting
        if time.thread_time() - collecting > self._cpu_deadline:
            raise TimeSpent(
                f"the expression took longer than {self.seconds * 1000:g} ms, the time the"
                " expressions of one step may take together; simplify it, or move the work"
                " to a step"
            )

    def _spend(self, slots: int) -> None:
        self._work += slots
        if self._work > self._next_look:
            self._next_look = self._work + _LOOK_EVERY
            self.look()

    # Sizes ------------------------------------------------------------------------------------

    def size(self, value: Any, cap: int | None = None) -> int:
        """``value``'s size in JSON units, or ``cap + 1`` (the per-value limit + 1 by default)
        as soon as it is clear the value is larger than ``cap``."""
        return self._walk(value, self.limit if cap is None else cap, {})[0]

    def refuse(self, function: str, size: int) -> None:
        """Refuse a function's result of ``size`` units, before it is built, when too large."""
        if size > self.limit:
            raise ExpressionError(
                f"{function}(): the result would be too large (more than {self.limit} JSON"
                " characters)"
            )

    def measured(self, result: _T, size: int) -> _T:
        """``result``, a function's, whose ``size`` it worked out before building it (so that
        ``check`` need not measure it again)."""
        self._measured = (result, size)
        return result

    def check(self, value: Any) -> None:
        """Account for a value just built: within the per-value limit and, added to all values
        built before it, within the total."""
        known, self._measured = self._measured, None
        size = known[1] if known is not None and known[0] is value else self.size(value)
        if size > self.limit:
            raise self._too_large()
        self.built += size
        if self.built > self.total:
            raise ExpressionError(
                f"the expressions built more than {self.total} JSON characters in all, the most"
                " the expressions of one step may build together; simplify the expression, or"
                " move the work to a step"
            )

    def check_result(self, value: Any) -> int:
        """The size of an expression's result, after checking that it is JSON data within the
        per-value limit, nested at most ``MAX_DEPTH`` levels, with finite numbers only."""
        size, height, flaw = self._walk(value, self.limit, {})
        if size > self.limit:
            raise self._too_large()
        if height > MAX_DEPTH:
            raise ExpressionError(f"the result is nested deeper than {MAX_DEPTH} levels")
        if flaw is not _FINE:
            if isinstance(flaw, float):
                raise ExpressionError(f"the result {flaw} is not a finite number")
            kind = "an &expression" if type(flaw).__name__ == "_Expression" else type(flaw).__name__
            raise ExpressionError(f"the result contains {kind}, which is not JSON data")
        return size

    def _too_large(self) -> ExpressionError:
        return ExpressionError(
            f"the value built is too large (more than {self.limit} JSON characters)"
        )

    def _walk(self, value: Any, cap: int, memo: _Memo) -> tuple[int, int, Any]:
        """(size, nesting height, first item that is not JSON data or ``_FINE``); the size is
        ``cap + 1`` as soon as it passes ``cap``. Iterative, post-order, shared parts once."""
        if type(value) not in _CONTAINERS:
            return _units(value), 0, (_FINE if _is_json_scalar(value) else value)
        flaw: Any = _FINE
        slots = 0  # children of the distinct containers reached: never more than the size
        stack: list[tuple[Any, bool]] = [(value, False)]
        while stack:
            node, expanded = stack.pop()
            if id(node) in memo:
                continue
            children = node.values() if type(node) is dict else node
            if not expanded:
                slots += len(node)
                if slots > cap:
                    return cap + 1, 0, flaw
                self._spend(len(node))
                plain = _plain_array_size(node) if len(node) >= _PLAIN_CHECK else None
                if plain is not None:
                    if plain > cap:
                        return cap + 1, 0, flaw
                    memo[id(node)] = (plain, 1)
                    continue
                inner = [c for c in children if type(c) in _CONTAINERS and id(c) not in memo]
                if inner:  # measure them first, then this node
                    stack.append((node, True))
                    stack.extend((c, False) for c in inner)
                    continue
            size = 1 + (sum(map(len, node)) if type(node) is dict else 0)
            height = 0
            for child in children:  # _units and _is_json_scalar, inlined: this loop is hot
                kind = type(child)
                if kind is str:
                    size += len(child) or 1
                elif kind is list or kind is dict:
                    child_size, child_height = memo[id(child)]
                    size += child_size
                    if child_height > height:
                        height = child_height
                elif kind is int:
                    size += 1 if -_BIG < child < _BIG else _units(child)
                else:
                    size += 1
                    if flaw is _FINE and not (
                        child is None or kind is bool or (kind is float and isfinite(child))
                    ):
                        flaw = child
            if size > cap:
                return cap + 1, 0, flaw
            memo[id(node)] = (size, height + 1)
        size, height = memo[id(value)]
        return size, height, flaw

    # Text -------------------------------------------------------------------------------------

    def as_text(self, value: Any, limit: int) -> str | None:
        """How ``value`` appears inside a string (null empty, strings as they are, the rest as
        compact JSON), or None when that is longer than ``limit`` characters."""
        if value is None:
            return ""
        if isinstance(value, str):
            return value if len(value) <= limit else None
        return self.text(value, limit)

    def text(self, value: Any, limit: int, *, ascii: bool = False) -> str | None:
        """``value`` as compact JSON, or None as soon as it is clear the text is longer than
        ``limit`` characters; nothing longer is ever built. ``ascii`` writes it as JMESPath's
        ``to_string`` does (non-ASCII characters escaped)."""
        dumps = _ASCII_JSON if ascii else _TEXT_JSON
        memo: _Memo = {}
        parts: list[str] = []
        used = 0
        stack: list[Any] = [value]
        while stack:
            item = stack.pop()
            room = limit - used
            if type(item) is _Piece:
                piece: str = item
            elif type(item) is _Cursor:
                piece = self._next_piece(item, room, memo, dumps, stack)
            else:
                units = self._walk(item, room, memo)[0]
                if units > room:
                    return None
                if units * _EXPANSION <= room or type(item) not in (list, dict, str):
                    piece = dumps(item)
                else:  # too large to be sure: open it
                    cursor = _Cursor(item)
                    stack.append(cursor)
                    piece = cursor.opening
            used += len(piece)
            if used > limit:
                return None
            parts.append(piece)
            self._spend(len(piece) // _CHARACTERS_PER_SLOT)
        return "".join(parts)

    def _next_piece(
        self,
        cursor: _Cursor,
        room: int,
        memo: _Memo,
        dumps: Callable[[Any], str],
        stack: list[Any],
    ) -> str:
        """The next piece of what ``cursor`` is writing: as many entries as surely fit in
        ``room``, or, when the next entry alone may not, nothing (that entry is pushed to be
        opened in its turn)."""
        entries, start = cursor.entries, cursor.index
        if start >= len(entries):
            return cursor.closing
        stack.append(cursor)
        if cursor.kind is str:
            cursor.index = start + max(1, room // _ESCAPED)
            return dumps(entries[start : cursor.index])[1:-1]
        comma = "," if start else ""
        fits = room // _EXPANSION
        end, units = start, 0
        while end < len(entries):
            entry = entries[end]
            if cursor.kind is dict:
                units += len(entry[0]) + self._walk(entry[1], fits, memo)[0]
            else:
                units += self._walk(entry, fits, memo)[0]
            if units > fits:
                break
            end += 1
        self._spend(end - start + 1)
        if end > start:
            cursor.index = end
            batch = dict(entries[start:end]) if cursor.kind is dict else entries[start:end]
            return comma + dumps(batch)[1:-1]
        cursor.index = start + 1
        if cursor.kind is dict:
            key, item = entries[start]
            stack.extend((item, _Piece(":"), key))
        else:
            stack.append(entries[start])
        return comma
