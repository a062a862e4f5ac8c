"""distmap.dataflow.jsonpath: ASL paths, reference paths and ResultPath.

Expected values come from the Amazon States Language specification and the Step Functions
developer guide where they give examples, and from the Jayway JSONPath documentation (the
library Step Functions uses) for the full JSONPath syntax.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from distmap.dataflow.jsonpath import (
    PathSyntaxError,
    compile_query,
    compile_result_path,
    is_reference_path,
    set_result_path,
)
from distmap.dataflow.jsonpath import PathSyntaxError as EnginePathSyntaxError
from distmap.errors import Runtime, StatesError, error_matches

# The reference-path example of the ASL specification.
SPEC = {"foo": 123, "bar": ["a", "b", "c"], "car": {"cdr": True}}

# The classic JSONPath sample document (Goessner / Jayway README).
B0 = {"category": "reference", "author": "Nigel Rees", "title": "Sayings of the Century", "price": 8.95}
B1 = {"category": "fiction", "author": "Evelyn Waugh", "title": "Sword of Honour", "price": 12.99}
B2 = {
    "category": "fiction",
    "author": "Herman Melville",
    "title": "Moby Dick",
    "isbn": "0-553-21311-3",
    "price": 8.99,
}
B3 = {
    "category": "fiction",
    "author": "J. R. R. Tolkien",
    "title": "The Lord of the Rings",
    "isbn": "0-395-19395-8",
    "price": 22.99,
}
BIKE = {"color": "red", "price": 19.95}
STORE = {"store": {"book": [B0, B1, B2, B3], "bicycle": BIKE}, "expensive": 10}
AUTHORS = ["Nigel Rees", "Evelyn Waugh", "Herman Melville", "J. R. R. Tolkien"]


# --------------------------------------------------------------------------- definite paths

DEFINITE = [
    ("$.foo", SPEC, 123),
    ("$.bar", SPEC, ["a", "b", "c"]),
    ("$.car.cdr", SPEC, True),
    ("$", SPEC, SPEC),
    ("$['car']['cdr']", SPEC, True),
    ('$["car"]["cdr"]', SPEC, True),
    ("$[ 'car' ].cdr", SPEC, True),
    ("$.bar[0]", SPEC, "a"),
    ("$.bar[-1]", SPEC, "c"),
    ("$['bar'][2]", SPEC, "c"),
    ("$.ledgers.branch[0].pending.count", {"ledgers": {"branch": [{"pending": {"count": 4}}]}}, 4),
    ("$.ledgers[0][1][2].foo", {"ledgers": [[0, [0, 1, {"foo": "deep"}]]]}, "deep"),
    ("$['store'][0]['book']", {"store": [{"book": "x"}]}, "x"),
    ("$.store\\.book", {"store.book": 1}, 1),
    ("$.\\stor\\e.boo\\k", {"store": {"book": 2}}, 2),
    ("$.foo.\\.bar", {"foo": {".bar": 3}}, 3),
    ("$.foo\\@bar.baz\\[\\[.\\?pretty", {"foo@bar": {"baz[[": {"?pretty": 4}}}, 4),
    ("$.&Ж中.𐍆", {"&Ж中": {"𐍆": 5}}, 5),
    ("$['a b']['it\\'s']", {"a b": {"it's": 6}}, 6),
    ("$.a.null", {"a": {"null": None}}, None),
    ("$.false", {"false": False}, False),
]


@pytest.mark.parametrize(("path", "doc", "expected"), DEFINITE, ids=[p for p, _, _ in DEFINITE])
def test_a_definite_path_selects_one_value(path: str, doc: Any, expected: Any) -> None:
    query = compile_query(path)
    assert query.is_definite
    assert query.evaluate(doc) == expected
    assert query.find(doc) == (True, expected)


def test_a_double_dollar_path_reads_the_context_object() -> None:
    context = {"Execution": {"Id": "arn:exec", "Input": {"k": [1, 2]}}, "State": {"Name": "S"}}
    assert compile_query("$$.Execution.Id").evaluate({"Execution": "not this"}, context) == "arn:exec"
    assert compile_query("$$").evaluate({}, context) is context
    assert compile_query("$$.Execution.Input.k[1]").evaluate(None, context) == 2
    assert compile_query("$$.Execution.Input.k[*]").evaluate(None, context) == [1, 2]


def test_a_definite_path_returns_the_documents_own_value() -> None:
    doc = {"a": {"b": [1]}}
    assert compile_query("$.a.b").evaluate(doc) is doc["a"]["b"]


# --------------------------------------------------------------------------- indefinite paths

INDEFINITE = [
    ("$.store.book[*].author", STORE, AUTHORS),
    ("$..author", STORE, AUTHORS),
    ("$.store.*", STORE, [[B0, B1, B2, B3], BIKE]),
    ("$.store..price", STORE, [8.95, 12.99, 8.99, 22.99, 19.95]),
    ("$..book[2]", STORE, [B2]),
    ("$..book[-2]", STORE, [B2]),
    ("$..book[0,1]", STORE, [B0, B1]),
    ("$..book[:2]", STORE, [B0, B1]),
    ("$..book[1:2]", STORE, [B1]),
    ("$..book[-2:]", STORE, [B2, B3]),
    ("$..book[2:]", STORE, [B2, B3]),
    ("$..book[::2]", STORE, [B0, B2]),
    ("$..book[::-1]", STORE, [B3, B2, B1, B0]),
    ("$..book[ 1 : 3 ]", STORE, [B1, B2]),
    ("$..book[?(@.isbn)]", STORE, [B2, B3]),
    ("$..book[?(!@.isbn)]", STORE, [B0, B1]),
    ("$.store.book[?(@.price < 10)]", STORE, [B0, B2]),
    ("$..book[?(@.price <= $['expensive'])]", STORE, [B0, B2]),
    ("$..book[?(@.price >= 22.99)]", STORE, [B3]),
    ("$..book[?(@.price != 8.95)]", STORE, [B1, B2, B3]),
    ("$..book[?(@.author =~ /.*REES/i)]", STORE, [B0]),
    ("$..book[?(@.author =~ /Rees/)]", STORE, []),
    ("$..book[?(@.category == 'fiction' && @.price > 10)]", STORE, [B1, B3]),
    ("$..book[?(@.category == 'reference' || @.price > 20)]", STORE, [B0, B3]),
    ("$..book[?(!(@.price < 10))]", STORE, [B1, B3]),
    ("$..book[?((@.price < 9 || @.price > 20) && @.isbn)]", STORE, [B2, B3]),
    (
        '$.store.book[?(@.category == "fiction")].title',
        STORE,
        ["Sword of Honour", "Moby Dick", "The Lord of the Rings"],
    ),
    ("$.store.book[*].isbn", STORE, ["0-553-21311-3", "0-395-19395-8"]),
    ("$.store.bicycle['color','price']", STORE, ["red", 19.95]),
    ("$..[?(@.price > 20)]", STORE, [B3]),
    ("$.a[0,1]", {"a": [1, 2, 3, 4]}, [1, 2]),
    ("$.vals[-3:]", {"vals": [0, 10, 20, 30, 40, 50]}, [30, 40, 50]),
    ("$..*", {"a": {"b": 1}, "c": [2]}, [{"b": 1}, [2], 1, 2]),
    ("$..[0]", {"a": [1, 2], "b": {"c": [3]}}, [1, 3]),
    ("$.*[0]", {"a": [1], "b": "x"}, [1]),
    ("$[*]", [1, {"a": 2}], [1, {"a": 2}]),
    ("$.nums[?(@ > 2)]", {"nums": [1, 2, 3, 4]}, [3, 4]),
    ("$.a[?(@.b.c == 1)].id", {"a": [{"b": {"c": 1}, "id": 7}, {"b": 1, "id": 8}]}, [7]),
    ("$.obj[?(@.x == 1)]", {"obj": {"x": 1}}, [{"x": 1}]),
    ("$.a[?(@.tags[?(@ == 'x')])].n", {"a": [{"tags": ["x"], "n": 1}, {"tags": ["y"], "n": 2}]}, [1, 2]),
    ("$.a[*]", {"a": []}, []),
    ("$.a[*].x", {"a": [{}, {"x": 1}]}, [1]),
    ("$..nothing", STORE, []),
    ("$.a[5:9]", {"a": [1]}, []),
]


@pytest.mark.parametrize(("path", "doc", "expected"), INDEFINITE, ids=[p for p, _, _ in INDEFINITE])
def test_an_indefinite_path_returns_the_list_of_matches_in_document_order(
    path: str, doc: Any, expected: Any
) -> None:
    query = compile_query(path)
    assert not query.is_definite
    assert query.evaluate(doc) == expected


ITEMS = [
    {"v": 1},
    {"v": 1.0},
    {"v": "1"},
    {"v": True},
    {"v": None},
    {"v": "b"},
    {},
    {"v": [1]},
    {"v": {"k": 1}},
]

FILTERS = [
    ("@.v == 1", [0, 1]),
    ("@.v == '1'", [2]),
    ("@.v == true", [3]),
    ("@.v == null", [4]),
    ("@.v != 1", [2, 3, 4, 5, 6, 7, 8]),
    ("@.v > 0", [0, 1]),
    ("@.v < 'c'", [2, 5]),
    ("@.v", [0, 1, 2, 3, 4, 5, 7, 8]),
    ("!@.v", [6]),
    ("@.v == @.v", [0, 1, 2, 3, 4, 5, 7, 8]),
    ("@.v.k == 1", [8]),
    ("@.v[0] == 1", [7]),
    ("@.v =~ /[0-9]/", [2]),
]


@pytest.mark.parametrize(("condition", "indexes"), FILTERS, ids=[c for c, _ in FILTERS])
def test_filter_comparisons_are_typed_without_string_number_coercion(
    condition: str, indexes: list[int]
) -> None:
    assert compile_query(f"$[?({condition})]").evaluate(ITEMS) == [ITEMS[i] for i in indexes]


def test_an_indefinite_path_returns_the_documents_own_values() -> None:
    doc = {"a": [{"b": 1}]}
    assert compile_query("$.a[*]").evaluate(doc)[0] is doc["a"][0]


# --------------------------------------------------------------------------- not found


NOT_FOUND = [
    ("$.missing", {}, "The JSONPath '$.missing' could not be found in the input '{}'"),
    ("$.a.b", {"a": 1}, "The JSONPath '$.a.b' could not be found in the input '{\"a\":1}'"),
    ("$.a[5]", {"a": [1]}, "The JSONPath '$.a[5]' could not be found in the input"),
    ("$.a[0]", {"a": {"0": 1}}, "could not be found"),
    ("$.a.b", {"a": [{"b": 1}]}, "could not be found"),
    ("$.missing[*]", {}, "The JSONPath '$.missing[*]' could not be found"),
    ("$.s[?(@.x)]", {"s": "text"}, "could not be found"),
    ("$.s[1:]", {"s": "text"}, "could not be found"),
    ("$.x", "a string", "in the input '\"a string\"'"),
]


@pytest.mark.parametrize(("path", "doc", "cause"), NOT_FOUND, ids=[p for p, _, _ in NOT_FOUND])
def test_a_path_that_does_not_apply_raises_states_runtime_naming_the_path(
    path: str, doc: Any, cause: str
) -> None:
    with pytest.raises(Runtime) as info:
        compile_query(path).evaluate(doc)
    assert info.value.error == "States.Runtime"
    assert cause in info.value.cause
    assert not error_matches(info.value.error, ["States.ALL"])  # terminal, as in AWS
    assert compile_query(path).find(doc) == (False, None)


def test_a_missing_context_path_says_context_object_and_names_the_field() -> None:
    with pytest.raises(Runtime) as info:
        compile_query("$$.Map.Item.Value", field="ItemSelector.v.$").evaluate({}, {"Map": {}})
    assert info.value.cause == (
        "The JSONPath '$$.Map.Item.Value' specified for the field 'ItemSelector.v.$' "
        "could not be found in the context object '{\"Map\":{}}'"
    )


def test_the_input_quoted_in_a_cause_is_cut_after_2000_characters() -> None:
    with pytest.raises(Runtime) as info:
        compile_query("$.missing").evaluate({"big": "x" * 5000})
    assert info.value.cause.endswith("...'")
    assert len(info.value.cause) < 2100


FIND = [
    ("$.a", {"a": None}, (True, None)),
    ("$.a", {}, (False, None)),
    ("$.a", [], (False, None)),
    ("$.a[*]", {"a": []}, (False, None)),
    ("$.a[*]", {"a": [1]}, (True, [1])),
    ("$.missing[*]", {}, (False, None)),
    ("$..x", {"a": {"x": 0}}, (True, [0])),
]


@pytest.mark.parametrize(("path", "doc", "expected"), FIND, ids=[f"{p}-{d}" for p, d, _ in FIND])
def test_find_reports_presence_without_raising(path: str, doc: Any, expected: tuple[bool, Any]) -> None:
    assert compile_query(path).find(doc) == expected


# --------------------------------------------------------------------------- syntax

SYNTAX_ERRORS = [
    ("", "must start with '$'"),
    ("foo.bar", "must start with '$'"),
    ("$.", "must not end with '.'"),
    ("$..", "must not end with '.' or '..'"),
    ("$.a.", "must not end with '.'"),
    ("$.a b", "bracket notation"),
    ("$.a[", "unterminated '['"),
    ("$.a['x]", "unterminated string"),
    ("$.a['x' 'y']", "expected ']'"),
    ("$[1:2:0]", "slice step must not be 0"),
    ("$.a.length()", "functions such as length() are not supported"),
    ("$.a]", "unexpected ']'"),
    ("$[abc]", "inside '[ ]'"),
    ("$[0,]", "expected an index after ','"),
    ("$['a',]", "expected a quoted name after ','"),
    ("$1", "a step starts with '.' or '['"),  # ($x is the workflow variable x)
    ("$.a\\", "a backslash must escape a character"),
]


@pytest.mark.parametrize(("path", "reason"), SYNTAX_ERRORS, ids=[p or "empty" for p, _ in SYNTAX_ERRORS])
def test_invalid_syntax_raises_path_syntax_error_naming_the_path_and_the_reason(
    path: str, reason: str
) -> None:
    with pytest.raises(PathSyntaxError) as info:
        compile_query(path)
    assert reason in str(info.value)
    assert repr(path) in str(info.value)


def test_the_syntax_error_quotes_the_offending_part() -> None:
    with pytest.raises(PathSyntaxError) as info:
        compile_query("$.ok[1:0:0]")
    assert str(info.value) == "invalid JSONPath '$.ok[1:0:0]': a slice step must not be 0 (at ']')"


def test_a_bare_word_in_a_filter_fails_as_jayway_does() -> None:
    """AWS accepted public definitions comparing with a bare word; Jayway (AWS's JSONPath) cannot
    parse such a filter. The path compiles, and evaluating it raises States.Runtime with Jayway's
    own message (position and character checked against Jayway 2.10)."""
    path = "$..QualityResults[?(@.constraint_status==Failure)]"
    query = compile_query(path)
    with pytest.raises(Runtime) as info:
        query.evaluate({"QualityResults": [{"constraint_status": "Failure"}]})
    assert info.value.cause == (
        f"Invalid path '{path}' : Failed to parse filter: [?(@.constraint_status==Failure)], "
        "error on position: 24, char: F"
    )


@pytest.mark.parametrize(
    "path",
    ["$[?(@.a ==)]", "$[?(@.a == 1]", "$[?(1)]", "$[?(@.a =~ 'x')]", "$[?(@.a == $$.b)]", "$.ok[?(@.a ~ 1)]"],
)
def test_a_filter_that_cannot_be_parsed_is_accepted_and_fails_when_evaluated(path) -> None:
    """Any filter that cannot be parsed is accepted when compiled (as AWS accepts the definition)
    and raises States.Runtime naming the filter when evaluated."""
    query = compile_query(path)
    assert not query.is_definite
    with pytest.raises(Runtime) as info:
        query.evaluate({"ok": [{"a": 1}]})
    filter_text = path[path.index("[?(") :]
    assert info.value.cause.startswith(
        f"Invalid path '{path}' : Failed to parse filter: {filter_text}, error on position: "
    )


def test_a_quoted_word_in_a_filter_is_a_string() -> None:
    """The form Jayway parses: the same filter with the word quoted selects the matching nodes."""
    doc = {"a": {"QualityResults": [{"constraint_status": "Failure", "n": 1}, {"constraint_status": "ok"}]}}
    assert compile_query("$..QualityResults[?(@.constraint_status=='Failure')]").evaluate(doc) == [
        {"constraint_status": "Failure", "n": 1}
    ]


def test_path_syntax_error_is_the_engines_class_and_a_value_error() -> None:
    assert PathSyntaxError is EnginePathSyntaxError
    assert issubclass(PathSyntaxError, ValueError)
    with pytest.raises(PathSyntaxError, match="must be a string"):
        compile_query(5)  # type: ignore[arg-type]


def test_queries_are_compiled_once_and_cached() -> None:
    assert compile_query("$.cached.path") is compile_query("$.cached.path")


REFERENCE = [
    ("$", True),
    ("$$", True),
    ("$.a", True),
    ("$['a'][0]", True),
    ("$.a[-1].b", True),
    ("$$.Map.Item.Value", True),
    ("$.a[*]", False),
    ("$.*", False),
    ("$..a", False),
    ("$.a[0,1]", False),
    ("$.a['x','y']", False),
    ("$.a[1:2]", False),
    ("$.a[?(@.b)]", False),
    ("a", False),
    ("$.a[", False),
    (5, False),
    (None, False),
]


@pytest.mark.parametrize(("path", "expected"), REFERENCE, ids=[str(p) for p, _ in REFERENCE])
def test_is_reference_path_accepts_only_name_and_index_steps(path: Any, expected: bool) -> None:
    assert is_reference_path(path) is expected


# --------------------------------------------------------------------------- ResultPath

TASK_INPUT = {
    "comment": "This is a test of the input and output of a Task state.",
    "details": "Default example",
    "who": "AWS Step Functions",
}
HELLO = "Hello, AWS Step Functions!"
STRINGS_INPUT = {
    "comment": "An input comment.",
    "strings": {"string1": "foo", "string2": "bar", "string3": "baz"},
    "who": "AWS Step Functions",
}

RESULT_PATHS = [
    ("replace", TASK_INPUT, "$", HELLO, HELLO),
    ("discard", TASK_INPUT, None, HELLO, TASK_INPUT),
    ("append", TASK_INPUT, "$.taskresult", HELLO, {**TASK_INPUT, "taskresult": HELLO}),
    (
        "child-node",
        STRINGS_INPUT,
        "$.strings.lambdaresult",
        HELLO,
        {**STRINGS_INPUT, "strings": {**STRINGS_INPUT["strings"], "lambdaresult": HELLO}},
    ),
    ("overwrite", TASK_INPUT, "$.comment", HELLO, {**TASK_INPUT, "comment": HELLO}),
    (
        "catch",
        {"foo": "bar"},
        "$.error",
        {"Error": "Error here"},
        {"foo": "bar", "error": {"Error": "Error here"}},
    ),
    ("spec-overwrite", {"master": {"detail": [1, 2, 3]}}, "$.master.detail", 6, {"master": {"detail": 6}}),
    (
        "spec-chain",
        {"master": {"detail": [1, 2, 3]}},
        "$.master.result.sum",
        6,
        {"master": {"detail": [1, 2, 3], "result": {"sum": 6}}},
    ),
    ("spec-greeting", {"a": 1}, "$.b.greeting", "Hi!", {"a": 1, "b": {"greeting": "Hi!"}}),
    (
        "spec-sum",
        {"title": "Numbers to add", "numbers": {"val1": 3, "val2": 4}},
        "$.sum",
        7,
        {"title": "Numbers to add", "numbers": {"val1": 3, "val2": 4}, "sum": 7},
    ),
    ("index", {"list": [1, 2, 3]}, "$.list[1]", "x", {"list": [1, "x", 3]}),
    ("negative-index", {"list": [1, 2, 3]}, "$.list[-1]", "x", {"list": [1, 2, "x"]}),
    ("into-array-element", {"list": [{"a": 1}]}, "$.list[0].b", 2, {"list": [{"a": 1, "b": 2}]}),
    ("bracket-names", {}, "$['a b']['c']", 1, {"a b": {"c": 1}}),
    ("root-array", [1, 2], "$[0]", 9, [9, 2]),
    ("null-value", {"a": 1}, "$.a", None, {"a": None}),
]


@pytest.mark.parametrize(
    ("name", "doc", "path", "value", "expected"), RESULT_PATHS, ids=[r[0] for r in RESULT_PATHS]
)
def test_result_path_combines_the_result_with_the_input(
    name: str, doc: Any, path: Any, value: Any, expected: Any
) -> None:
    before = copy.deepcopy(doc)
    assert set_result_path(doc, path, value) == expected
    assert doc == before  # the input is never mutated


def test_result_path_copies_only_the_containers_along_the_path() -> None:
    doc = {"keep": {"big": [1, 2, 3]}, "a": {"b": {"c": 1}}}
    out = set_result_path(doc, "$.a.b.d", 2)
    assert out["keep"] is doc["keep"]
    assert out["a"] is not doc["a"] and out["a"]["b"] is not doc["a"]["b"]
    assert doc["a"]["b"] == {"c": 1}


RESULT_PATH_FAILURES = [
    ("foo", "$.x", "'$' is a string, not an object"),
    ([1, 2], "$.x", "'$' is an array, not an object"),
    ({"a": "s"}, "$.a.b", "'$.a' is a string, not an object"),
    ({"a": None}, "$.a.b", "'$.a' is null, not an object"),
    ({"a": [1]}, "$.a.b", "'$.a' is an array, not an object"),
    ({"a": [1]}, "$.a[3]", "index [3] is out of range for '$.a' (length 1)"),
    ({"a": {}}, "$.a[0]", "'$.a' is an object, not an array"),
    ({}, "$.a[0]", "'$.a' does not exist, so index [0] cannot be applied"),
    ({"x y": 1}, "$['x y'].z", "'$['x y']' is a number, not an object"),
]


@pytest.mark.parametrize(
    ("doc", "path", "reason"), RESULT_PATH_FAILURES, ids=[f"{p}-{d}" for d, p, _ in RESULT_PATH_FAILURES]
)
def test_a_result_path_that_cannot_apply_raises_result_path_match_failure(
    doc: Any, path: str, reason: str
) -> None:
    with pytest.raises(StatesError) as info:
        set_result_path(doc, path, 1)
    assert info.value.error == "States.ResultPathMatchFailure"
    assert info.value.cause == f"Unable to apply ResultPath '{path}' to the state input: {reason}"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("$$.x", "context object"),
        ("$.a[*]", "must be a reference path"),
        ("$..a", "must be a reference path"),
        ("a", "must start with '$'"),
        (5, "must be a string or null"),
    ],
)
def test_a_result_path_must_be_a_reference_path_on_the_input(path: Any, reason: str) -> None:
    with pytest.raises(PathSyntaxError, match=re.escape(reason)):
        set_result_path({}, path, 1)


def test_result_paths_are_compiled_once() -> None:
    assert compile_result_path("$.r") is compile_result_path("$.r")
