"""Fuzzing the expression language: whatever the text and the data, the only failure is an
ExpressionError and every result is JSON."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latchflow.flows.expressions import check, evaluate, referenced_steps, render
from latchflow.plugin.errors import ErrorDetail, ExpressionError

# 4,000 examples in all, most of them grammar-built; about 20 s on two cores.
SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large]
FUZZ = settings(max_examples=2000, deadline=None, suppress_health_check=SUPPRESS)
FUZZ_LIGHT = settings(max_examples=1000, deadline=None, suppress_health_check=SUPPRESS)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**15), max_value=10**15)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(
        [
            "2026-03-01T15:00:00+01:00",
            "1772366400",
            "+49 30 1234567",
            "PT1H",
            "-P1D",
            "Europe/Berlin",
        ]
    )
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["a", "b", "id", "x", "steps", "trigger"]), children, max_size=4
        )
    ),
    max_leaves=8,
)

scopes = st.fixed_dictionaries(
    {
        "trigger": json_values,
        "steps": st.dictionaries(st.sampled_from(["pin", "a", "b"]), json_values, max_size=3),
        "flow": st.just({"id": "f", "name": "F", "version": 1}),
        "now": st.sampled_from(["2026-03-01T12:00:00Z", "2026-10-25T00:30:00+02:00"]),
    }
)

FUNCTIONS = [
    "unix", "iso", "add_time", "format_time", "e164", "format", "concat", "default", "random_pin",
    "join", "length", "to_string", "to_number", "sort", "sort_by", "max_by", "keys", "values",
    "merge", "abs", "ceil", "floor", "sum", "avg", "contains", "reverse", "map", "not_null",
    "to_array", "type", "starts_with", "nosuch",
]  # fmt: skip
LITERALS = [
    "'PT1H'", "'-PT30M'", "'P1D'", "'P1M'", "'%Y-%m-%d %H:%M'", "'%c'", "'Europe/Berlin'",
    "'Mars/X'", "'DE'", "'{a} {0}'", "'{a.__class__}'", "`6`", "`4`", "`99`", "`-1`", "`1.5`",
    "`1e308`", "`null`", "`true`", "`[1,2]`", "`{\"a\":1}`", "'x'", "''", "@", "now", "`\"2026\"`",
]  # fmt: skip
PATHS = [
    "trigger", "trigger.a", "trigger.x[0]", "trigger[*].a", "trigger.*", "steps.pin", "steps.a.b",
    "flow.id", "flow", "now", "trigger[?a]", "trigger[-1]", "trigger[::2]", "trigger[]", "@",
]  # fmt: skip


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> str:
    """JMESPath-ish expressions built from the scope's paths, literals, functions and operators."""
    choice = draw(st.integers(min_value=0, max_value=9 if depth < 3 else 1))
    if choice == 0:
        return draw(st.sampled_from(PATHS))
    if choice == 1:
        return draw(st.sampled_from(LITERALS))
    if choice <= 4:
        name = draw(st.sampled_from(FUNCTIONS))
        args = draw(st.lists(expressions(depth + 1), max_size=3))
        return f"{name}({', '.join(args)})"
    if choice == 5:
        operator = draw(st.sampled_from(["==", "!=", "<", ">=", "&&", "||", "|"]))
        return f"{draw(expressions(depth + 1))} {operator} {draw(expressions(depth + 1))}"
    if choice == 6:
        return f"[{draw(expressions(depth + 1))}, {draw(expressions(depth + 1))}]"
    if choice == 7:
        return f"{{k: {draw(expressions(depth + 1))}}}"
    if choice == 8:
        return f"!{draw(expressions(depth + 1))}"
    return (
        f"&{draw(expressions(depth + 1))}"
        if draw(st.booleans())
        else f"({draw(expressions(depth + 1))})"
    )


templates = st.recursive(
    st.one_of(
        expressions().map(lambda e: "{{ " + e + " }}"),
        st.tuples(st.text(max_size=5), expressions(), st.text(max_size=5)).map(
            lambda t: f"{t[0]}{{{{ {t[1]} }}}}{t[2]}"
        ),
        st.text(alphabet="{}'\"`ab .|@[]*", max_size=20),
        st.integers(),
        st.none(),
    ),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["unitId", "x", "{{ k }}"]), children, max_size=3)
    ),
    max_leaves=6,
)


def assert_json(value: Any) -> None:
    assert json.loads(json.dumps(value, allow_nan=False)) == value


@FUZZ_LIGHT
@given(expression=st.text(max_size=40), scope=scopes)
def test_random_text_only_raises_expression_errors(expression: str, scope: dict[str, Any]) -> None:
    with contextlib.suppress(ExpressionError):
        assert_json(evaluate(expression, scope))
    with contextlib.suppress(ExpressionError):
        assert_json(render(expression, scope))
    assert all(isinstance(p, ErrorDetail) for p in check(expression))
    assert all(isinstance(s, str) for s in referenced_steps(expression))


@FUZZ
@given(expression=expressions(), scope=scopes)
def test_generated_expressions_only_raise_expression_errors(
    expression: str, scope: dict[str, Any]
) -> None:
    try:
        assert_json(evaluate(expression, scope))
    except ExpressionError as exc:
        assert str(exc)
    problems = check("{{ " + expression + " }}")
    if not problems:  # what check() accepts parses: evaluation may fail only on data
        referenced_steps("{{ " + expression + " }}")


@FUZZ_LIGHT
@given(template=templates, scope=scopes)
def test_rendered_templates_are_json_or_an_error_with_a_path(
    template: Any, scope: dict[str, Any]
) -> None:
    try:
        result = render(template, scope, path="$.input")
    except ExpressionError as exc:
        assert str(exc).startswith("$.input")
    else:
        assert_json(result)
