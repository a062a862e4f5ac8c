"""JSONata in `distmap execute` and `distmap run`: QueryLanguage, the JSONata fields of each state
type, AWS's field rules, ``$states``, AWS's extension functions and States.QueryEvaluationError.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import load_results
from test_asl_execute import FN, machine, output, run, task

import distmap
from distmap import ConfigError
from distmap.dataflow.jsonata import UNDEFINED, compile_expression
from distmap.dataflow.selectors import compile_selector

JSONATA = {"QueryLanguage": "JSONata"}


def jmachine(states: dict[str, Any], **top: Any) -> dict[str, Any]:
    return machine(states, **JSONATA, **top)


def failed(resp: dict[str, Any]) -> tuple[str, str]:
    assert resp["status"] == "FAILED", resp
    return resp["error"], resp["cause"]


def value(expr: str, states: dict[str, Any] | None = None, variables: dict[str, Any] | None = None) -> Any:
    return compile_expression("{% " + expr + " %}", "Output", "S").value(states or {"input": {}}, variables or {})


# --------------------------------------------------------------------------- expressions


def test_aws_extension_functions_partition_range_hash_parse():
    """$partition, $range (inclusive end), $hash (hex digest) and $parse behave as AWS documents."""
    assert value("$partition([1,2,3,4,5], 2)") == [[1, 2], [3, 4], [5]]
    assert value("$range(0, 10, 5)") == [0, 5, 10]
    assert value('$hash("abc", "SHA-256")') == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert value('$hash("abc", "MD5")') == "900150983cd24fb0d6963f7d28e17f72"
    assert value('$parse("{\\"a\\": [1, 2]}")') == {"a": [1, 2]}


def test_random_with_a_seed_repeats_and_without_one_stays_in_unit_interval():
    """$random(seed) gives the same number for the same seed; $random() a number in [0, 1)."""
    assert value("$random(42)") == value("$random(42)")
    assert value("$random(42)") != value("$random(43)")
    draws = [value("$random()") for _ in range(20)]
    assert all(0 <= d < 1 for d in draws) and len(set(draws)) > 1


def test_uuid_is_a_fresh_version_4_uuid():
    """$uuid() returns a new RFC 4122 version-4 UUID per call."""
    a, b = value("$uuid()"), value("$uuid()")
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", a)
    assert a != b


def test_extension_function_misuse_is_a_query_evaluation_error():
    """A bad argument to an extension function fails with States.QueryEvaluationError naming the field."""
    with pytest.raises(distmap.StatesError) as info:
        value('$hash("abc", "SHA-3")')
    assert info.value.error == "States.QueryEvaluationError"
    assert "specified for the field 'Output' threw an error" in info.value.cause


FAST_CASES = [
    ("$states.input.a", {"a": 1}),
    ("$states.input.a", {"a": [5]}),
    ("$states.input.a", {"a": []}),
    ("$states.input.a.b", {"a": [{"b": 1}, {"b": 2}]}),
    ("$states.input.a.b", {"a": "text"}),
    ("$states.input.missing", {"a": 1}),
    ("$states.input.`odd key`", {"odd key": {"x": None}}),
    ('{"x": $states.input.a, "y": $states.input.missing, "z": "lit", "n": 3}', {"a": {"deep": [1]}}),
    ('{"x": $states.input.a.b}', {"a": [{"b": 1}]}),
    ("$v.k", {}),
    ("$nothing", {}),
]


@pytest.mark.parametrize(("expr", "data"), FAST_CASES, ids=[c[0] for c in FAST_CASES])
def test_fast_path_gives_the_library_result(expr: str, data: Any):
    """The dict-lookup fast path for simple forms returns exactly what the JSONata library returns
    (including undefined, arrays kept whole, and the mapping over arrays it hands to the library)."""
    fast = compile_expression("{% " + expr + " %}", "F")
    slow = compile_expression("{% " + expr + " %}", "F")
    slow._fast = None
    assert fast._fast is not None
    states, variables = {"input": data, "context": {}}, {"v": {"k": [1, 2]}}
    got, want = fast.evaluate(states, variables), slow.evaluate(states, variables)
    assert (got is UNDEFINED) == (want is UNDEFINED)
    if want is not UNDEFINED:
        assert got == want


def test_selector_compiles_once_and_evaluates_per_item_in_either_language():
    """compile_selector gives the same callable shape for JSONPath and JSONata ItemSelectors."""
    ctx = {"Map": {"Item": {"Index": 3, "Value": {"id": 7}}}}
    jp = compile_selector({"id.$": "$$.Map.Item.Value.id", "b.$": "$.b"})
    ja = compile_selector({"id": "{% $states.context.Map.Item.Value.id %}", "b": "{% $states.input.b %}"}, "JSONata")
    assert jp({"b": 1}, ctx) == ja({"b": 1}, ctx) == {"id": 7, "b": 1}


# --------------------------------------------------------------------------- states


def test_pass_output_over_states_input_and_default_output_is_the_input():
    """A JSONata Pass state's Output is evaluated over $states.input; without Output it passes its input."""
    d = jmachine(
        {
            "A": {"Type": "Pass", "Output": {"sum": "{% $states.input.a + $states.input.b %}", "k": "v"}, "Next": "B"},
            "B": {"Type": "Pass", "End": True},
        }
    )
    assert output(run(d, {"a": 1, "b": 2})) == {"sum": 3, "k": "v"}


def test_task_arguments_and_output_over_states_result():
    """Arguments build the task's input; Output sees $states.result (and defaults to it)."""
    d = jmachine(
        {
            "T": task("add", Arguments={"a": "{% $states.input.x %}", "b": 10}, Output="{% $states.result.sum * 2 %}", Next="U"),
            "U": task("echo", Arguments="{% {'wrapped': $states.input} %}", End=True),
        }
    )
    assert output(run(d, {"x": 5})) == {"wrapped": 30}


def test_state_level_jsonata_inside_a_jsonpath_machine():
    """A state may set QueryLanguage JSONata inside a JSONPath machine; the others stay JSONPath."""
    d = machine(
        {
            "A": {"Type": "Pass", "Parameters": {"v.$": "$.x"}, "Next": "B"},
            "B": {"Type": "Pass", "QueryLanguage": "JSONata", "Output": "{% $states.input.v + 1 %}", "End": True},
        }
    )
    assert output(run(d, {"x": 1})) == 2


def test_jsonpath_state_inside_a_jsonata_machine_is_refused():
    """QueryLanguage JSONPath on a state of a JSONata machine is a definition error, as in AWS."""
    d = jmachine({"A": {"Type": "Pass", "QueryLanguage": "JSONPath", "End": True}})
    with pytest.raises(ConfigError) as info:
        run(d, {})
    assert info.value.field == "States.A.QueryLanguage"


FORBIDDEN_IN_JSONATA = [
    ("Pass", "InputPath", "$"),
    ("Pass", "Parameters", {}),
    ("Pass", "ResultPath", "$.r"),
    ("Pass", "OutputPath", "$"),
    ("Pass", "Result", {}),
    ("Task", "ResultSelector", {}),
    ("Task", "TimeoutSecondsPath", "$.t"),
    ("Task", "HeartbeatSecondsPath", "$.t"),
    ("Map", "ItemsPath", "$.xs"),
    ("Map", "MaxConcurrencyPath", "$.m"),
    ("Wait", "SecondsPath", "$.s"),
    ("Wait", "TimestampPath", "$.t"),
    ("Fail", "ErrorPath", "$.e"),
    ("Fail", "CausePath", "$.c"),
]


def _state(kind: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "Pass": {"Type": "Pass", "End": True},
        "Task": task("echo", End=True),
        "Map": {"Type": "Map", "ItemProcessor": machine({"I": {"Type": "Pass", "End": True}}), "End": True},
        "Wait": {"Type": "Wait", "End": True},
        "Fail": {"Type": "Fail"},
        "Choice": {"Type": "Choice", "Choices": [], "Default": "X"},
    }[kind]
    return {**base, **fields}


@pytest.mark.parametrize(("kind", "field", "val"), FORBIDDEN_IN_JSONATA, ids=[f"{k}.{f}" for k, f, _ in FORBIDDEN_IN_JSONATA])
def test_jsonpath_fields_are_refused_in_jsonata_states(kind: str, field: str, val: Any):
    """Each JSONPath-only field in a JSONata state is a ConfigError naming the state and field."""
    d = jmachine({"S": _state(kind, **{field: val})})
    with pytest.raises(ConfigError) as info:
        run(d, {})
    assert info.value.field == f"States.S.{field}"
    assert "is a JSONPath field and is not allowed in a JSONata state" in info.value.reason


FORBIDDEN_IN_JSONPATH = [("Pass", "Output", {}), ("Task", "Arguments", {}), ("Map", "Items", [1])]


@pytest.mark.parametrize(("kind", "field", "val"), FORBIDDEN_IN_JSONPATH, ids=[f"{k}.{f}" for k, f, _ in FORBIDDEN_IN_JSONPATH])
def test_jsonata_fields_are_refused_in_jsonpath_states(kind: str, field: str, val: Any):
    """Arguments, Output and Items in a JSONPath state are a ConfigError telling to set QueryLanguage."""
    d = machine({"S": _state(kind, **{field: val})})
    with pytest.raises(ConfigError) as info:
        run(d, {})
    assert info.value.field == f"States.S.{field}"
    assert "QueryLanguage" in info.value.reason


def test_invalid_expression_and_eval_are_definition_errors():
    """A JSONata syntax error, or a call to $eval, is a ConfigError naming the state and field."""
    bad = jmachine({"S": {"Type": "Pass", "Output": {"a": "{% $states.input[ %}"}, "End": True}})
    with pytest.raises(ConfigError) as info:
        run(bad, {})
    assert info.value.field == "States.S.Output"
    evil = jmachine({"S": {"Type": "Pass", "Output": "{% $eval('1 + 1') %}", "End": True}})
    with pytest.raises(ConfigError) as info:
        run(evil, {})
    assert "$eval is not supported" in info.value.reason


def test_undefined_field_fails_with_aws_cause_naming_the_field_path():
    """A template field that evaluates to nothing fails with States.QueryEvaluationError and AWS's
    cause: the expression, the field path with '/' separators, 'returned nothing (undefined)'."""
    d = jmachine({"T": task("echo", Arguments={"Input": {"loc": "{% $states.input.where %}"}}, End=True)})
    error, cause = failed(run(d, {}))
    assert error == "States.QueryEvaluationError"
    assert cause == (
        "An error occurred while executing the state 'T'. The JSONata expression '$states.input.where' "
        "specified for the field 'Arguments/Input/loc' returned nothing (undefined)."
    )


def test_object_constructor_drops_undefined_members_instead_of_failing():
    """Inside one JSONata object constructor an undefined member is left out (JSONata's rule)."""
    d = jmachine({"S": {"Type": "Pass", "Output": "{% {'a': $states.input.a, 'b': $states.input.b} %}", "End": True}})
    assert output(run(d, {"a": 1})) == {"a": 1}


def test_evaluation_error_is_catchable_with_states_error_output():
    """A JSONata type error is States.QueryEvaluationError, caught by Catch; the catcher's Output
    sees $states.errorOutput."""
    d = jmachine(
        {
            "S": task(
                "echo",
                Arguments="{% 'a' + 1 %}",
                Catch=[{"ErrorEquals": ["States.QueryEvaluationError"], "Output": {"caught": "{% $states.errorOutput.Error %}"}, "Next": "D"}],
                End=True,
            ),
            "D": {"Type": "Pass", "End": True},
        }
    )
    assert output(run(d, {})) == {"caught": "States.QueryEvaluationError"}


def test_catcher_without_output_passes_the_error_output():
    """A JSONata catcher without Output passes {Error, Cause} on."""
    d = jmachine({"S": task("reject", Catch=[{"ErrorEquals": ["States.ALL"], "Next": "D"}], End=True), "D": {"Type": "Pass", "End": True}})
    out = output(run(d, {"id": 1}))
    assert out["Error"] == "OrderRejected" and "rejected" in out["Cause"]


def test_choice_condition_picks_the_first_true_rule_and_its_output():
    """Choice rules with Condition are tried in order; the matched rule's Output becomes the output."""
    d = jmachine(
        {
            "C": {
                "Type": "Choice",
                "Choices": [
                    {"Condition": "{% $states.input.n > 10 %}", "Next": "Big"},
                    {"Condition": "{% $states.input.n > 1 %}", "Next": "Mid", "Output": {"mid": "{% $states.input.n %}"}},
                ],
                "Default": "Small",
            },
            "Big": {"Type": "Pass", "Output": "big", "End": True},
            "Mid": {"Type": "Pass", "End": True},
            "Small": {"Type": "Pass", "Output": "small", "End": True},
        }
    )
    assert output(run(d, {"n": 20})) == "big"
    assert output(run(d, {"n": 5})) == {"mid": 5}
    assert output(run(d, {"n": 0})) == "small"


def test_choice_condition_that_is_not_boolean_fails():
    """A Condition returning a non-boolean fails with States.QueryEvaluationError, naming the type."""
    d = jmachine({"C": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.n %}", "Next": "X"}]}, "X": {"Type": "Succeed"}})
    error, cause = failed(run(d, {"n": 1}))
    assert error == "States.QueryEvaluationError"
    assert "Expected 'boolean', but was 'number'" in cause


def test_choice_rules_with_jsonpath_operators_are_refused_in_jsonata():
    """A JSONata Choice rule takes Condition, not Variable / StringEquals (a definition error)."""
    d = jmachine({"C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "IsNull": True, "Next": "X"}]}, "X": {"Type": "Succeed"}})
    with pytest.raises(ConfigError) as info:
        run(d, {})
    assert info.value.field == "States.C.Choices[0].Variable"


def test_map_items_item_selector_and_max_concurrency_expressions():
    """Map takes Items, an ItemSelector over $states.context.Map.Item and a MaxConcurrency expression."""
    d = jmachine(
        {
            "M": {
                "Type": "Map",
                "Items": "{% $states.input.xs[$ > 1] %}",
                "MaxConcurrency": "{% $states.input.conc %}",
                "ItemSelector": {"i": "{% $states.context.Map.Item.Index %}", "v": "{% $states.context.Map.Item.Value %}", "k": "{% $states.input.k %}"},
                "ItemProcessor": machine({"I": {"Type": "Pass", "Output": "{% $states.input.i * 100 + $states.input.v + $states.input.k %}", "End": True}}),
                "End": True,
            }
        }
    )
    assert output(run(d, {"xs": [1, 2, 3], "conc": "2", "k": 1000})) == [1002, 1103]


def test_map_items_that_are_not_an_array_fail():
    """Items must evaluate to an array (States.QueryEvaluationError)."""
    d = jmachine({"M": {"Type": "Map", "Items": "{% $states.input %}", "ItemProcessor": machine({"I": {"Type": "Pass", "End": True}}), "End": True}})
    assert failed(run(d, {"a": 1}))[0] == "States.QueryEvaluationError"


def test_parallel_arguments_and_output():
    """Parallel: Arguments is each branch's input, Output sees the branches' results."""
    branch = machine({"B": {"Type": "Pass", "Output": "{% $states.input.v * 2 %}", "End": True}})
    d = jmachine({"P": {"Type": "Parallel", "Arguments": {"v": "{% $states.input.x %}"}, "Branches": [branch, branch], "Output": "{% $sum($states.result) %}", "End": True}})
    assert output(run(d, {"x": 4})) == 16


def test_wait_seconds_and_timestamp_expressions():
    """Wait takes Seconds and Timestamp as expressions; a numeric string counts as a number."""
    d = jmachine({"W": {"Type": "Wait", "Seconds": "{% $states.input.s %}", "Next": "T"}, "T": {"Type": "Wait", "Timestamp": "{% $states.input.t %}", "End": True}})
    t0 = time.monotonic()
    assert output(run(d, {"s": "0", "t": "2020-01-01T00:00:00Z"})) == {"s": "0", "t": "2020-01-01T00:00:00Z"}
    assert time.monotonic() - t0 < 5


def test_wait_seconds_of_the_wrong_type_fails():
    """A Seconds expression returning a non-number fails with AWS's unexpected-type cause."""
    d = jmachine({"W": {"Type": "Wait", "Seconds": "{% $states.input.s %}", "End": True}})
    error, cause = failed(run(d, {"s": [1]}))
    assert error == "States.QueryEvaluationError"
    assert "returned an unexpected result type. Expected 'integer', but was 'array'" in cause


def test_fail_error_and_cause_expressions():
    """A JSONata Fail state computes Error and Cause from $states.input."""
    d = jmachine({"F": {"Type": "Fail", "Error": "{% 'E.' & $states.input.code %}", "Cause": "{% $states.input.why %}"}})
    assert failed(run(d, {"code": "Bad", "why": "because"})) == ("E.Bad", "because")


def test_task_timeout_seconds_expression_times_the_task_out():
    """TimeoutSeconds may be an expression; the task is timed out at its value."""
    d = jmachine({"T": task("sleep", TimeoutSeconds="{% $states.input.limit %}", Arguments={"seconds": 3}, End=True)})
    t0 = time.monotonic()
    assert failed(run(d, {"limit": 1}))[0] == "States.Timeout"
    assert time.monotonic() - t0 < 2.5


def test_states_context_holds_the_context_object():
    """$states.context is the context object: State.Name, Execution fields."""
    d = jmachine({"S": {"Type": "Pass", "Output": {"state": "{% $states.context.State.Name %}", "has_id": "{% $exists($states.context.Execution.Id) %}"}, "End": True}})
    assert output(run(d, {})) == {"state": "S", "has_id": True}


# --------------------------------------------------------------------------- DISTRIBUTED Map and distmap run


def test_distributed_map_with_jsonata_item_selector_through_execute():
    """A DISTRIBUTED Map in a JSONata machine: Items, a JSONata ItemSelector (compiled into the
    distmap run job) and Output; every item comes back in order."""
    d = jmachine(
        {
            "M": {
                "Type": "Map",
                "Items": "{% $states.input.xs %}",
                "ItemSelector": {"value": "{% $states.context.Map.Item.Value %}", "i": "{% $states.context.Map.Item.Index %}", "tag": "{% $states.input.tag %}"},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    **machine({"T": task("double", End=True)}),
                },
                "Output": "{% $states.result %}",
                "End": True,
            }
        }
    )
    xs = list(range(200))
    resp = distmap.execute(d, {"xs": xs, "tag": "t"}, resources={"Resources": {FN + "double": "aslfns:double"}}, state_machine_name="sm")
    assert output(resp) == [2 * x for x in xs]


def test_run_job_with_jsonata_item_selector_and_batch_input(job, tmp_path):
    """`distmap run` with QueryLanguage JSONata: ItemSelector over $states.context.Map.Item and
    $states.input, BatchInput over $states.input; every item accounted for."""
    spec = job(
        "itemfns:echo",
        n=10,
        QueryLanguage="JSONata",
        Input={"run": "r1"},
        ItemSelector={"id": "{% $states.context.Map.Item.Value.id %}", "run": "{% $states.input.run %}"},
        ItemBatcher={"MaxItemsPerBatch": 4, "BatchInput": {"run": "{% $states.input.run %}"}},
    )
    res = distmap.run(spec, handle_signals=False)
    out = load_results(res)
    batches = [json.loads(r["Output"]) for r in out["SUCCEEDED"]]
    assert sorted(i["id"] for b in batches for i in b["Items"]) == list(range(10))
    assert all(b["BatchInput"] == {"run": "r1"} and all(i["run"] == "r1" for i in b["Items"]) for b in batches)


def test_run_job_item_selector_evaluation_error_fails_only_that_item(job):
    """A JSONata ItemSelector that fails for one item fails that item (QueryEvaluationError); the rest succeed."""
    rows = [{"id": 1, "n": 2}, {"id": 2, "n": "x"}, {"id": 3, "n": 4}]
    spec = job("itemfns:echo", rows=rows, QueryLanguage="JSONata", ItemSelector={"v": "{% $states.context.Map.Item.Value.n * 10 %}"})
    out = load_results(distmap.run(spec, handle_signals=False))
    assert sorted(json.loads(r["Output"])["v"] for r in out["SUCCEEDED"]) == [20, 40]
    assert [r["Error"] for r in out["FAILED"]] == ["States.QueryEvaluationError"]


def test_run_job_refuses_jsonata_syntax_errors_and_unknown_query_language(job):
    """A bad JSONata ItemSelector, or an unknown QueryLanguage, is a ConfigError naming the field."""
    with pytest.raises(ConfigError) as info:
        distmap.MapJob.from_dict(job("itemfns:echo", QueryLanguage="JSONata", ItemSelector={"v": "{% ( %}"}))
    assert "ItemSelector" in str(info.value)
    with pytest.raises(ConfigError) as info:
        distmap.MapJob.from_dict(job("itemfns:echo", QueryLanguage="JMESPath"))
    assert "QueryLanguage" in str(info.value)


@pytest.mark.s3
def test_distributed_map_jsonata_reader_arguments_batcher_and_tolerance(s3, s3_bucket):
    """In a JSONata DISTRIBUTED Map, ItemReader takes Arguments and ReaderConfig.MaxItems as
    expressions, ItemBatcher takes MaxItemsPerBatch and BatchInput expressions, and
    ToleratedFailureCount an expression; all are evaluated over $states.input."""
    s3.put_object(Bucket=s3_bucket, Key="rows.jsonl", Body="".join(json.dumps({"id": i}) + "\n" for i in range(30)).encode())
    d = jmachine(
        {
            "M": {
                "Type": "Map",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "Arguments": {"Bucket": "{% $states.input.bucket %}", "Key": "rows.jsonl"},
                    "ReaderConfig": {"InputType": "JSONL", "MaxItems": "{% $states.input.limit %}"},
                },
                "ItemBatcher": {"MaxItemsPerBatch": "{% $states.input.per %}", "BatchInput": {"run": "{% $states.input.run %}"}},
                "ToleratedFailureCount": "{% $states.input.tolerate %}",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    **machine({"T": task("batch_ids", End=True)}),
                },
                "End": True,
            }
        }
    )
    resp = distmap.execute(
        d,
        {"bucket": s3_bucket, "limit": 7, "per": 3, "run": "r9", "tolerate": 0},
        resources={"Resources": {FN + "batch_ids": "aslfns:batch_ids"}},
        state_machine_name="sm",
    )
    assert output(resp) == [
        {"ids": [0, 1, 2], "input": {"run": "r9"}},
        {"ids": [3, 4, 5], "input": {"run": "r9"}},
        {"ids": [6], "input": {"run": "r9"}},
    ]


def test_distributed_map_item_reader_parameters_refused_in_jsonata():
    """A JSONata DISTRIBUTED Map's ItemReader needs Arguments, not Parameters."""
    d = jmachine(
        {
            "M": {
                "Type": "Map",
                "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket": "b", "Key": "k"}, "ReaderConfig": {"InputType": "JSONL"}},
                "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, **machine({"T": task("echo", End=True)})},
                "End": True,
            }
        }
    )
    with pytest.raises(ConfigError) as info:
        run(d, {})
    assert "ItemReader" in info.value.field


def test_distributed_map_children_inherit_jsonata():
    """The child workflows of a DISTRIBUTED Map in a JSONata machine are JSONata too (they are
    parsed again in the workers), without repeating QueryLanguage in the ItemProcessor."""
    d = jmachine(
        {
            "M": {
                "Type": "Map",
                "Items": [1, 2],
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    **machine({"I": {"Type": "Pass", "Output": "{% $states.input * 3 %}", "End": True}}),
                },
                "End": True,
            }
        }
    )
    assert output(run(d, {})) == [3, 6]


def test_distributed_map_with_jsonata_item_selector_from_the_cli(tmp_path: Path):
    """`distmap execute` (the command) on a JSONata definition whose DISTRIBUTED Map has a JSONata
    ItemSelector reading a variable: exit code 0 and the exact output."""
    d = jmachine(
        {
            "A": {"Type": "Pass", "Assign": {"factor": 10}, "Next": "M"},
            "M": {
                "Type": "Map",
                "Items": "{% $states.input.xs %}",
                "ItemSelector": {"value": "{% $states.context.Map.Item.Value * $factor %}"},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    **machine({"T": task("double", End=True)}),
                },
                "End": True,
            },
        }
    )
    (tmp_path / "m.asl.json").write_text(json.dumps(d))
    (tmp_path / "resources.json").write_text(json.dumps({"Resources": {FN + "double": "aslfns:double"}}))
    root = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root.parent)])}
    cmd = [sys.executable, "-m", "distmap", "execute", str(tmp_path / "m.asl.json"), "--input", json.dumps({"xs": [1, 2, 3]})]
    proc = subprocess.run([*cmd, "--resources", str(tmp_path / "resources.json")], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(json.loads(proc.stdout)["output"]) == [20, 40, 60]


def test_heartbeat_seconds_expression_must_be_a_positive_number():
    """HeartbeatSeconds may be an expression; a value that is not a positive number fails the Task."""
    d = jmachine({"T": task("echo", HeartbeatSeconds="{% $states.input.hb %}", End=True)})
    assert output(run(d, {"hb": 5})) == {"hb": 5}
    error, cause = failed(run(d, {"hb": "soon"}))
    assert error == "States.QueryEvaluationError" and "Expected 'integer', but was 'string'" in cause
