"""The flow expression language: templates, every library function, limits and references."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from latchflow.flows.expressions import (
    FUNCTION_NAMES,
    MAX_VALUE_SIZE,
    build_scope,
    check,
    evaluate,
    is_truthy,
    referenced_steps,
    render,
)
from latchflow.plugin.errors import ErrorDetail, ExpressionError

SCOPE = build_scope(
    trigger={
        "unitId": "unit-7",
        "guestName": "Ada Lovelace",
        "checkIn": "2026-03-28T15:00:00+01:00",
        "checkOut": "2026-03-30T11:00:00+02:00",
        "nights": 2,
        "price": 99.5,
        "vip": False,
        "phone": "030 1234567",
        "tags": ["a", "b"],
        "address": {"city": "Berlin", "zip": "10115"},
        "note": None,
        "empty": "",
    },
    steps={"pin": {"pinCode": "123456"}, "lock-2": {"ok": True}},
    flow={"id": "f1", "name": "Flow", "version": 3},
    now=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
)


def ev(expression: str, scope: dict[str, Any] = SCOPE) -> Any:
    return evaluate(expression, scope)


# --- templates: type keeping, interpolation, nesting -----------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ trigger.nights }}", 2),
        ("{{ trigger.price }}", 99.5),
        ("{{ trigger.vip }}", False),
        ("{{ trigger.note }}", None),
        ("{{ trigger.tags }}", ["a", "b"]),
        ("{{ trigger.address }}", {"city": "Berlin", "zip": "10115"}),
        ("  {{trigger.nights}}\n", 2),
        ("{{ {a: {b: trigger.nights}} }}", {"a": {"b": 2}}),
        ("{{ 'x}}y' }}", "x}}y"),
    ],
)
def test_a_field_that_is_one_expression_keeps_its_json_type(template: str, expected: Any) -> None:
    assert render(template, SCOPE) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Unit {{ trigger.unitId }}!", "Unit unit-7!"),
        ("{{ trigger.nights }} nights", "2 nights"),
        ("price={{ trigger.price }}", "price=99.5"),
        ("vip={{ trigger.vip }}", "vip=false"),
        ("note=[{{ trigger.note }}]", "note=[]"),
        ("tags={{ trigger.tags }}", 'tags=["a","b"]'),
        ("a={{ trigger.address }}", 'a={"city":"Berlin","zip":"10115"}'),
        ("{{ trigger.nights }}{{ trigger.nights }}", "22"),
        ("no expressions here", "no expressions here"),
        ("braces { } and }} alone", "braces { } and }} alone"),
    ],
)
def test_text_with_expressions_interpolates(template: str, expected: str) -> None:
    assert render(template, SCOPE) == expected


def test_render_walks_nested_documents_and_leaves_keys_and_other_values_alone() -> None:
    template = {
        "unitId": "{{ trigger.unitId }}",
        "{{ not a key expression }}": 1,
        "list": ["{{ trigger.nights }}", 5, None, True, {"deep": ["{{ flow.version }}"]}],
        "when": "{{ add_time(trigger.checkIn, '-PT1H') }}",
    }
    assert render(template, SCOPE) == {
        "unitId": "unit-7",
        "{{ not a key expression }}": 1,
        "list": [2, 5, None, True, {"deep": [3]}],
        "when": "2026-03-28T14:00:00+01:00",
    }
    assert template["unitId"] == "{{ trigger.unitId }}"  # the template itself is not changed


def test_scope_has_trigger_steps_flow_and_now() -> None:
    assert ev("steps.pin.pinCode") == "123456"
    assert ev('steps."lock-2".ok') is True
    assert ev("flow.name") == "Flow"
    assert ev("now") == "2026-03-01T12:00:00Z"
    assert ev("{{ trigger.unitId }}") == "unit-7"  # evaluate accepts one {{ }} too
    assert ev("steps.missing.x") is None


def test_builtin_jmespath_functions_work() -> None:
    assert ev("join(', ', trigger.tags)") == "a, b"
    assert ev("length(trigger.tags)") == 2
    assert ev("trigger.tags[?@ == 'b'] | [0]") == "b"
    assert ev("to_string(trigger.nights)") == "2"


def test_datetimes_in_the_scope_become_iso_strings() -> None:
    scope = {"trigger": {"at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)}}
    assert evaluate("trigger.at", scope) == "2026-01-02T03:04:05Z"


def test_python_objects_never_enter_the_scope() -> None:
    with pytest.raises(ExpressionError, match=r"scope\.trigger\.obj: a object is not JSON data"):
        evaluate("trigger", {"trigger": {"obj": object()}})
    with pytest.raises(ExpressionError, match="not a string"):
        evaluate("trigger", {"trigger": {1: "x"}})


def test_is_truthy_follows_jmespath() -> None:
    assert [is_truthy(v) for v in (None, False, "", [], {}, 0, "0", [0], True)] == [
        False,
        False,
        False,
        False,
        False,
        True,
        True,
        True,
        True,
    ]
    assert render("{{ steps.pin.pinCode != null }}", SCOPE) is True


# --- time functions -------------------------------------------------------------------------


def test_unix_reads_iso_and_seconds() -> None:
    assert ev("unix('2026-03-01T12:00:00Z')") == 1772366400
    assert ev("unix('2026-03-01T13:00:00+01:00')") == 1772366400
    assert ev("unix('2026-03-01T12:00:00')") == 1772366400  # no zone means UTC
    assert ev("unix(`1772366400.9`)") == 1772366400
    assert ev("unix('1772366400')") == 1772366400


def test_iso_converts_to_utc_or_a_zone_across_dst() -> None:
    assert ev("iso(`1772366400`)") == "2026-03-01T12:00:00Z"
    assert ev("iso('2026-03-01T13:00:00+01:00')") == "2026-03-01T12:00:00Z"
    # Berlin switches to summer time on 2026-03-29 at 01:00 UTC.
    assert ev("iso('2026-03-29T00:59:00Z', 'Europe/Berlin')") == "2026-03-29T01:59:00+01:00"
    assert ev("iso('2026-03-29T01:00:00Z', 'Europe/Berlin')") == "2026-03-29T03:00:00+02:00"
    assert ev("iso(now, 'America/New_York')") == "2026-03-01T07:00:00-05:00"
    assert ev("iso(now, null)") == "2026-03-01T12:00:00Z"


def test_add_time_keeps_the_offset_and_reads_negative_and_compound_durations() -> None:
    assert ev("add_time(trigger.checkIn, '-PT1H')") == "2026-03-28T14:00:00+01:00"
    assert ev("add_time(trigger.checkOut, 'PT30M')") == "2026-03-30T11:30:00+02:00"
    assert ev("add_time(trigger.checkIn, 'P1DT2H')") == "2026-03-29T17:00:00+01:00"
    assert ev("add_time(trigger.checkIn, '-P1W')") == "2026-03-21T15:00:00+01:00"
    assert ev("add_time(now, 'PT1.5S')") == "2026-03-01T12:00:01.500000Z"
    assert ev("add_time(now, `3600`)") == "2026-03-01T13:00:00Z"
    assert ev("add_time(now, `-60`)") == "2026-03-01T11:59:00Z"
    assert ev("add_time(`0`, 'P1D')") == "1970-01-02T00:00:00Z"
    # A fixed offset names the same instant across DST: P1D is exactly 24 hours.
    assert ev("iso(add_time('2026-03-28T12:00:00+01:00', 'P1D'), 'Europe/Berlin')") == (
        "2026-03-29T13:00:00+02:00"
    )


@pytest.mark.parametrize(
    ("duration", "message"),
    [
        ("'P1M'", "months or years"),
        ("'P1Y2D'", "months or years"),
        ("'1 hour'", "is not an ISO 8601 duration"),
        ("'P'", "is not an ISO 8601 duration"),
        ("'PT'", "is not an ISO 8601 duration"),
        ("'P1H'", "is not an ISO 8601 duration"),
        ("`1e30`", "out of range"),
        ("'P9999999D'", "out of the date range"),
    ],
)
def test_add_time_refuses_bad_durations(duration: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=re.escape(message)):
        ev(f"add_time(now, {duration})")


def test_format_time_uses_plain_strftime_in_a_zone() -> None:
    assert ev("format_time(now, '%Y-%m-%d %H:%M')") == "2026-03-01 12:00"
    assert ev("format_time(now, '%d.%m.%Y %H:%M %Z', 'Europe/Berlin')") == ("01.03.2026 13:00 CET")
    assert ev("format_time('2026-07-01T12:00:00Z', '%H:%M %z', 'Europe/Berlin')") == "14:00 +0200"
    assert ev("format_time(now, '100%% at %A')") == "100% at Sunday"


@pytest.mark.parametrize("pattern", ["%c", "%-d", "%e", "%x", "50%", "{0.__class__}%Q"])
def test_format_time_refuses_other_patterns(pattern: str) -> None:
    with pytest.raises(ExpressionError, match="not supported"):
        evaluate(
            "format_time(now, trigger.p)",
            {"now": "2026-01-01T00:00:00Z", "trigger": {"p": pattern}},
        )


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("unix('yesterday')", "'yesterday' is not an ISO 8601 date-time"),
        ("unix(`1e300`)", "out of the supported date range"),
        ("unix(null)", "invalid type"),
        ("iso(now, 'Mars/Olympus')", '"Mars/Olympus" is not an IANA time zone'),
        ("iso(now, '../../etc/passwd')", "is not an IANA time zone"),
        ("format_time(now, '%Y', 'Nowhere')", "is not an IANA time zone"),
    ],
)
def test_time_functions_explain_bad_moments_and_zones(expression: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=re.escape(message)):
        ev(expression)


# --- text functions -------------------------------------------------------------------------


def test_e164_normalises_with_and_without_region() -> None:
    assert ev("e164(trigger.phone, 'DE')") == "+49301234567"
    assert ev("e164('+1 (650) 253-0000')") == "+16502530000"
    assert ev("e164('(650) 253-0000', 'us')") == "+16502530000"
    assert ev("e164(`4930123456`, 'DE')") == "+4930123456"  # a number works too


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("e164('030 1234567')", '"030 1234567" is not a phone number; give a region'),
        ("e164('+49 123', 'DE')", '"+49 123" is not a valid phone number (region DE)'),
        ("e164('hello', 'DE')", '"hello" is not a phone number (region DE)'),
        ("e164('0301234567', 'Germany')", '"Germany" is not a two-letter region code'),
    ],
)
def test_e164_names_the_invalid_value(expression: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=re.escape(message)):
        ev(expression)


def test_format_fills_names_and_indexes() -> None:
    assert ev("format('Hi {name}, {n} nights', {name: trigger.guestName, n: trigger.nights})") == (
        "Hi Ada Lovelace, 2 nights"
    )
    assert ev("format('{0}/{1}/{0}', trigger.tags)") == "a/b/a"
    assert ev("format('{{literal}} {a}', {a: null})") == "{literal} "
    assert ev("format('{ a }', {a: `[1]`})") == "[1]"


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("format('{a.__class__}', {a: 'x'})", "{a.__class__} is not a placeholder"),
        ("format('{0[0]}', trigger.tags)", "{0[0]} is not a placeholder"),
        ("format('{a!r}', {a: 'x'})", "{a!r} is not a placeholder"),
        ("format('{b}', {a: 'x'})", "no value for {b}"),
        ("format('{2}', trigger.tags)", "no value for {2} in an array of 2"),
        ("format('{a}', trigger.tags)", "no value for {a}"),
        ("format('x', 'y')", "invalid type"),
    ],
)
def test_format_refuses_anything_but_plain_placeholders(expression: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=re.escape(message)):
        ev(expression)


def test_concat_default_and_random_pin() -> None:
    assert ev("concat('Unit ', trigger.unitId, ' x', trigger.nights, null)") == "Unit unit-7 x2"
    assert ev("concat(trigger.price)") == "99.5"
    with pytest.raises(ExpressionError, match=r"concat\(\): argument 2 is an array"):
        ev("concat('a', trigger.tags)")
    assert ev("default(trigger.note, 'none')") == "none"
    assert ev("default(trigger.empty, `0`)") == 0
    assert ev("default(trigger.nights, `0`)") == 2
    assert ev("default(trigger.vip, `true`)") is False  # only null and "" fall back
    pins = {ev("random_pin(`6`)") for _ in range(20)}
    assert all(re.fullmatch(r"\d{6}", p) for p in pins) and len(pins) > 1
    assert re.fullmatch(r"\d{12}", ev("random_pin(`12.0`)"))
    for bad in ("`3`", "`13`", "`4.5`", "'6'"):
        with pytest.raises(ExpressionError, match="random_pin"):
            ev(f"random_pin({bad})")


def test_function_names_are_the_documented_library() -> None:
    assert {
        "unix",
        "iso",
        "add_time",
        "format_time",
        "e164",
        "format",
        "concat",
        "default",
        "random_pin",
    } == FUNCTION_NAMES


# --- errors and limits ----------------------------------------------------------------------


def test_errors_name_the_path_and_the_expression() -> None:
    template = {"input": {"unitId": "{{ trigger.unitId }}", "start": "{{ unix('soon') }}"}}
    with pytest.raises(ExpressionError) as info:
        render(template, SCOPE)
    assert str(info.value) == (
        "$.input.start: unix(): 'soon' is not an ISO 8601 date-time"
        " (e.g. 2026-03-01T15:00:00+01:00) or unix seconds (in {{ unix('soon') }})"
    )
    with pytest.raises(ExpressionError, match=r"^\$\.steps\[1\]\.input\.list\[2\]: "):
        render({"list": [1, 2, "x {{ nope( }}"]}, SCOPE, path="$.steps[1].input")
    with pytest.raises(ExpressionError, match=r'^\$\["odd key"\]: .*never closed'):
        render({"odd key": "{{ trigger"}, SCOPE)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "the expression is empty"),
        ("trigger.", "syntax error"),
        ("nosuch(trigger)", "unknown function nosuch()"),
        ("`not json`", "a `...` literal must be JSON"),
        ("iso(now, 'UTC', 'x')", "iso() takes 1 or 2 arguments, got 3"),
        ("&trigger", "an &expression, which is not JSON data"),
        ("to_number('1.0e999')", "not a finite number"),
        ("ceil(to_number('1.0e999'))", "cannot evaluate"),
        ('sort_by(`[1, "a"]`, &@)', "invalid type"),
        ("abs('x')", "invalid type"),
        ("(" * 500 + "a" + ")" * 500, "nested too deeply"),
        ("a" * 5000, "longer than"),
    ],
)
def test_every_failure_is_an_expression_error(expression: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=re.escape(message)):
        ev(expression)


def test_values_that_double_on_every_step_are_stopped() -> None:
    with pytest.raises(ExpressionError, match="too large"):
        ev("[@, @] | " * 40 + "@")
    with pytest.raises(ExpressionError, match="too large"):
        ev("'abcdefgh' | " + "join('', [@, @]) | " * 40 + "@")
    with pytest.raises(ExpressionError, match=r"concat\(\): the result is longer than"):
        ev("format('{0}{0}', [trigger.guestName]) | " + "concat(@, @) | " * 40 + "@")


def test_the_rendered_document_is_bounded() -> None:
    scope = {"trigger": {"big": "x" * (MAX_VALUE_SIZE // 4)}}
    render(["{{ trigger.big }}"] * 3, scope)
    with pytest.raises(ExpressionError, match=r"^\$\[4\]: the rendered document is larger"):
        render(["{{ trigger.big }}"] * 6, scope)


def test_results_are_json_serialisable() -> None:
    result = render({"a": "{{ [trigger, steps, flow, now] }}", "b": "{{ trigger }}"}, SCOPE)
    assert json.loads(json.dumps(result, allow_nan=False)) == result


# --- static checks and references -----------------------------------------------------------


def test_check_reports_syntax_without_evaluating() -> None:
    template = {
        "ok": "{{ trigger.unitId }} {{ random_pin(`6`) }}",
        "a": ["{{ foo( }}"],
        "b": "x {{ nosuch(trigger) }}",
        "c": "{{ trigger",
        "d": "{{ iso() }}",
        "e": "{{ trigger.x(1) }}",
    }
    problems = check(template, "$.steps[0].input")
    assert [p.path for p in problems] == [
        "$.steps[0].input.a[0]",
        "$.steps[0].input.b",
        "$.steps[0].input.c",
        "$.steps[0].input.d",
        "$.steps[0].input.e",
    ]
    assert problems[0] == ErrorDetail(
        "$.steps[0].input.a[0]", "syntax error: the expression ends too early (in {{ foo( }})"
    )
    assert "unknown function nosuch()" in problems[1].message
    assert "never closed" in problems[2].message
    assert "iso() takes 1 or 2 arguments, got 0" in problems[3].message
    assert check({"x": "{{ unix('not a date') }}"}) == []  # evaluation errors are not syntax


def test_referenced_steps_come_from_the_parsed_expressions() -> None:
    template = {
        "a": "{{ steps.pin.pinCode }}",
        "b": ['{{ length(steps."lock-2"[0]) }}', "{{ @.steps.current.x }}"],
        "c": "{{ {x: steps.inHash} }} {{ steps.piped | steps.afterPipe }}",
        "d": "{{ trigger.items[*].steps.notAStep }} {{ sort_by(trigger.x, &steps.notAStep2) }}",
        "e": "{{ concat(steps.inCall.x, 'steps.inText') }} steps.plainText",
        "f": "{{ steps.list[*].x }} {{ trigger.a[?steps.inFilterButRelative] }}",
        "g": "{{ steps }} {{ trigger.steps.nested }} {{ broken( }}",
    }
    assert referenced_steps(template) == {
        "pin",
        "lock-2",
        "current",
        "inHash",
        "piped",
        "inCall",
        "list",
    }
