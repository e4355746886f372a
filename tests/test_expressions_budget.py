"""Expressions under a budget: the worst expressions that fit in the length limit fail fast, with a
message naming where and saying what to do, without allocating what they ask for.

Each worst case here took minutes of CPU or gigabytes of memory before the budget (see the
security finding); now each fails well within a second.
"""

from __future__ import annotations

import gc
import json
import re
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from latchflow.flows.budget import Budget
from latchflow.flows.expressions import (
    MAX_EXPRESSION_LENGTH,
    MAX_VALUE_SIZE,
    TIME_BUDGET,
    build_scope,
    evaluate,
    render,
)
from latchflow.flows.values import MAX_BUILT, MAX_FUNCTION_STRING, show
from latchflow.plugin.errors import ExpressionError

MEGA = "x" * 1_000_000  # shared, never copied: the scope below costs almost nothing
SCOPE = build_scope(
    trigger={
        "x": "x",
        "big": [MEGA] * 5,  # 5,000,006 JSON units, more than one value may be
        "three": [MEGA] * 3,  # 3,000,004 units: fits, but not many times over
        "wide": {f"{MEGA}{i}": i for i in range(5)},  # five keys of a million characters
        "pair": {"a": [MEGA] * 3, "b": [MEGA] * 3},
        "items": [{"id": i, "name": f"item {i}"} for i in range(1_000)],
    },
    now="2026-03-01T12:00:00Z",
)
WHERE = "$.steps[0].input"


def tree(levels: int, leaf: str = "trigger.x") -> str:
    """A value doubling ``levels`` times: 2**levels leaves, and tiny in memory (shared)."""
    return leaf + " | [@, @]" * levels


def flat(levels: int, leaf: str = "trigger.x") -> str:
    """A flat array of 2**levels items."""
    return leaf + " | [@, @][]" * levels


def repeat(item: str, times: int) -> str:
    return "[" + ", ".join([item] * times) + "]"


def fail(template: Any, scope: dict[str, Any] = SCOPE, **options: Any) -> tuple[str, float]:
    """Render at WHERE: the ExpressionError's message, and the seconds it took to fail."""
    start = time.perf_counter()
    with pytest.raises(ExpressionError) as info:
        render(template, scope, WHERE, **options)
    return str(info.value), time.perf_counter() - start


@contextmanager
def peak_memory() -> Iterator[Callable[[], int]]:
    """The most memory Python held at once inside the block, in bytes."""
    tracemalloc.start()
    try:
        yield lambda: tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# --- (a) CPU: expressions that ran for minutes stop at the time budget ------------------------

CPU_HEAVY = {
    # 48 walks of all 2**20 leaves of a doubled value, each returning a single number
    "nested projections": tree(20) + " | " + repeat("length(@" + "[*]" * 20 + ")", 48),
    # 150 sorts of a generated array of 2**19 strings, each calling &@ per item
    "repeated sort_by": flat(19) + " | " + repeat("length(sort_by(@, &@))", 150),
    # 120 map chains over the same array
    "map chains": flat(19) + " | " + repeat("length(map(&length(@), @))", 120),
    # 100 joins of a generated array, each writing every item as text first
    "join of generated arrays": flat(17) + " | " + repeat("length(join(',', map(&@, @)))", 100),
    # 60 comparisons of two equal but distinct values of 2**20 leaves each
    "comparisons of large values": f"[{tree(20)}, {tree(20)}] | " + repeat("@[0] == @[1]", 60),
}


@pytest.mark.parametrize("expression", CPU_HEAVY.values(), ids=CPU_HEAVY.keys())
def test_cpu_heavy_expressions_stop_at_the_time_budget(expression: str) -> None:
    assert len(expression) <= MAX_EXPRESSION_LENGTH
    message, seconds = fail({"pins": ["ok", "{{ " + expression + " }}"]})
    assert message.startswith(
        f"{WHERE}.pins[1]: the expression took longer than {TIME_BUDGET * 1000:g} ms, the time"
        " the expressions of one step may take together; simplify it, or move the work to a step"
        " (in {{ "
    )
    assert seconds < 1.0


def test_the_time_budget_is_shared_by_the_expressions_of_one_render() -> None:
    one = flat(12) + " | length(sort_by(@, &@))"  # about 4,000 items: quick on its own
    render({"a": "{{ " + one + " }}"}, SCOPE)
    message, seconds = fail({f"f{i}": "{{ " + one + " }}" for i in range(400)})
    assert re.match(rf"^{re.escape(WHERE)}\.f\d+: the expression took longer than", message)
    assert seconds < 1.0


def test_the_time_budget_can_be_set_per_render_and_evaluate() -> None:
    busy = "{{ length(map(&to_string(@), trigger.items)) }}"  # some milliseconds of work
    assert render({"n": busy}, SCOPE) == {"n": 1_000}
    message, _ = fail({"n": busy}, time_budget=0)
    assert message.startswith(f"{WHERE}.n: the expression took longer than 0 ms")
    message, _ = fail({"n": "all: {{ trigger.three }}"}, time_budget=0)  # while writing the text
    assert message.startswith(f"{WHERE}.n: the expression took longer than 0 ms")
    assert message.endswith("(in {{ trigger.three }})")
    with pytest.raises(ExpressionError, match=r"took longer than 0 ms.*\(in \{\{ length"):
        evaluate(busy, SCOPE, time_budget=0)
    with pytest.raises(ExpressionError, match="took longer than"):
        evaluate(CPU_HEAVY["nested projections"], SCOPE)


# --- (b) size caps: refused before the large value is allocated -------------------------------

MEGA_TEXT = "'ab'" + " | join('', [@, @])" * 19  # a string of 2**20 characters, built in steps

SIZE_CAPS = {
    # 400 copies of a string of a million characters: 400 MB before the check
    "concat": (
        MEGA_TEXT + " | concat(" + ", ".join(["@"] * 400) + ")",
        f"concat(): the result is longer than {MAX_FUNCTION_STRING} characters",
    ),
    # a 64K separator between 16K empty strings (each array tiny): 1 GB before the check
    "join": (
        "{s: 'ab'" + " | join('', [@, @])" * 15 + ", l: " + flat(14, "''") + "} | join(s, l)",
        f"join(): the result would be too large (more than {MAX_VALUE_SIZE} JSON characters)",
    ),
    "format": (
        MEGA_TEXT + " | format('" + "{0}" * 300 + "', [@])",
        f"format(): the result is longer than {MAX_FUNCTION_STRING} characters",
    ),
    "format of a large value": (
        "format('{0}', [" + tree(20) + "])",
        f"format(): the result is longer than {MAX_FUNCTION_STRING} characters",
    ),
    # a million accented letters, each written as a six-character escape
    "to_string": (
        "to_string(['\u00e9\u00e9'" + " | join('', [@, @])" * 19 + "])",
        f"to_string(): the result would be too large (more than {MAX_VALUE_SIZE} JSON characters)",
    ),
}


@pytest.mark.parametrize(("expression", "expected"), SIZE_CAPS.values(), ids=SIZE_CAPS.keys())
def test_functions_refuse_large_results_quickly(expression: str, expected: str) -> None:
    assert len(expression) <= MAX_EXPRESSION_LENGTH
    message, seconds = fail({"text": "{{ " + expression + " }}"})
    assert message.startswith(f"{WHERE}.text: {expected} (in {{{{ ")
    assert seconds < 1.0


SMALL_SCOPE = build_scope(  # quick to copy, even when every allocation is traced
    trigger={
        "three": [MEGA] * 3,
        "big": [MEGA] * 5,
        "pair": {"a": [MEGA] * 3, "b": [MEGA] * 3},
        "separator": "ab" * 131_072,
        "empties": [""] * 4_096,
    },
)


@pytest.mark.parametrize(
    ("expression", "would_take"),
    [
        ("trigger.three[0] | concat(" + ", ".join(["@"] * 400) + ")", "400 MB"),
        ("join(trigger.separator, trigger.empties)", "1 GB"),
        ("format('" + "{0}" * 300 + "', trigger.three)", "300 MB"),
        ("format('{a}', trigger.pair)", "3 MB"),
        ("to_string(trigger.big)", "5 MB"),
    ],
)
def test_functions_refuse_large_results_before_allocating_them(
    expression: str, would_take: str
) -> None:
    with peak_memory() as peak:
        message, _ = fail({"text": "{{ " + expression + " }}"}, SMALL_SCOPE)
    assert "the result is longer than" in message or "the result would be too large" in message
    assert peak() < 1024 * 1024, f"{expression} took {peak()} bytes, not {would_take}"


def test_interpolation_writes_no_more_than_the_document_may_hold() -> None:
    message, seconds = fail({"note": "all: {{ " + tree(20) + " }}"}, time_budget=60)
    assert message == (
        f"{WHERE}.note: the rendered document is larger than {MAX_VALUE_SIZE} JSON characters"
    )
    assert seconds < 1.0


@pytest.mark.parametrize(
    ("expression", "function"),
    [
        ("sort(trigger.big)", "sort"),
        ("sort_by(trigger.big, &@)", "sort_by"),
        ("reverse(trigger.big)", "reverse"),
        ("map(&@, trigger.big)", "map"),
        ("join('', trigger.big)", "join"),
        ("keys(trigger.wide)", "keys"),
        ("values(trigger.pair)", "values"),
        ("merge({a: trigger.three}, {b: trigger.three})", "merge"),
        ("to_array(trigger.wide)", "to_array"),
        ("to_string(trigger.big)", "to_string"),
    ],
)
def test_builtins_refuse_results_larger_than_a_value_may_be(expression: str, function: str) -> None:
    message, seconds = fail({"v": "{{ " + expression + " }}"})
    assert message == (
        f"{WHERE}.v: {function}(): the result would be too large (more than {MAX_VALUE_SIZE}"
        f" JSON characters) (in {{{{ {expression} }}}})"
    )
    assert seconds < 1.0


def test_large_scope_values_can_still_be_read() -> None:
    rendered = render(
        {
            "three": "{{ trigger.three }}",
            "n": "{{ length(trigger.big) }}",
            "ids": "{{ trigger.items[?id < `3`].name }}",
            "merged": "{{ merge({a: trigger.three}, {a: `1`}) }}",
        },
        SCOPE,
    )
    assert len(rendered["three"]) == 3 and rendered["n"] == 5
    assert rendered["ids"] == ["item 0", "item 1", "item 2"] and rendered["merged"] == {"a": 1}


# --- (c) memory: what one render builds is bounded in all, and nothing is kept -----------------


def test_what_one_evaluation_builds_is_bounded_in_all() -> None:
    # Each sort builds 3,000,004 JSON units and keeps none: only the total stops it.
    each = "length(sort(trigger.three))"
    assert render({"a": "{{ " + repeat(each, 10) + " }}"}, SCOPE) == {"a": [3] * 10}
    message, seconds = fail({"a": "{{ " + repeat(each, 12) + " }}"}, time_budget=60)
    assert message.startswith(
        f"{WHERE}.a: the expressions built more than {MAX_BUILT} JSON characters in all, the most"
        " the expressions of one step may build together; simplify the expression, or move the"
        " work to a step (in {{ "
    )
    assert seconds < 1.0
    # The total is the render's, shared by all its expressions.
    message, _ = fail({f"f{i}": "{{ " + each + " }}" for i in range(12)}, time_budget=60)
    assert message.startswith(f"{WHERE}.f11: the expressions built more than {MAX_BUILT}")


def test_flattening_a_doubled_value_stops_at_the_total() -> None:
    expression = tree(21) + " | length(@" + "[]" * 21 + ")"  # 2**21 items in the end
    message, seconds = fail({"n": "{{ " + expression + " }}"}, time_budget=60)
    assert "the expressions built more than" in message
    assert seconds < 1.0


def test_intermediate_values_are_not_kept_alive() -> None:
    # 40 copies of an array of 16,384 items (128 KB each), each dropped at once: keeping them
    # (to remember their sizes) held 5 MB at the end, dropping them holds one.
    expression = flat(14, "'x'") + " | " + repeat("length(reverse(@))", 40)
    with peak_memory() as peak:
        rendered = render({"n": "{{ " + expression + " }}"}, SMALL_SCOPE, time_budget=60)
    assert rendered == {"n": [16_384] * 40}
    assert peak() < 2 * 1024 * 1024


# --- writing JSON within a limit --------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(json_values, st.booleans())
def test_json_text_is_exact_up_to_its_limit(value: Any, ascii: bool) -> None:
    budget = Budget(seconds=60)
    expected = json.dumps(value, separators=(",", ":"), ensure_ascii=ascii)
    assert budget.text(value, len(expected), ascii=ascii) == expected
    assert budget.text(value, len(expected) - 1, ascii=ascii) is None


def test_error_messages_show_only_the_beginning_of_large_values() -> None:
    start = time.perf_counter()
    shown = show({"a": SCOPE["trigger"]["big"]})
    assert shown == '{"a":["' + "x" * 70 + "..."
    assert time.perf_counter() - start < 1.0
    message, _ = fail({"v": "{{ abs(trigger.big) }}"})
    assert message.startswith(f'{WHERE}.v: abs(): invalid type for value ["xxx')
    assert len(message) < 300


def test_a_garbage_collection_meanwhile_does_not_count_against_the_time() -> None:
    heap = [{"n": n} for n in range(1_000_000)]  # a collection walks all of these
    budget = Budget(seconds=0.005)
    started = time.thread_time()
    gc.collect()
    assert time.thread_time() - started > 0.005, "the collection was too quick to tell"
    budget.look()  # the evaluation itself used next to nothing
    del heap
