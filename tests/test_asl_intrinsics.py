"""distmap.dataflow.intrinsics and distmap.dataflow.templates: intrinsic functions and payload templates.

Expected values come from the examples of the Amazon States Language specification and of the
Step Functions developer guide ("Intrinsic functions", "InputPath and Parameters"); the other
rows pin the documented limits and the choices described in the modules' docstrings.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

import pytest

from distmap.dataflow.intrinsics import (
    FUNCTIONS,
    INTRINSIC_FAILURE,
    IntrinsicSyntaxError,
    compile_intrinsic,
    is_intrinsic,
)
from distmap.dataflow.jsonpath import PathSyntaxError
from distmap.dataflow.templates import compile_payload
from distmap.errors import Runtime, StatesError


def run(expr: str, value: Any = None, context: Any = None) -> Any:
    return compile_intrinsic(expr)(value if value is not None else {}, context)


NINE = [1, 2, 3, 4, 5, 6, 7, 8, 9]
ARN = {"ImageRecipe": {"Arn": "arn:aws:imagebuilder:us-east-1:123456789012:image-recipe/my-recipe/1.2.3"}}

# (expression, input, expected): the documented examples first, then the edges.
RESULTS = [
    # States.Format
    ("States.Format('Hello, my name is {}.', $.name)", {"name": "Arnav"}, "Hello, my name is Arnav."),
    (
        "States.Format($.template, $.name)",
        {"name": "Arnav", "template": "Hello, my name is {}."},
        "Hello, my name is Arnav.",
    ),
    (
        "States.Format('Your name is {}, we are in the year {}', $.name, 2020)",
        {"name": "Foo"},
        "Your name is Foo, we are in the year 2020",
    ),
    (
        "States.Format('Welcome to {} {}\\'s playlist.', $.firstName, $.lastName)",
        {"firstName": "Jo", "lastName": "Doe"},
        "Welcome to Jo Doe's playlist.",
    ),
    ("States.Format('\\{\\} {} \\\\ end', 'x')", {}, "{} x \\ end"),
    (
        "States.Format('{}|{}|{}|{}|{}', $.n, $.b, $.i, $.f, $.s)",
        {"n": None, "b": False, "i": -1, "f": 3.5, "s": "x"},
        "null|false|-1|3.5|x",
    ),
    ("States.Format('no placeholders')", {}, "no placeholders"),
    ("States.Format('  {}  ', $.a)", {"a": "x"}, "  x  "),
    ("States.Format($.t, 'x')", {"t": "\\{{}\\}"}, "{x}"),
    (
        "States.Format('arn:{}:{}', $.svc, States.JsonToString($.obj))",
        {"svc": "lambda", "obj": {"k": 1}},
        'arn:lambda:{"k":1}',
    ),
    (
        "States.Format('{}.{}', States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit("
        "$.ImageRecipe.Arn, '/'), 2), '.'), 0), States.ArrayGetItem(States.StringSplit(States.ArrayGetItem("
        "States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 1))",
        ARN,
        "1.2",
    ),
    # States.StringToJson / States.JsonToString
    ("States.StringToJson($.escapedJsonString)", {"escapedJsonString": '{"foo": "bar"}'}, {"foo": "bar"}),
    (
        "States.StringToJson($.someString)",
        {"someString": '{"number": 20}', "zebra": "stripe"},
        {"number": 20},
    ),
    ("States.StringToJson($.s)", {"s": '"x"'}, "x"),
    ("States.StringToJson($.s)", {"s": " [1, 2.5, null] "}, [1, 2.5, None]),
    ("States.StringToJson($.s)", {"s": "123456789012345678901234567890"}, 123456789012345678901234567890),
    (
        "States.JsonToString($.someJson)",
        {"someJson": {"name": "Foo", "year": 2020}, "zebra": "stripe"},
        '{"name":"Foo","year":2020}',
    ),
    ("States.JsonToString($.unescapedJson)", {"unescapedJson": {"foo": "bar"}}, '{"foo":"bar"}'),
    ("States.JsonToString($.v)", {"v": [None, "", "é", 1.5, True]}, '[null,"","é",1.5,true]'),
    ("States.JsonToString($.v)", {"v": "s"}, '"s"'),
    # States.Array
    ("States.Array($.Id)", {"Id": 123456}, [123456]),
    (
        "States.Array('Foo', 2020, $.someJson, null)",
        {"someJson": {"random": "abcdefg"}},
        ["Foo", 2020, {"random": "abcdefg"}, None],
    ),
    ("States.Array()", {}, []),
    ("States.Array( $.a , $.b )", {"a": 1, "b": 2}, [1, 2]),
    ("States.Array(1, States.Array(2, 3))", {}, [1, [2, 3]]),
    ("States.Array(false, '', 0, -1.5e2, true)", {}, [False, "", 0, -150.0, True]),
    ("States.Array($$.Execution.Input.userId, $.role)", {"role": "admin"}, [7, "admin"]),
    # States.ArrayPartition
    ("States.ArrayPartition($.inputArray,4)", {"inputArray": NINE}, [[1, 2, 3, 4], [5, 6, 7, 8], [9]]),
    ("States.ArrayPartition($.a, 10)", {"a": [1, 2, 3]}, [[1, 2, 3]]),
    ("States.ArrayPartition($.a, 3)", {"a": []}, []),
    ("States.ArrayPartition($.a, 2.6)", {"a": [1, 2, 3, 4, 5]}, [[1, 2], [3, 4], [5]]),
    # States.ArrayContains
    ("States.ArrayContains($.inputArray, $.lookingFor)", {"inputArray": NINE, "lookingFor": 5}, True),
    ("States.ArrayContains($.inputArray, 10)", {"inputArray": NINE}, False),
    ("States.ArrayContains($.a, $.t)", {"a": [{"a": 1}, {"b": 2}], "t": {"a": 1}}, True),
    ("States.ArrayContains($.a, $.t)", {"a": [{"a": 1, "b": 2}], "t": {"b": 2, "a": 1}}, True),
    ("States.ArrayContains($.a, $.t)", {"a": [[1, 2], [3, 4]], "t": [1, 2]}, True),
    ("States.ArrayContains($.a, $.t)", {"a": [{"a": 1}], "t": {"a": 1, "extra": None}}, False),
    ("States.ArrayContains($.a, null)", {"a": [1, None]}, True),
    ("States.ArrayContains($.a, false)", {"a": [0, 1]}, False),
    ("States.ArrayContains($.a, 1)", {"a": ["1", True]}, False),
    ("States.ArrayContains($.a, 1)", {"a": [1.0]}, True),
    # States.ArrayRange
    ("States.ArrayRange(1, 9, 2)", {}, [1, 3, 5, 7, 9]),
    ("States.ArrayRange(5, 1, -2)", {}, [5, 3, 1]),
    ("States.ArrayRange(-2, 2, 2)", {}, [-2, 0, 2]),
    ("States.ArrayRange(3, 3, -1)", {}, [3]),
    ("States.ArrayRange(5, 1, 1)", {}, []),
    ("States.ArrayRange(1, 5, -1)", {}, []),
    ("States.ArrayRange(1.4, 5.6, 2.2)", {}, [1, 3, 5]),
    ("States.ArrayRange(States.MathAdd($.base, 1), States.MathAdd($.base, 5), 2)", {"base": 0}, [1, 3, 5]),
    # States.ArrayGetItem / ArrayLength / ArrayUnique
    ("States.ArrayGetItem($.inputArray, $.index)", {"inputArray": NINE, "index": 5}, 6),
    ("States.ArrayGetItem($.a, 1.2)", {"a": [10, 20, 30]}, 20),
    ("States.ArrayGetItem($.a, 0)", {"a": [None]}, None),
    ("States.ArrayGetItem(States.Array('x', 'y', 'z'), 1)", {}, "y"),
    ("States.ArrayLength($.inputArray)", {"inputArray": NINE}, 9),
    ("States.ArrayLength($.a)", {"a": []}, 0),
    ("States.ArrayUnique($.inputArray)", {"inputArray": [1, 2, 3, 3, 3, 3, 3, 3, 4]}, [1, 2, 3, 4]),
    (
        "States.ArrayUnique($.a)",
        {"a": [{"a": 1, "b": 2}, {"b": 2, "a": 1}, [1], [1.0]]},
        [{"a": 1, "b": 2}, [1]],
    ),
    ("States.ArrayUnique($.a)", {"a": [1, True, 1.0, "1", None, None]}, [1, True, "1", None]),
    # States.Base64Encode / States.Base64Decode
    ("States.Base64Encode($.input)", {"input": "Data to encode"}, "RGF0YSB0byBlbmNvZGU="),
    ("States.Base64Encode('hello')", {}, "aGVsbG8="),
    ("States.Base64Encode('')", {}, ""),
    ("States.Base64Encode($.s)", {"s": "✓"}, "4pyT"),
    ("States.Base64Encode($.s)", {"s": "こんにちは"}, "44GT44KT44Gr44Gh44Gv"),
    ("States.Base64Encode($.s)", {"s": "line1\nline2"}, "bGluZTEKbGluZTI="),
    ("States.Base64Decode($.base64)", {"base64": "RGF0YSB0byBlbmNvZGU="}, "Data to encode"),
    ("States.Base64Decode('44GT44KT44Gr44Gh44Gv')", {}, "こんにちは"),
    ("States.Base64Decode($.s)", {"s": "YWJjAGRlZg=="}, "abc\x00def"),
    ("States.Base64Decode($.s)", {"s": " YWJj\r\nZA== "}, "abcd"),
    ("States.Base64Decode($.s)", {"s": "YWJjZA"}, "abcd"),
    ("States.Base64Decode(States.Base64Encode($.s))", {"s": "🚀"}, "🚀"),
    # States.Hash
    (
        "States.Hash($.Data, $.Algorithm)",
        {"Data": "input data", "Algorithm": "SHA-1"},
        "aaff4a450a104cd177d28d18d74485e8cae074b7",
    ),
    ("States.Hash('hello', 'MD5')", {}, "5d41402abc4b2a76b9719d911017c592"),
    ("States.Hash('hello', 'SHA-1')", {}, "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"),
    (
        "States.Hash('hello', 'SHA-256')",
        {},
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
    ),
    (
        "States.Hash('hello', 'SHA-384')",
        {},
        "59e1748777448c69de6b800d7a33bbfb9ff1b463e44354c3553bcdb9c666fa90125a3c79f90397bdf5f6a13de828684f",
    ),
    (
        "States.Hash('hello', 'SHA-512')",
        {},
        "9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca7"
        "2323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043",
    ),
    ("States.Hash('', 'SHA-256')", {}, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (
        "States.Hash($.s, 'SHA-256')",
        {"s": "✓"},
        "1dabba21cdad44541f6b15796f8d22978fc7ea10c46aeceeeeb66c23b3ac7604",
    ),
    ("States.Hash($.n, 'MD5')", {"n": 123}, hashlib.md5(b"123").hexdigest()),
    ("States.Hash($.o, 'SHA-256')", {"o": {"a": [1, "x"]}}, hashlib.sha256(b'{"a":[1,"x"]}').hexdigest()),
    # States.JsonMerge
    (
        "States.JsonMerge($.json1, $.json2, false)",
        {"json1": {"a": {"a1": 1, "a2": 2}, "b": 2}, "json2": {"a": {"a3": 1, "a4": 2}, "c": 3}},
        {"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3},
    ),
    ("States.JsonMerge($.a, $.b, $.deep)", {"a": {}, "b": {"x": 1}, "deep": False}, {"x": 1}),
    # States.MathAdd (rounding half up, like Java's Math.round)
    ("States.MathAdd($.value1, $.step)", {"value1": 111, "step": -1}, 110),
    ("States.MathAdd(-9, 3)", {}, -6),
    ("States.MathAdd($.a, 0)", {"a": 1.49}, 1),
    ("States.MathAdd($.a, 0)", {"a": 1.5}, 2),
    ("States.MathAdd($.a, 0)", {"a": 2.5}, 3),
    ("States.MathAdd($.a, 0)", {"a": -0.5}, 0),
    ("States.MathAdd($.a, 0)", {"a": -2.5}, -2),
    ("States.MathAdd($.a, 0)", {"a": -1.51}, -2),
    ("States.MathAdd(2147483647, -2147483648)", {}, -1),
    # States.StringSplit
    (
        "States.StringSplit($.inputString, $.splitter)",
        {"inputString": "1,2,3,4,5", "splitter": ","},
        ["1", "2", "3", "4", "5"],
    ),
    (
        "States.StringSplit($.inputString, $.splitter)",
        {"inputString": "This.is+a,test=string", "splitter": ".+,="},
        ["This", "is", "a", "test", "string"],
    ),
    ("States.StringSplit($.s, ',')", {"s": ",a,,b,"}, ["a", "b"]),
    ("States.StringSplit($.s, ',')", {"s": ""}, []),
    ("States.StringSplit($.s, '')", {"s": "abc"}, ["abc"]),
    ("States.StringSplit($.s, '\\\\')", {"s": "a\\b"}, ["a", "b"]),
]


@pytest.mark.parametrize(("expr", "value", "expected"), RESULTS, ids=[e[:70] for e, _, _ in RESULTS])
def test_intrinsic_function_returns_the_documented_result(expr: str, value: Any, expected: Any) -> None:
    context = {"Execution": {"Input": {"userId": 7}}}
    result = compile_intrinsic(expr)(value, context)
    assert result == expected
    assert type(result) is type(expected)


def test_every_documented_function_is_implemented() -> None:
    documented = {
        "Format", "StringToJson", "JsonToString", "Array", "ArrayPartition", "ArrayContains", "ArrayRange",
        "ArrayGetItem", "ArrayLength", "ArrayUnique", "Base64Encode", "Base64Decode", "Hash", "JsonMerge",
        "MathRandom", "MathAdd", "StringSplit", "UUID",
    }  # fmt: skip
    assert set(FUNCTIONS) == {f"States.{name}" for name in documented}


def test_array_range_allows_exactly_1000_items() -> None:
    assert run("States.ArrayRange(1, 1000, 1)") == list(range(1, 1001))
    assert run("States.ArrayRange($.a, 1, -1)", {"a": 1000}) == list(range(1000, 0, -1))


def test_base64_and_hash_accept_exactly_10000_characters() -> None:
    text = "a" * 10_000
    assert run("States.Base64Encode($.s)", {"s": text}) == "YWFh" * 3333 + "YQ=="
    assert run("States.Base64Decode($.s)", {"s": "QUFB" * 2500}) == "A" * 7500
    assert run("States.Hash($.s, 'SHA-256')", {"s": text}) == hashlib.sha256(text.encode()).hexdigest()


def test_math_random_is_between_start_inclusive_and_end_exclusive() -> None:
    f = compile_intrinsic("States.MathRandom($.start, $.end)")
    values = {f({"start": 1, "end": 4}, None) for _ in range(300)}
    assert values == {1, 2, 3}
    assert f({"start": 1, "end": 2}, None) == 1


def test_math_random_with_a_seed_repeats_its_value_and_rounds_bounds() -> None:
    seeded = compile_intrinsic("States.MathRandom(1, 1000, $.seed)")
    assert seeded({"seed": 42}, None) == seeded({"seed": 42}, None)
    assert len({seeded({"seed": s}, None) for s in range(20)}) > 1
    assert {run("States.MathRandom(1.4, 2.6)") for _ in range(100)} <= {1, 2}


def test_uuid_returns_a_new_version_4_uuid_every_time() -> None:
    f = compile_intrinsic("States.UUID()")
    a, b = f({}, None), f({}, None)
    assert a != b
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", a)
    assert uuid.UUID(a).version == 4


def test_a_folded_literal_call_returns_a_fresh_container_each_time() -> None:
    f = compile_intrinsic("States.ArrayRange(1, 3, 1)")
    first = f({}, None)
    first.append("mutated")
    assert f({}, None) == [1, 2, 3]


def test_ten_calls_in_one_field_are_allowed() -> None:
    expr = "States.Array(" * 10 + "1" + ")" * 10
    value: Any = 1
    for _ in range(10):
        value = [value]
    assert run(expr) == value


# --------------------------------------------------------------------------- runtime failures

FAILURES = [
    (
        "States.Format($.t, $.v)",
        {"t": 123, "v": 1},
        "States.Format",
        "first argument (template) must be a string",
    ),
    ("States.Format($.t, $.v)", {"t": "Hello {", "v": 1}, "States.Format", "'{' that does not open"),
    ("States.Format($.t, $.v)", {"t": "}", "v": 1}, "States.Format", "'}' that does not close"),
    (
        "States.Format($.t, $.v)",
        {"t": "{} {}", "v": 1},
        "States.Format",
        "2 '{}' placeholder(s) but 1 value(s)",
    ),
    (
        "States.Format('{}', $.o)",
        {"o": {"a": 1}},
        "States.Format",
        "must be a string, number, boolean or null",
    ),
    ("States.Format('{}', $.o)", {"o": [1]}, "States.Format", "got an array"),
    ("States.StringToJson($.s)", {"s": "{bad"}, "States.StringToJson", "not valid JSON text"),
    ("States.StringToJson($.s)", {"s": ""}, "States.StringToJson", "not valid JSON text"),
    ("States.StringToJson($.s)", {"s": "NaN"}, "States.StringToJson", "not valid JSON text"),
    ("States.StringToJson($.s)", {"s": {"a": 1}}, "States.StringToJson", "must be a string, got an object"),
    (
        "States.ArrayPartition($.a, $.n)",
        {"a": [1], "n": 0},
        "States.ArrayPartition",
        "must be a positive integer",
    ),
    (
        "States.ArrayPartition($.a, $.n)",
        {"a": [1], "n": 0.49},
        "States.ArrayPartition",
        "must be a positive integer",
    ),
    (
        "States.ArrayPartition($.a, $.n)",
        {"a": [1], "n": -1},
        "States.ArrayPartition",
        "must be a positive integer",
    ),
    ("States.ArrayPartition($.a, $.n)", {"a": [1], "n": "2"}, "States.ArrayPartition", "must be an integer"),
    (
        "States.ArrayPartition($.a, $.n)",
        {"a": [1], "n": None},
        "States.ArrayPartition",
        "must be an integer, got null",
    ),
    (
        "States.ArrayPartition($.a, 2)",
        {"a": "not-array"},
        "States.ArrayPartition",
        "first argument (array) must be an array",
    ),
    (
        "States.ArrayContains($.a, 1)",
        {"a": {"x": 1}},
        "States.ArrayContains",
        "must be an array, got an object",
    ),
    (
        "States.ArrayRange($.a, $.b, $.c)",
        {"a": 1, "b": 1001, "c": 1},
        "States.ArrayRange",
        "1001 items; at most 1000",
    ),
    ("States.ArrayRange($.a, $.b, $.c)", {"a": 1001, "b": 1, "c": -1}, "States.ArrayRange", "at most 1000"),
    (
        "States.ArrayRange($.a, $.b, $.c)",
        {"a": 1, "b": 10, "c": 0},
        "States.ArrayRange",
        "must be a non-zero integer",
    ),
    ("States.ArrayRange($.a, $.b, $.c)", {"a": 1, "b": 10, "c": 0.49}, "States.ArrayRange", "non-zero"),
    (
        "States.ArrayRange($.a, $.b, $.c)",
        {"a": "a", "b": 5, "c": 1},
        "States.ArrayRange",
        "first argument (first) must be an integer",
    ),
    (
        "States.ArrayGetItem($.a, 3)",
        {"a": [10, 20, 30]},
        "States.ArrayGetItem",
        "index 3 is out of bounds for an array of 3",
    ),
    (
        "States.ArrayGetItem($.a, $.i)",
        {"a": [10], "i": -1},
        "States.ArrayGetItem",
        "must be a non-negative integer",
    ),
    ("States.ArrayGetItem($.a, $.i)", {"a": [10], "i": "1"}, "States.ArrayGetItem", "must be an integer"),
    ("States.ArrayGetItem($.a, 0)", {"a": "not-array"}, "States.ArrayGetItem", "must be an array"),
    ("States.ArrayLength($.a)", {"a": "abc"}, "States.ArrayLength", "must be an array, got the string"),
    ("States.ArrayUnique($.a)", {"a": None}, "States.ArrayUnique", "must be an array, got null"),
    (
        "States.Base64Encode($.s)",
        {"s": "a" * 10_001},
        "States.Base64Encode",
        "at most 10000 characters long, got 10001",
    ),
    ("States.Base64Encode($.s)", {"s": 123}, "States.Base64Encode", "must be a string, got the number 123"),
    ("States.Base64Encode($.s)", {"s": ["x"]}, "States.Base64Encode", "must be a string, got an array"),
    ("States.Base64Decode($.s)", {"s": "A" * 10_001}, "States.Base64Decode", "at most 10000 characters"),
    ("States.Base64Decode($.s)", {"s": "abcde"}, "States.Base64Decode", "not Base64 text"),
    (
        "States.Hash($.s, 'SHA-256')",
        {"s": "a" * 10_001},
        "States.Hash",
        "at most 10000 characters long once stringified",
    ),
    ("States.Hash($.s, 'MD5')", {"s": list(range(3000))}, "States.Hash", "once stringified"),
    (
        "States.Hash('x', $.alg)",
        {"alg": "sha-256"},
        "States.Hash",
        "must be one of MD5, SHA-1, SHA-256, SHA-384, SHA-512",
    ),
    ("States.Hash('x', $.alg)", {"alg": "SHA256"}, "States.Hash", "must be one of"),
    ("States.Hash('x', $.alg)", {"alg": 256}, "States.Hash", "must be one of"),
    (
        "States.JsonMerge($.a, $.b, $.deep)",
        {"a": {}, "b": {}, "deep": True},
        "States.JsonMerge",
        "only the shallow merge",
    ),
    (
        "States.JsonMerge($.a, $.b, $.deep)",
        {"a": {}, "b": {}, "deep": "false"},
        "States.JsonMerge",
        "must be a boolean",
    ),
    (
        "States.JsonMerge($.a, $.b, false)",
        {"a": [1], "b": {}},
        "States.JsonMerge",
        "first argument (object) must be a JSON object",
    ),
    (
        "States.JsonMerge($.a, $.b, false)",
        {"a": {}, "b": "x"},
        "States.JsonMerge",
        "second argument (object) must be a JSON object",
    ),
    (
        "States.MathRandom($.a, $.b)",
        {"a": 1, "b": 1},
        "States.MathRandom",
        "start (1) must be less than the end (1)",
    ),
    ("States.MathRandom($.a, $.b)", {"a": 10, "b": 5}, "States.MathRandom", "must be less than the end"),
    ("States.MathRandom($.a, $.b)", {"a": 1.49, "b": 1.49}, "States.MathRandom", "must be less than the end"),
    ("States.MathRandom($.a, $.b)", {"a": "a", "b": 10}, "States.MathRandom", "must be an integer"),
    (
        "States.MathRandom(1, 10, $.seed)",
        {"seed": "s"},
        "States.MathRandom",
        "third argument (seed) must be a number",
    ),
    ("States.MathAdd($.a, 1)", {"a": "x"}, "States.MathAdd", "first argument (number) must be an integer"),
    ("States.MathAdd($.a, 1)", {"a": True}, "States.MathAdd", "must be an integer, got true"),
    ("States.MathAdd(1, $.b)", {"b": 2**31}, "States.MathAdd", "between -2147483648 and 2147483647"),
    (
        "States.StringSplit($.a, ',')",
        {"a": 1},
        "States.StringSplit",
        "first argument (string) must be a string",
    ),
    (
        "States.StringSplit('a', $.d)",
        {"d": None},
        "States.StringSplit",
        "second argument (delimiters) must be a string",
    ),
]


@pytest.mark.parametrize(
    ("expr", "value", "function", "reason"), FAILURES, ids=[f"{e}-{r}" for e, _, _, r in FAILURES]
)
def test_a_bad_argument_at_run_time_raises_intrinsic_failure_naming_the_function(
    expr: str, value: Any, function: str, reason: str
) -> None:
    with pytest.raises(StatesError) as info:
        compile_intrinsic(expr, field="Parameters.x.$")(value, None)
    assert info.value.error == INTRINSIC_FAILURE == "States.IntrinsicFailure"
    assert info.value.cause.startswith(f"Invalid arguments in {function} for the field 'Parameters.x.$': ")
    assert reason in info.value.cause


def test_a_failing_nested_call_names_the_inner_function() -> None:
    with pytest.raises(StatesError, match=r"Invalid arguments in States\.ArrayGetItem: the index 9"):
        run("States.Format('{}', States.ArrayGetItem($.a, 9))", {"a": [1]})


@pytest.mark.parametrize(
    "expr",
    ["States.Hash($.missing, 'SHA-256')", "States.Base64Encode($.missing)", "States.Array($.a.b.c)"],
)
def test_a_path_argument_that_is_not_found_raises_states_runtime(expr: str) -> None:
    with pytest.raises(Runtime) as info:
        compile_intrinsic(expr, field="p.$")({}, None)
    assert info.value.error == "States.Runtime"
    assert "specified for the field 'p.$' could not be found in the input '{}'" in info.value.cause


def test_a_context_path_argument_reads_the_context_object() -> None:
    f = compile_intrinsic("States.Format('{}:{}', $.name, $$.Execution.Input.suffix)")
    assert f({"name": "job"}, {"Execution": {"Input": {"suffix": "run"}}}) == "job:run"


# --------------------------------------------------------------------------- definition errors

SYNTAX_ERRORS = [
    ("States.Foo()", "unknown intrinsic function 'States.Foo'"),
    ("Format('x')", "unknown intrinsic function 'Format'"),
    ("$.a", "expected a function name"),
    ("States.Array(", "an argument and ')' are missing"),
    ("States.Array(1", "missing ')' to close States.Array("),
    ("States.Array($.a) trailing", "unexpected text after the closing ')'"),
    ("States.Array (1)", "must be followed immediately by '('"),
    ("States.Array(1 2)", "expected ',' or ')'"),
    ("States.Array('a' 'b')", "expected ',' or ')'"),
    ("States.ArrayContains($.arr, )", "missing argument"),
    ("States.Array(, 1)", "missing argument"),
    ("States.Array(1.)", "invalid number"),
    ("States.Array(.5)", "unexpected '.'"),
    ("States.Array(01)", "invalid number"),
    ("States.Array(-)", "invalid number"),
    ("States.Array([1,2])", "unexpected '['"),
    ("States.Array('a\\nb')", "a backslash may only escape ' { } or \\"),
    ("States.Array('abc)", "unterminated string"),
    ("States.Array($.a[)", "missing ')'"),
    ("States.Array(" * 11 + "1" + ")" * 11, "at most 10 intrinsic functions"),
    ("States.ArrayRange(1, 5)", "States.ArrayRange: takes exactly 3 arguments, got 2"),
    ("States.ArrayRange(1, 5, 1, 99)", "States.ArrayRange: takes exactly 3 arguments, got 4"),
    ("States.UUID(1)", "States.UUID: takes exactly 0 arguments, got 1"),
    ("States.MathRandom(1)", "States.MathRandom: takes 2 to 3 arguments, got 1"),
    ("States.Format()", "States.Format: takes at least 1 argument, got 0"),
    ("States.JsonMerge($.a, $.b)", "States.JsonMerge: takes exactly 3 arguments, got 2"),
    (
        "States.MathAdd('a', 1)",
        'States.MathAdd: the first argument (number) must be an integer, got the string "a"',
    ),
    ("States.MathAdd(1, 2147483648)", "between -2147483648 and 2147483647"),
    (
        "States.MathRandom(1, 10, null)",
        "States.MathRandom: the third argument (seed) must be a number, got null",
    ),
    ("States.Base64Encode(123)", "States.Base64Encode: the first argument (string) must be a string"),
    (
        "States.ArrayPartition($.a, 0)",
        "States.ArrayPartition: the second argument (chunk size) must be a positive integer",
    ),
    (
        "States.ArrayPartition('not-array', 2)",
        "States.ArrayPartition: the first argument (array) must be an array",
    ),
    (
        "States.ArrayRange(1, 10, 0)",
        "States.ArrayRange: the third argument (step) must be a non-zero integer",
    ),
    ("States.ArrayRange(1, 1001, 1)", "States.ArrayRange: the range would hold 1001 items"),
    ("States.ArrayGetItem(States.Array(1), 1)", "States.ArrayGetItem: the index 1 is out of bounds"),
    ("States.StringToJson('{')", "States.StringToJson: the argument is not valid JSON text"),
    ("States.Hash('x', 'MD-5')", "States.Hash: the second argument (algorithm) must be one of"),
    ("States.JsonMerge($.a, $.b, true)", "States.JsonMerge: the third argument (deep) must be false"),
    ("States.Format('{} {}', $.a)", "States.Format: the template has 2 '{}' placeholder(s) but 1 value(s)"),
    ("States.Format('Hello {', $.a)", "States.Format: the template has a '{' that does not open"),
    ("States.Format('Hello {{}}', $.a)", "'{' that does not open"),
    ("States.Format('}')", "States.Format: the template has a '}' that does not close"),
    ("States.Format(1)", "States.Format: the first argument (template) must be a string"),
    ("States.Format('{}', States.Array(1))", "States.Format: the second argument (value) must be a string"),
]


@pytest.mark.parametrize(("expr", "reason"), SYNTAX_ERRORS, ids=[e[:60] for e, _ in SYNTAX_ERRORS])
def test_a_definition_that_cannot_work_is_rejected_at_compile_time(expr: str, reason: str) -> None:
    with pytest.raises(IntrinsicSyntaxError) as info:
        compile_intrinsic(expr)
    assert reason in str(info.value)
    assert isinstance(info.value, PathSyntaxError) and isinstance(info.value, ValueError)


def test_a_compile_time_error_quotes_the_expression_and_offending_part() -> None:
    with pytest.raises(IntrinsicSyntaxError) as info:
        compile_intrinsic("States.Array($.a, @)")
    assert str(info.value) == (
        "invalid intrinsic function 'States.Array($.a, @)': unexpected '@'; an argument is a 'string', "
        "a number, true, false, null, a path or a call (at '@)')"
    )


def test_a_non_string_expression_is_rejected() -> None:
    with pytest.raises(IntrinsicSyntaxError, match="must be a string"):
        compile_intrinsic(5)  # type: ignore[arg-type]


IS_INTRINSIC = [
    ("States.Format('x')", True),
    ("States.UUID()", True),
    ("States.Foo(", True),
    ("$.a", False),
    ("States.Format", False),
    ("Format('x')", False),
    ("states.UUID()", False),
    (" States.UUID()", False),
    ("States.UUID ()", False),
    (5, False),
    (None, False),
]


@pytest.mark.parametrize(("value", "expected"), IS_INTRINSIC, ids=[str(v) for v, _ in IS_INTRINSIC])
def test_is_intrinsic_recognises_a_states_function_call(value: Any, expected: bool) -> None:
    assert is_intrinsic(value) is expected


# --------------------------------------------------------------------------- payload templates


def test_parameters_select_values_and_keep_static_fields() -> None:
    raw = {
        "comment": "Example for Parameters.",
        "product": {
            "details": {"color": "blue", "size": "small", "material": "cotton"},
            "availability": "in stock",
            "sku": "2317",
            "cost": "$23",
        },
    }
    template = {
        "comment": "Selecting what I care about.",
        "MyDetails": {
            "size.$": "$.product.details.size",
            "exists.$": "$.product.availability",
            "StaticValue": "foo",
        },
    }
    assert compile_payload(template)(raw, {}) == {
        "comment": "Selecting what I care about.",
        "MyDetails": {"size": "small", "exists": "in stock", "StaticValue": "foo"},
    }


def test_a_template_mixes_paths_context_paths_and_intrinsics() -> None:
    template = {
        "flagged": True,
        "parts": {"first.$": "$.vals[0]", "last3.$": "$.vals[-3:]"},
        "weekday.$": "$$.DayOfWeek",
        "formattedOutput.$": "States.Format('Today is {}', $$.DayOfWeek)",
    }
    build = compile_payload(template, where="Parameters")
    assert build({"flagged": 7, "vals": [0, 10, 20, 30, 40, 50]}, {"DayOfWeek": "TUESDAY"}) == {
        "flagged": True,
        "parts": {"first": 0, "last3": [30, 40, 50]},
        "weekday": "TUESDAY",
        "formattedOutput": "Today is TUESDAY",
    }


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (
            {"foo.$": "States.Format('Your name is {}, we are in the year {}', $.name, 2020)"},
            {"foo": "Your name is Foo, we are in the year 2020"},
        ),
        ({"foo.$": "States.StringToJson($.someString)"}, {"foo": {"number": 20}}),
        ({"foo.$": "States.JsonToString($.someJson)"}, {"foo": '{"name":"Foo","year":2020}'}),
        (
            {"foo.$": "States.Array('Foo', 2020, $.someJson, null)"},
            {"foo": ["Foo", 2020, {"name": "Foo", "year": 2020}, None]},
        ),
    ],
)
def test_intrinsics_in_templates_follow_the_specification_examples(
    template: dict[str, Any], expected: Any
) -> None:
    raw = {
        "name": "Foo",
        "someString": '{"number": 20}',
        "someJson": {"name": "Foo", "year": 2020},
        "zebra": "stripe",
    }
    assert compile_payload(template, where="Parameters")(raw, {}) == expected


def test_arrays_in_templates_are_processed_and_plain_strings_are_never_paths() -> None:
    template = {"items": [{"id.$": "$.id"}, "$.not_a_path", 3, [{"n.$": "$$.n"}]], "s": "$.x"}
    assert compile_payload(template)({"id": 1}, {"n": 2}) == {
        "items": [{"id": 1}, "$.not_a_path", 3, [{"n": 2}]],
        "s": "$.x",
    }


def test_an_indefinite_path_in_a_template_gives_the_list_of_matches() -> None:
    assert compile_payload({"ids.$": "$.items[*].id"})({"items": [{"id": 1}, {"id": 2}]}, {}) == {
        "ids": [1, 2]
    }


def test_static_parts_are_copied_for_every_payload() -> None:
    template = {"static": {"x": [1, {"y": 2}]}, "list": [1, [2]], "v.$": "$.v"}
    build = compile_payload(template)
    first, second = build({"v": 1}, {}), build({"v": 2}, {})
    first["static"]["x"][1]["y"] = "mutated"
    first["list"][1].append("mutated")
    assert second == {"static": {"x": [1, {"y": 2}]}, "list": [1, [2]], "v": 2}
    assert template["static"] == {"x": [1, {"y": 2}]}
    assert compile_payload({"a": {"b": 1}})(None, None) is not compile_payload({"a": {"b": 1}})(None, None)


def test_a_fully_static_template_returns_a_fresh_copy() -> None:
    template = {"a": {"b": [1]}}
    build = compile_payload(template)
    out = build({}, {})
    assert out == template and out is not template and out["a"]["b"] is not template["a"]["b"]


def test_field_order_follows_the_template() -> None:
    build = compile_payload({"b": 1, "a.$": "$.x", "c": {"d": 2}, "e.$": "$.x"})
    assert list(build({"x": 0}, {})) == ["b", "a", "c", "e"]


def test_non_object_templates_are_built_too() -> None:
    assert compile_payload([{"a.$": "$.a"}, 1])({"a": 5}, {}) == [{"a": 5}, 1]
    assert compile_payload("text")({}, {}) == "text"


TEMPLATE_ERRORS = [
    ({"items": [1, 2, {"id.$": "oops"}]}, "Parameters.items[2].id.$: 'oops' is neither a path"),
    ({"a": {"b.$": 5}}, "Parameters.a.b.$: the value of a field ending in '.$' must be a string"),
    ({"a": 1, "a.$": "$.x"}, "Parameters.a.$: the field 'a' is also defined by 'Parameters.a'"),
    ({"a.$": "$.a["}, "Parameters.a.$: invalid JSONPath '$.a[': unterminated '['"),
    (
        {"a.$": "States.Nope()"},
        "Parameters.a.$: invalid intrinsic function 'States.Nope()': unknown intrinsic",
    ),
    (
        {"x": [{"y.$": "States.MathAdd(1)"}]},
        "Parameters.x[0].y.$: States.MathAdd: takes exactly 2 arguments, got 1",
    ),
    ({"a.$": "Format('x')"}, "nor an intrinsic function"),
]


@pytest.mark.parametrize(("template", "message"), TEMPLATE_ERRORS, ids=[m[:40] for _, m in TEMPLATE_ERRORS])
def test_an_invalid_template_raises_path_syntax_error_naming_the_key_path(
    template: Any, message: str
) -> None:
    with pytest.raises(PathSyntaxError) as info:
        compile_payload(template, where="Parameters")
    assert message in str(info.value)


def test_without_where_the_key_path_starts_at_the_template() -> None:
    with pytest.raises(PathSyntaxError, match=r"^a\.b\.\$: "):
        compile_payload({"a": {"b.$": "nope"}})


def test_a_missing_path_in_a_template_raises_states_runtime_naming_the_field() -> None:
    build = compile_payload({"x": {"id.$": "$.id"}}, where="ItemSelector")
    with pytest.raises(Runtime) as info:
        build({"other": 1}, {})
    assert info.value.cause == (
        "The JSONPath '$.id' specified for the field 'ItemSelector.x.id.$' could not be found in the input '{\"other\":1}'"
    )


def test_a_failing_intrinsic_in_a_template_names_the_field() -> None:
    build = compile_payload({"n.$": "States.MathAdd($.a, 1)"}, where="Parameters")
    with pytest.raises(StatesError) as info:
        build({"a": "x"}, {})
    assert info.value.error == "States.IntrinsicFailure"
    assert info.value.cause.startswith("Invalid arguments in States.MathAdd for the field 'Parameters.n.$': ")
