"""Choice state rules (JSONPath mode): distmap.asl.choice against the AWS Developer Guide.

Rules are compiled once and evaluated against a dict-backed resolver: ``$.a.b`` walks the state
input, ``$$.a.b`` the context object (dotted keys only; no JSONPath module involved).
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest

from distmap.asl.choice import (
    OPERATORS,
    ChoiceState,
    Instant,
    compile_choice_state,
    compile_rule,
    parse_timestamp,
)
from distmap.errors import ConfigError, Runtime

MISSING = object()  # marks "leave the key out of the input"


def resolver(data: Any, context: Any = None):
    """``resolve(path) -> (found, value)`` over plain dicts, splitting the path on dots."""

    def resolve(path: str) -> tuple[bool, Any]:
        node, rest = (context, path[2:]) if path.startswith("$$") else (data, path[1:])
        for part in filter(None, rest.split(".")):
            if not isinstance(node, dict) or part not in node:
                return False, None
            node = node[part]
        return True, node

    return resolve


def holds(rule: dict, data: Any, context: Any = None) -> bool:
    """Compile ``rule`` as a nested rule (no Next) and evaluate it once."""
    return compile_rule(rule, "T", top_level=False).evaluate(resolver(data, context))


def with_value(value: Any) -> dict:
    return {} if value is MISSING else {"v": value}


# ------------------------------------------------------------------ comparisons with a literal

TS = "2016-08-18T17:33:00Z"

LITERAL_CASES = [
    # BooleanEquals: only booleans match
    ("BooleanEquals", True, True, True),
    ("BooleanEquals", True, False, False),
    ("BooleanEquals", False, False, True),
    ("BooleanEquals", True, 1, False),
    ("BooleanEquals", True, "true", False),
    # Numeric: int and float compare by value; booleans and strings are not numbers
    ("NumericEquals", 1, 1, True),
    ("NumericEquals", 1, 1.0, True),
    ("NumericEquals", 1.5, 1.5, True),
    ("NumericEquals", 1, 2, False),
    ("NumericEquals", 1, True, False),
    ("NumericEquals", 0, False, False),
    ("NumericEquals", 1, "1", False),
    ("NumericEquals", 1, None, False),
    ("NumericEquals", 1, [1], False),
    ("NumericEquals", 2**53 + 1, 2**53, False),
    ("NumericGreaterThan", 10, 11, True),
    ("NumericGreaterThan", 10, 10, False),
    ("NumericGreaterThan", 10, -1e300, False),
    ("NumericGreaterThanEquals", 10, 10.0, True),
    ("NumericGreaterThanEquals", 10, 9.99, False),
    ("NumericLessThan", 10, 9, True),
    ("NumericLessThan", 10, 10, False),
    ("NumericLessThan", 0, -0.5, True),
    ("NumericLessThanEquals", 10, 10, True),
    ("NumericLessThanEquals", 10, 10.5, False),
    ("NumericLessThanEquals", 10, "9", False),
    # String: case-sensitive, no normalisation, ordered like Java compareTo
    ("StringEquals", "abc", "abc", True),
    ("StringEquals", "abc", "ABC", False),
    ("StringEquals", "abc", "abc ", False),
    ("StringEquals", "", "", True),
    ("StringEquals", "5", 5, False),
    ("StringEquals", "é", "e\u0301", False),
    ("StringEquals", TS, TS, True),
    ("StringGreaterThan", "b", "c", True),
    ("StringGreaterThan", "b", "b", False),
    ("StringGreaterThan", "b", "B", False),
    ("StringGreaterThan", "b", "ba", True),
    ("StringGreaterThanEquals", "b", "b", True),
    ("StringGreaterThanEquals", "b", "a", False),
    ("StringLessThan", "b", "a", True),
    ("StringLessThan", "b", "", True),
    ("StringLessThan", "b", "ba", False),
    ("StringLessThan", "a", "B", True),
    ("StringLessThan", "b", None, False),
    ("StringLessThanEquals", "b", "b", True),
    ("StringLessThanEquals", "b", "c", False),
    # Java compareTo orders UTF-16 code units: a surrogate pair (U+1F600) sorts below U+E000
    ("StringLessThan", "\ue000", "\U0001f600", True),
    ("StringGreaterThan", "\ue000", "\U0001f600", False),
    ("StringLessThan", "\U0001f601", "\U0001f600", True),
    # Timestamp: instants, offsets normalised, fractions exact; non-timestamps never match
    ("TimestampEquals", TS, TS, True),
    ("TimestampEquals", TS, "2016-08-18T19:33:00+02:00", True),
    ("TimestampEquals", TS, "2016-08-18T12:03:00-05:30", True),
    ("TimestampEquals", TS, "2016-08-18T17:33:00.000Z", True),
    ("TimestampEquals", TS, "2016-08-18T17:33:01Z", False),
    ("TimestampEquals", TS, "2016-08-18t17:33:00z", False),
    ("TimestampEquals", TS, "not a timestamp", False),
    ("TimestampEquals", TS, 1471541580, False),
    ("TimestampGreaterThan", TS, "2016-08-18T17:33:00.001Z", True),
    ("TimestampGreaterThan", TS, "2016-08-18T17:33:00.0000000001Z", True),
    ("TimestampGreaterThan", TS, "2016-08-18T18:00:00+01:00", False),
    ("TimestampGreaterThan", TS, "2016-08-19T00:00:00+07:00", False),
    ("TimestampGreaterThanEquals", TS, "2016-08-18T19:33:00+02:00", True),
    ("TimestampGreaterThanEquals", TS, "2016-08-18T17:32:59.999999999Z", False),
    ("TimestampLessThan", TS, "2016-08-18T17:32:59.999999999Z", True),
    ("TimestampLessThan", TS, TS, False),
    ("TimestampLessThan", TS, None, False),
    ("TimestampLessThanEquals", TS, "2016-08-18T17:33:00.000Z", True),
    ("TimestampLessThanEquals", TS, "2016-08-18T17:33:00.5Z", False),
]


@pytest.mark.parametrize(("op", "operand", "value", "expected"), LITERAL_CASES)
def test_comparison_with_literal_operand_matches_aws_semantics(op, operand, value, expected):
    assert holds({"Variable": "$.v", op: operand}, {"v": value}) is expected


def test_every_comparison_operator_is_covered_by_the_tables():
    covered = {c[0] for c in LITERAL_CASES} | {c[0] for c in PATH_CASES} | {"StringMatches"}
    covered |= {"And", "Or", "Not", "IsPresent"} | {c[0] for c in IS_CASES}
    assert covered == OPERATORS


# ------------------------------------------------------------------ Path operands

PATH_CASES = [
    ("BooleanEqualsPath", True, True, True),
    ("BooleanEqualsPath", True, False, False),
    ("BooleanEqualsPath", True, 1, False),
    ("NumericEqualsPath", 1, 1.0, True),
    ("NumericEqualsPath", 1, "1", False),
    ("NumericEqualsPath", "1", 1, False),
    ("NumericGreaterThanPath", 3, 2, True),
    ("NumericGreaterThanPath", 2, 2, False),
    ("NumericGreaterThanEqualsPath", 2, 2, True),
    ("NumericLessThanPath", 2, 3, True),
    ("NumericLessThanPath", 2, True, False),
    ("NumericLessThanEqualsPath", 3, 2, False),
    ("NumericLessThanEqualsPath", 2.0, 2, True),
    ("StringEqualsPath", "x", "x", True),
    ("StringEqualsPath", "x", "X", False),
    ("StringEqualsPath", "x", None, False),
    ("StringGreaterThanPath", "b", "a", True),
    ("StringGreaterThanEqualsPath", "a", "a", True),
    ("StringLessThanPath", "a", "b", True),
    ("StringLessThanEqualsPath", "b", "a", False),
    ("TimestampEqualsPath", TS, "2016-08-18T19:33:00+02:00", True),
    ("TimestampEqualsPath", TS, "2016-08-18", False),
    ("TimestampGreaterThanPath", "2016-08-18T17:33:01Z", TS, True),
    ("TimestampGreaterThanEqualsPath", TS, "2016-08-18T19:33:00+02:00", True),
    ("TimestampLessThanPath", "2016-08-18T17:33:00.1Z", TS, False),
    ("TimestampLessThanEqualsPath", TS, "2016-08-18T17:33:00.1Z", True),
]


@pytest.mark.parametrize(("op", "left", "right", "expected"), PATH_CASES)
def test_path_operator_compares_variable_with_value_at_second_path(op, left, right, expected):
    assert holds({"Variable": "$.a", op: "$.b"}, {"a": left, "b": right}) is expected


def test_path_operands_may_point_into_the_context_object():
    rule = {"Variable": "$$.Execution.Name", "StringEqualsPath": "$.name"}
    assert holds(rule, {"name": "run-1"}, {"Execution": {"Name": "run-1"}}) is True
    assert holds(rule, {"name": "run-2"}, {"Execution": {"Name": "run-1"}}) is False


def test_variable_and_operand_may_be_the_same_path():
    assert holds({"Variable": "$.a", "NumericEqualsPath": "$.a"}, {"a": 3}) is True


# ------------------------------------------------------------------ StringMatches

MATCH_CASES = [
    # the ASL spec's examples
    ("foo*.log", "foo23.log", True),
    ("*.log", "zebra.log", True),
    ("foo*.*", "foobar.zebra", True),
    # * matches any run, including an empty one and newlines
    ("foo*.log", "foo.log", True),
    ("foo*.log", "foo23.txt", False),
    ("*", "", True),
    ("*", "anything at all", True),
    ("**", "x", True),
    ("a*b", "a\nb", True),
    ("a*b*c", "abc", True),
    ("a*b*c", "aXbYc", True),
    ("a*b*c", "acb", False),
    ("a*a", "a", False),
    ("*a*", "bab", True),
    ("*a*", "bbb", False),
    ("ab*ab", "abab", True),
    ("ab*ab", "aba", False),
    # no wildcard: whole-string equality, case-sensitive
    ("", "", True),
    ("", "a", False),
    ("abc", "abc", True),
    ("abc", "abcd", False),
    ("ABC*", "abcd", False),
    # nothing but * is special
    ("a.?", "a.?", True),
    ("a.?", "a.b", False),
    ("[ab]+", "[ab]+", True),
    ("[ab]+", "a", False),
    ("^$", "^$", True),
    # \* is a literal star, \\ a literal backslash (Python strings below, not JSON)
    ("a\\*b", "a*b", True),
    ("a\\*b", "axb", False),
    ("a\\\\b", "a\\b", True),
    ("a\\\\b", "a\\\\b", False),
    ("\\\\*", "\\anything", True),
    ("\\\\*", "x", False),
    ("\\\\\\*", "\\*", True),
    ("*\\**", "x*y", True),
    ("*\\**", "xy", False),
]


@pytest.mark.parametrize(("pattern", "value", "expected"), MATCH_CASES)
def test_string_matches_star_wildcard_and_backslash_escapes(pattern, value, expected):
    assert holds({"Variable": "$.v", "StringMatches": pattern}, {"v": value}) is expected


@pytest.mark.parametrize("value", [5, None, True, ["abc"], {"a": 1}])
def test_string_matches_on_a_non_string_is_false(value):
    assert holds({"Variable": "$.v", "StringMatches": "*"}, {"v": value}) is False


def test_string_matches_does_not_backtrack_exponentially():
    rule = compile_rule({"Variable": "$.v", "StringMatches": "*a*a*a*a*a*a*a*a*b"}, "T", top_level=False)
    resolve = resolver({"v": "a" * 20_000})
    started = time.perf_counter()
    assert rule.evaluate(resolve) is False
    assert time.perf_counter() - started < 0.5


# ------------------------------------------------------------------ timestamps

VALID_TIMESTAMPS = [
    "2016-08-18T17:33:00Z",
    "2016-08-18T17:33:00.5Z",
    "2016-08-18T17:33:00.123456789012Z",
    "2016-08-18T17:33:00+02:00",
    "2016-08-18T17:33:00-05:30",
    "2016-08-18T17:33:00.25-00:00",
    "2016-08-18T17:33:00+23:59",
    "2016-02-29T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999Z",
]

INVALID_TIMESTAMPS = [
    "2016-08-18t17:33:00Z",  # lowercase t
    "2016-08-18T17:33:00z",  # lowercase z
    "2016-08-18 17:33:00Z",  # space separator
    "2016-08-18T17:33:00",  # no offset
    "2016-08-18T17:33Z",  # no seconds
    "2016-08-18T17:33:00,5Z",  # comma fraction
    "2016-08-18T17:33:00.Z",  # empty fraction
    "2016-08-18T24:00:00Z",
    "2016-08-18T17:60:00Z",
    "2016-12-31T23:59:60Z",  # leap second
    "2015-02-29T00:00:00Z",
    "2016-13-01T00:00:00Z",
    "2016-00-10T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "2016-08-18T17:33:00+0200",
    "2016-08-18T17:33:00+02",
    "2016-08-18T17:33:00+24:00",
    "2016-08-18T17:33:00+02:60",
    "2016-08-18T17:33:00+02:00Z",
    "2016-08-18",
    "16-08-18T17:33:00Z",
    "2016-8-18T17:33:00Z",
    "2016-08-18T17:33:00Z\n",
    " 2016-08-18T17:33:00Z",
    "\uff12\uff10\uff11\uff16-08-18T17:33:00Z",  # full-width digits
    "",
]


@pytest.mark.parametrize("text", VALID_TIMESTAMPS)
def test_rfc3339_timestamps_with_uppercase_t_and_z_or_offset_are_timestamps(text):
    assert parse_timestamp(text) is not None
    assert holds({"Variable": "$.v", "IsTimestamp": True}, {"v": text}) is True


@pytest.mark.parametrize("text", INVALID_TIMESTAMPS)
def test_strings_outside_the_aws_timestamp_profile_are_not_timestamps(text):
    assert parse_timestamp(text) is None
    assert holds({"Variable": "$.v", "IsTimestamp": True}, {"v": text}) is False
    assert holds({"Variable": "$.v", "TimestampEquals": TS}, {"v": text}) is False


def test_parse_timestamp_gives_utc_epoch_seconds_and_an_exact_fraction():
    assert parse_timestamp("1970-01-01T00:00:00Z") == Instant(0, Decimal(0))
    assert parse_timestamp("1970-01-01T01:00:00+01:00") == Instant(0, Decimal(0))
    assert parse_timestamp("1969-12-31T23:59:59.5Z") == Instant(-1, Decimal("0.5"))
    assert parse_timestamp(TS) == Instant(1471541580, Decimal(0))
    assert parse_timestamp("2016-08-18T17:33:00.1000Z") == parse_timestamp("2016-08-18T17:33:00.1Z")


# ------------------------------------------------------------------ Is* tests

IS_CASES = [
    ("IsNull", None, True),
    ("IsNull", 0, False),
    ("IsNull", "", False),
    ("IsNull", "null", False),
    ("IsNumeric", 1, True),
    ("IsNumeric", 1.5, True),
    ("IsNumeric", True, False),
    ("IsNumeric", "1", False),
    ("IsString", "x", True),
    ("IsString", "", True),
    ("IsString", 1, False),
    ("IsString", None, False),
    ("IsBoolean", True, True),
    ("IsBoolean", False, True),
    ("IsBoolean", 0, False),
    ("IsBoolean", "true", False),
    ("IsTimestamp", TS, True),
    ("IsTimestamp", "yesterday", False),
    ("IsTimestamp", 1471541580, False),
    ("IsPresent", None, True),
    ("IsPresent", False, True),
    ("IsPresent", MISSING, False),
]


@pytest.mark.parametrize(("op", "value", "expected"), IS_CASES)
def test_is_operator_true_tests_the_type_and_false_inverts_it(op, value, expected):
    data = with_value(value)
    assert holds({"Variable": "$.v", op: True}, data) is expected
    assert holds({"Variable": "$.v", op: False}, data) is (not expected)


def test_is_present_false_is_the_guard_for_an_absent_field():
    assert holds({"Variable": "$.a.b.c", "IsPresent": False}, {"a": {"b": 1}}) is True
    assert holds({"Variable": "$$.Map.Item.Value", "IsPresent": True}, {}, {}) is False


# ------------------------------------------------------------------ missing paths -> States.Runtime

RUNTIME_RULES = [
    {"NumericEquals": 1},
    {"NumericGreaterThanPath": "$.n"},
    {"StringEquals": "x"},
    {"StringLessThan": "x"},
    {"BooleanEquals": True},
    {"TimestampEquals": TS},
    {"StringMatches": "*"},
    {"IsNull": True},
    {"IsNumeric": False},
    {"IsString": True},
    {"IsBoolean": True},
    {"IsTimestamp": True},
]


@pytest.mark.parametrize("test", RUNTIME_RULES, ids=lambda t: next(iter(t)))
def test_missing_variable_raises_states_runtime_naming_the_path(test):
    with pytest.raises(Runtime) as info:
        holds({"Variable": "$.missing", **test}, {"n": 1})
    assert info.value.error == "States.Runtime"
    assert info.value.cause == (
        "Invalid path '$.missing': The choice state's condition path references an invalid value."
    )


def test_missing_path_operand_raises_states_runtime_naming_that_path():
    with pytest.raises(Runtime, match=r"Invalid path '\$\.nope'"):
        holds({"Variable": "$.a", "NumericEqualsPath": "$.nope"}, {"a": 1})


def test_missing_path_operand_raises_even_when_the_variable_has_the_wrong_type():
    with pytest.raises(Runtime, match=r"'\$\.nope'"):
        holds({"Variable": "$.a", "NumericEqualsPath": "$.nope"}, {"a": "not a number"})


def test_missing_context_path_raises_states_runtime():
    with pytest.raises(Runtime, match=r"'\$\$\.Execution\.Input'"):
        holds({"Variable": "$$.Execution.Input", "IsNull": True}, {}, {"Execution": {}})


def test_not_does_not_turn_a_missing_path_into_true():
    with pytest.raises(Runtime):
        holds({"Not": {"Variable": "$.x", "StringEquals": "a"}}, {})


def test_and_or_stop_at_the_first_deciding_rule_so_later_missing_paths_are_not_read():
    missing = {"Variable": "$.missing", "NumericEquals": 1}
    false, true = {"Variable": "$.a", "NumericEquals": 2}, {"Variable": "$.a", "NumericEquals": 1}
    assert holds({"And": [false, missing]}, {"a": 1}) is False
    assert holds({"Or": [true, missing]}, {"a": 1}) is True
    with pytest.raises(Runtime):
        holds({"And": [true, missing]}, {"a": 1})
    with pytest.raises(Runtime):
        holds({"Or": [false, missing]}, {"a": 1})


def test_is_present_guard_in_and_avoids_the_runtime_error():
    guarded = {"And": [{"Variable": "$.f", "IsPresent": True}, {"Variable": "$.f", "BooleanEquals": True}]}
    assert holds(guarded, {}) is False
    assert holds(guarded, {"f": True}) is True


# ------------------------------------------------------------------ And / Or / Not

A1 = {"Variable": "$.a", "NumericEquals": 1}
B1 = {"Variable": "$.b", "NumericEquals": 1}

BOOLEAN_CASES = [
    ({"And": [A1, B1]}, {"a": 1, "b": 1}, True),
    ({"And": [A1, B1]}, {"a": 1, "b": 2}, False),
    ({"And": [A1]}, {"a": 1}, True),
    ({"Or": [A1, B1]}, {"a": 2, "b": 1}, True),
    ({"Or": [A1, B1]}, {"a": 2, "b": 2}, False),
    ({"Not": A1}, {"a": 2}, True),
    ({"Not": A1}, {"a": 1}, False),
    ({"Not": {"Not": A1}}, {"a": 1}, True),
    ({"Not": {"And": [A1, {"Or": [B1, {"Not": B1}]}]}}, {"a": 1, "b": 5}, False),
    ({"Not": {"And": [A1, {"Or": [B1, {"Not": B1}]}]}}, {"a": 2, "b": 5}, True),
    ({"Or": [{"And": [A1, B1]}, {"Not": {"Or": [A1, B1]}}]}, {"a": 3, "b": 4}, True),
    ({"Or": [{"And": [A1, B1]}, {"Not": {"Or": [A1, B1]}}]}, {"a": 1, "b": 4}, False),
]


@pytest.mark.parametrize(("rule", "data", "expected"), BOOLEAN_CASES)
def test_and_or_not_combine_nested_rules(rule, data, expected):
    assert holds(rule, data) is expected


# ------------------------------------------------------------------ Choice state

GUIDE_EXAMPLE = {
    "Type": "Choice",
    "Choices": [
        {"Not": {"Variable": "$.type", "StringEquals": "Private"}, "Next": "Public"},
        {"Variable": "$.value", "NumericEquals": 0, "Next": "ValueIsZero"},
        {
            "And": [
                {"Variable": "$.value", "NumericGreaterThanEquals": 20},
                {"Variable": "$.value", "NumericLessThan": 30},
            ],
            "Next": "ValueInTwenties",
        },
    ],
    "Default": "DefaultState",
}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"type": "Private", "value": 22}, "ValueInTwenties"),
        ({"type": "Public"}, "Public"),
        ({"type": "Private", "value": 0}, "ValueIsZero"),
        ({"type": "Private", "value": 0.0}, "ValueIsZero"),
        ({"type": "Private", "value": 50}, "DefaultState"),
        ({"type": "Private", "value": "22"}, "DefaultState"),
    ],
)
def test_guide_example_takes_the_first_matching_rule_else_default(data, expected):
    state = compile_choice_state(GUIDE_EXAMPLE, "States.ChoiceStateX")
    assert state.next_state(resolver(data)) == expected


def test_guide_example_fails_when_the_input_lacks_the_type_field():
    state = compile_choice_state(GUIDE_EXAMPLE, "States.ChoiceStateX")
    with pytest.raises(Runtime, match=r"'\$\.type'"):
        state.next_state(resolver({"value": 22}))


def test_no_match_without_default_gives_none():
    state = compile_choice_state({"Type": "Choice", "Choices": [dict(A1, Next="One")]}, "States.C")
    assert state.default is None
    assert state.next_state(resolver({"a": 2})) is None
    assert state.next_state(resolver({"a": 1})) == "One"


def test_first_match_returns_the_compiled_rule_with_next_and_assign():
    state = compile_choice_state(
        {
            "Choices": [
                dict(A1, Next="First", Assign={"x": 1}, Comment="a is one"),
                {"Variable": "$.a", "NumericGreaterThan": 0, "Next": "Second"},
            ],
            "Default": "D",
        },
        "States.C",
    )
    assert isinstance(state, ChoiceState)
    rule = state.first_match(resolver({"a": 1}))
    assert (rule.operator, rule.next, rule.assign, rule.where) == (
        "NumericEquals",
        "First",
        {"x": 1},
        "States.C.Choices[0]",
    )
    assert state.first_match(resolver({"a": 5})).next == "Second"
    assert state.first_match(resolver({"a": -5})) is None


def test_a_compiled_state_evaluates_many_inputs():
    state = compile_choice_state(GUIDE_EXAMPLE, "States.X")
    picks = [state.next_state(resolver({"type": "Private", "value": v})) for v in range(40)]
    assert picks.count("ValueInTwenties") == 10 and picks.count("ValueIsZero") == 1
    assert picks.count("DefaultState") == 29


def test_compile_rule_requires_next_at_top_level_only():
    assert compile_rule(dict(A1, Next="N"), "R").next == "N"
    with pytest.raises(ConfigError) as info:
        compile_rule(A1, "R")
    assert info.value.field == "R.Next"
    assert compile_rule(A1, "R", top_level=False).next is None
    with pytest.raises(ConfigError) as info:
        compile_rule(dict(A1, Next="N"), "R", top_level=False)
    assert info.value.field == "R.Next"


# ------------------------------------------------------------------ definition-time validation

OK = {"Variable": "$.ok", "IsPresent": True, "Next": "Ok"}
C1 = "States.Check.Choices[1]"

INVALID_RULES = [
    (
        {"Variable": "$.a", "NumericEqual": 1, "Next": "N"},
        f"{C1}.NumericEqual",
        ["NumericEqual", "NumericEquals?"],
    ),
    (
        {"Variable": "$.a", "StringMatchesPath": "$.b", "Next": "N"},
        f"{C1}.StringMatchesPath",
        ["StringMatchesPath"],
    ),
    ({"Variable": "$.a", "IsNullPath": "$.b", "Next": "N"}, f"{C1}.IsNullPath", ["IsNullPath"]),
    ({"Condition": "{% $a = 1 %}", "Next": "N"}, f"{C1}.Condition", ["Condition", "JSONata"]),
    ({"Variable": "$.a", "IsNull": True, "Output": {}, "Next": "N"}, f"{C1}.Output", ["Output", "JSONata"]),
    ({"NumericEquals": 1, "Next": "N"}, f"{C1}.Variable", ["NumericEquals", "Variable"]),
    ({"IsPresent": True, "Next": "N"}, f"{C1}.Variable", ["IsPresent"]),
    (
        {"Variable": "$.a", "NumericEquals": 1, "StringEquals": "x", "Next": "N"},
        f"{C1}.StringEquals",
        ["NumericEquals", "StringEquals", "exactly one"],
    ),
    ({"And": [A1], "Or": [A1], "Next": "N"}, f"{C1}.Or", ["And", "Or"]),
    ({"Variable": "$.a", "Not": A1, "IsNull": True, "Next": "N"}, f"{C1}.IsNull", ["Not", "IsNull"]),
    ({"Variable": "$.a", "Next": "N"}, C1, ["operator"]),
    ({"Next": "N"}, C1, ["operator"]),
    ("StringEquals", C1, ["object", "string 'StringEquals'"]),
    ({"Variable": "$.a", "StringEquals": 5, "Next": "N"}, f"{C1}.StringEquals", ["StringEquals", "number 5"]),
    ({"Variable": "$.a", "StringGreaterThan": None, "Next": "N"}, f"{C1}.StringGreaterThan", ["null"]),
    (
        {"Variable": "$.a", "NumericEquals": "5", "Next": "N"},
        f"{C1}.NumericEquals",
        ["NumericEquals", "string '5'"],
    ),
    ({"Variable": "$.a", "NumericLessThan": True, "Next": "N"}, f"{C1}.NumericLessThan", ["boolean true"]),
    (
        {"Variable": "$.a", "BooleanEquals": 1, "Next": "N"},
        f"{C1}.BooleanEquals",
        ["BooleanEquals", "number 1"],
    ),
    ({"Variable": "$.a", "BooleanEquals": "true", "Next": "N"}, f"{C1}.BooleanEquals", ["string 'true'"]),
    (
        {"Variable": "$.a", "TimestampEquals": "2016-08-18", "Next": "N"},
        f"{C1}.TimestampEquals",
        ["RFC 3339"],
    ),
    (
        {"Variable": "$.a", "TimestampLessThan": 5, "Next": "N"},
        f"{C1}.TimestampLessThan",
        ["TimestampLessThan"],
    ),
    (
        {"Variable": "$.a", "TimestampGreaterThan": "2016-08-18t17:33:00z", "Next": "N"},
        f"{C1}.TimestampGreaterThan",
        ["TimestampGreaterThan"],
    ),
    ({"Variable": "$.a", "IsNull": "yes", "Next": "N"}, f"{C1}.IsNull", ["IsNull", "true or false"]),
    ({"Variable": "$.a", "IsPresent": 1, "Next": "N"}, f"{C1}.IsPresent", ["IsPresent"]),
    ({"Variable": "$.a", "IsTimestamp": None, "Next": "N"}, f"{C1}.IsTimestamp", ["IsTimestamp"]),
    (
        {"Variable": "$.a", "NumericEqualsPath": "b", "Next": "N"},
        f"{C1}.NumericEqualsPath",
        ["NumericEqualsPath"],
    ),
    ({"Variable": "$.a", "StringEqualsPath": 5, "Next": "N"}, f"{C1}.StringEqualsPath", ["StringEqualsPath"]),
    ({"Variable": "$.a", "BooleanEqualsPath": True, "Next": "N"}, f"{C1}.BooleanEqualsPath", ["path"]),
    ({"Variable": "a", "IsNull": True, "Next": "N"}, f"{C1}.Variable", ["IsNull", "'$'"]),
    ({"Variable": 5, "NumericEquals": 5, "Next": "N"}, f"{C1}.Variable", ["NumericEquals"]),
    ({"Variable": "$.a", "StringMatches": 5, "Next": "N"}, f"{C1}.StringMatches", ["StringMatches"]),
    (
        {"Variable": "$.a", "StringMatches": "a\\b", "Next": "N"},
        f"{C1}.StringMatches",
        ["StringMatches", "\\b"],
    ),
    (
        {"Variable": "$.a", "StringMatches": "abc\\", "Next": "N"},
        f"{C1}.StringMatches",
        ["trailing backslash"],
    ),
    ({"Variable": "$.a", "IsNull": True, "Comment": 5, "Next": "N"}, f"{C1}.Comment", ["IsNull"]),
    # Next: required at top level, a state name, forbidden when nested
    ({"Variable": "$.a", "NumericEquals": 1}, f"{C1}.Next", ["NumericEquals", "Next"]),
    ({"And": [A1]}, f"{C1}.Next", ["And"]),
    ({"Variable": "$.a", "NumericEquals": 1, "Next": 5}, f"{C1}.Next", ["NumericEquals", "number 5"]),
    ({"Variable": "$.a", "NumericEquals": 1, "Next": ""}, f"{C1}.Next", ["NumericEquals"]),
    ({"And": [dict(A1, Next="X")], "Next": "N"}, f"{C1}.And[0].Next", ["NumericEquals", "And"]),
    ({"Or": [A1, dict(B1, Next="X")], "Next": "N"}, f"{C1}.Or[1].Next", ["Or"]),
    ({"Not": dict(A1, Next="X"), "Next": "N"}, f"{C1}.Not.Next", ["Not"]),
    ({"And": [dict(A1, Assign={"x": 1})], "Next": "N"}, f"{C1}.And[0].Assign", ["Assign", "And"]),
    # boolean expressions: non-empty arrays, Not a single object, no Variable
    ({"And": [], "Next": "N"}, f"{C1}.And", ["And", "non-empty"]),
    ({"Or": [], "Next": "N"}, f"{C1}.Or", ["Or", "non-empty"]),
    ({"And": A1, "Next": "N"}, f"{C1}.And", ["And", "an object"]),
    ({"Not": [A1], "Next": "N"}, f"{C1}.Not", ["Not", "single", "an array of 1"]),
    ({"Not": "x", "Next": "N"}, f"{C1}.Not", ["Not"]),
    ({"Not": {"Variable": "$.a"}, "Next": "N"}, f"{C1}.Not", ["operator"]),
    ({"Variable": "$.a", "And": [A1], "Next": "N"}, f"{C1}.Variable", ["And", "Variable"]),
    ({"And": [A1, "x"], "Next": "N"}, f"{C1}.And[1]", ["object"]),
    # errors deep inside nesting name the full position
    (
        {"Not": {"And": [A1, {"Or": [{"Variable": "$.a", "NumericEquals": "x"}]}]}, "Next": "N"},
        f"{C1}.Not.And[1].Or[0].NumericEquals",
        ["NumericEquals"],
    ),
]


@pytest.mark.parametrize(("rule", "field", "reason_parts"), INVALID_RULES)
def test_invalid_rule_is_rejected_at_definition_time_naming_position_and_operator(rule, field, reason_parts):
    with pytest.raises(ConfigError) as info:
        compile_choice_state({"Type": "Choice", "Choices": [OK, rule]}, "States.Check")
    assert info.value.field == field
    for part in reason_parts:
        assert part in info.value.reason
    assert str(info.value).startswith(field + ": ")


INVALID_STATES = [
    ({"Type": "Choice"}, "States.Check.Choices", ["non-empty", "nothing"]),
    ({"Type": "Choice", "Choices": []}, "States.Check.Choices", ["non-empty"]),
    ({"Type": "Choice", "Choices": OK}, "States.Check.Choices", ["an object"]),
    ({"Type": "Choice", "Choices": [OK], "Default": 5}, "States.Check.Default", ["number 5"]),
    ({"Type": "Choice", "Choices": [OK], "Default": ""}, "States.Check.Default", ["state name"]),
    ({"Type": "Choice", "Choices": [OK], "End": True}, "States.Check.End", ["End"]),
    ({"Type": "Choice", "Choices": [OK], "Next": "X"}, "States.Check.Next", ["Next"]),
    ({"Type": "Pass", "Choices": [OK]}, "States.Check.Type", ["Choice"]),
    (["not", "an", "object"], "States.Check", ["object"]),
]


@pytest.mark.parametrize(("state", "field", "reason_parts"), INVALID_STATES)
def test_invalid_choice_state_is_rejected_at_definition_time(state, field, reason_parts):
    with pytest.raises(ConfigError) as info:
        compile_choice_state(state, "States.Check")
    assert info.value.field == field
    for part in reason_parts:
        assert part in info.value.reason


def test_comment_and_assign_are_accepted_where_aws_allows_them():
    state = compile_choice_state(
        {
            "Type": "Choice",
            "Comment": "state comment",
            "InputPath": "$.in",
            "Choices": [
                {"Comment": "top", "Not": dict(A1, Comment="nested"), "Assign": {"k.$": "$.a"}, "Next": "N"}
            ],
        },
        "States.C",
    )
    assert state.choices[0].assign == {"k.$": "$.a"}
    assert state.next_state(resolver({"a": 2})) == "N"
