"""`distmap execute`: whole state machines, checked against the AWS developer guide's rules.

Most cases are a table of (definition, input) -> expected status / output / error. Task
functions live in tests/aslfns.py and are mapped by a resources mapping per test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import distmap
from distmap import ConfigError

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent

FN = "arn:aws:lambda:us-east-1:123456789012:function:"
RESOURCES = {
    "Resources": {
        FN + "echo": "aslfns:echo",
        FN + "add": "aslfns:add",
        FN + "double": "aslfns:double",
        FN + "reject": "aslfns:reject",
        FN + "throttle": "aslfns:throttle",
        FN + "flaky": "aslfns:flaky",
        FN + "sleep": "aslfns:sleep",
        FN + "fail_odd": "aslfns:fail_odd",
        FN + "batch_ids": "aslfns:batch_ids",
    }
}


def machine(states: dict[str, Any], start: str | None = None, **top: Any) -> dict[str, Any]:
    return {"StartAt": start or next(iter(states)), "States": states, **top}


def task(fn: str, **fields: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": FN + fn, **fields}


def run(definition: dict[str, Any], data: Any = None, **kw: Any) -> dict[str, Any]:
    return distmap.execute(definition, data, resources=RESOURCES, **kw)


def output(resp: dict[str, Any]) -> Any:
    assert resp["status"] == "SUCCEEDED", resp
    return json.loads(resp["output"])


# --------------------------------------------------------------------------- data flow

DATA_FLOW = [
    pytest.param(
        machine({"P": {"Type": "Pass", "Result": {"x": 1}, "ResultPath": "$.r", "End": True}}),
        {"a": 1},
        {"a": 1, "r": {"x": 1}},
        id="pass-result-at-result-path",
    ),
    pytest.param(
        machine(
            {
                "P": {
                    "Type": "Pass",
                    "Parameters": {"v.$": "$.a", "name.$": "$$.Execution.Name", "k": 2},
                    "End": True,
                }
            }
        ),
        {"a": [1, 2]},
        {"v": [1, 2], "name": "exec-1", "k": 2},
        id="pass-parameters-with-paths-and-context",
    ),
    pytest.param(
        machine({"P": {"Type": "Pass", "InputPath": "$.inner", "End": True}}),
        {"inner": {"z": 3}, "other": 1},
        {"z": 3},
        id="input-path",
    ),
    pytest.param(
        machine({"P": {"Type": "Pass", "InputPath": None, "End": True}}),
        {"a": 1},
        {},
        id="input-path-null-gives-empty-object",
    ),
    pytest.param(
        machine({"P": {"Type": "Pass", "Result": "ignored", "ResultPath": None, "End": True}}),
        {"a": 1},
        {"a": 1},
        id="result-path-null-keeps-input",
    ),
    pytest.param(
        machine({"P": {"Type": "Pass", "OutputPath": "$.a.b", "End": True}}),
        {"a": {"b": [5]}},
        [5],
        id="output-path",
    ),
    pytest.param(
        machine({"P": {"Type": "Pass", "OutputPath": None, "End": True}}),
        {"a": 1},
        {},
        id="output-path-null",
    ),
    pytest.param(
        machine(
            {
                "T": task(
                    "add",
                    Parameters={"a.$": "$.x", "b.$": "$.y"},
                    ResultSelector={"total.$": "$.sum"},
                    ResultPath="$.result",
                    OutputPath="$.result",
                    End=True,
                )
            }
        ),
        {"x": 2, "y": 40},
        {"total": 42},
        id="task-parameters-selector-resultpath-outputpath",
    ),
    pytest.param(
        machine(
            {
                "P": {
                    "Type": "Pass",
                    "Parameters": {
                        "msg.$": "States.Format('Hello, {}! You have {} items', $.name, States.ArrayLength($.items))",
                        "merged.$": "States.JsonMerge($.a, $.b, false)",
                        "parsed.$": "States.StringToJson($.json)",
                        "sum.$": "States.MathAdd($.n, 5)",
                    },
                    "End": True,
                }
            }
        ),
        {
            "name": "Ana",
            "items": [1, 2, 3],
            "a": {"x": 1, "y": 1},
            "b": {"y": 2},
            "json": '{"k": [1]}',
            "n": 37,
        },
        {"msg": "Hello, Ana! You have 3 items", "merged": {"x": 1, "y": 2}, "parsed": {"k": [1]}, "sum": 42},
        id="intrinsic-functions-in-parameters",
    ),
    pytest.param(
        machine(
            {
                "A": {"Type": "Pass", "Result": 1, "ResultPath": "$.a", "Next": "B"},
                "B": {"Type": "Pass", "Result": 2, "ResultPath": "$.b", "Next": "S"},
                "S": {"Type": "Succeed", "OutputPath": "$.b"},
            }
        ),
        {},
        2,
        id="next-chain-and-succeed",
    ),
    pytest.param(
        machine(
            {
                "W": {"Type": "Wait", "Seconds": 0, "Next": "W2"},
                "W2": {"Type": "Wait", "SecondsPath": "$.s", "Next": "W3"},
                "W3": {"Type": "Wait", "Timestamp": "2020-01-01T00:00:00Z", "End": True},
            }
        ),
        {"s": 0},
        {"s": 0},
        id="wait-seconds-path-and-past-timestamp",
    ),
]


@pytest.mark.parametrize(("definition", "data", "expected"), DATA_FLOW)
def test_data_flow(definition, data, expected):
    """Input/Parameters/ResultSelector/ResultPath/OutputPath and intrinsics shape the data as AWS does."""
    assert output(run(definition, data, name="exec-1")) == expected


# --------------------------------------------------------------------------- choice

CHOICE = machine(
    {
        "C": {
            "Type": "Choice",
            "Choices": [
                {
                    "And": [
                        {"Variable": "$.n", "NumericGreaterThan": 10},
                        {"Not": {"Variable": "$.tag", "StringEquals": "x"}},
                    ],
                    "Next": "Big",
                },
                {"Variable": "$.tag", "IsPresent": True, "Next": "Tagged"},
            ],
            "Default": "Other",
        },
        "Big": {"Type": "Pass", "Result": "big", "End": True},
        "Tagged": {"Type": "Pass", "Result": "tagged", "End": True},
        "Other": {"Type": "Pass", "Result": "other", "End": True},
    }
)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"n": 11, "tag": "a"}, "big"),
        ({"n": 11, "tag": "x"}, "tagged"),
        ({"n": 1}, "other"),
        ({"n": 1, "tag": "x"}, "tagged"),
    ],
)
def test_choice_picks_the_first_matching_rule_else_default(data, expected):
    """Choice evaluates rules in order (And/Not/IsPresent here) and falls back to Default."""
    assert output(run(CHOICE, data)) == expected


def test_choice_without_match_or_default_fails_with_no_choice_matched():
    """No matching rule and no Default: the execution fails with States.NoChoiceMatched."""
    d = machine(
        {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericEquals": 1, "Next": "E"}]},
            "E": {"Type": "Succeed"},
        }
    )
    resp = run(d, {"n": 2})
    assert resp["status"] == "FAILED" and resp["error"] == "States.NoChoiceMatched"


# --------------------------------------------------------------------------- errors


def test_fail_state_sets_error_and_cause():
    """A Fail state ends the execution FAILED with its Error and Cause (or the *Path values)."""
    resp = run(machine({"F": {"Type": "Fail", "Error": "Custom.Bad", "Cause": "because"}}))
    assert (resp["status"], resp["error"], resp["cause"]) == ("FAILED", "Custom.Bad", "because")
    assert "output" not in resp
    resp = run(
        machine({"F": {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}}), {"e": "E.x", "c": "why"}
    )
    assert (resp["error"], resp["cause"]) == ("E.x", "why")


def test_task_exception_name_and_message_become_error_and_cause():
    """An exception in a Task function fails the execution with its class name and message."""
    resp = run(machine({"T": task("reject", End=True)}), {"id": 7})
    assert (resp["status"], resp["error"], resp["cause"]) == ("FAILED", "OrderRejected", "order 7 rejected")


def test_catch_routes_to_next_with_error_at_result_path():
    """A matching catcher sends the raw input, with {Error, Cause} at its ResultPath, to its Next."""
    d = machine(
        {
            "T": task(
                "reject",
                Catch=[
                    {"ErrorEquals": ["Other"], "Next": "Never"},
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "Handled"},
                ],
                End=True,
            ),
            "Never": {"Type": "Fail"},
            "Handled": {"Type": "Pass", "End": True},
        }
    )
    assert output(run(d, {"id": 1})) == {
        "id": 1,
        "err": {"Error": "OrderRejected", "Cause": "order 1 rejected"},
    }


def test_retry_then_succeed_counts_attempts(tmp_path):
    """Retry re-runs a failing Task (MaxAttempts counts retries) and the state succeeds."""
    d = machine(
        {
            "T": task(
                "flaky",
                Retry=[
                    {
                        "ErrorEquals": ["Service.Unavailable"],
                        "IntervalSeconds": 0.01,
                        "MaxAttempts": 3,
                        "BackoffRate": 1.0,
                    }
                ],
                End=True,
            )
        }
    )
    assert output(run(d, {"dir": str(tmp_path), "fails": 2})) == {"attempts": 3}


def test_retry_exhausted_then_catch(tmp_path):
    """When the retrier is exhausted the error goes to Catch."""
    d = machine(
        {
            "T": task(
                "flaky",
                Retry=[{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 0.01, "MaxAttempts": 1}],
                Catch=[{"ErrorEquals": ["Service.Unavailable"], "ResultPath": "$.e", "Next": "C"}],
                End=True,
            ),
            "C": {"Type": "Pass", "OutputPath": "$.e.Error", "End": True},
        }
    )
    assert output(run(d, {"dir": str(tmp_path), "fails": 5})) == "Service.Unavailable"
    assert (tmp_path / "calls").read_text() == "2"


def test_states_all_does_not_catch_states_runtime():
    """A missing path in Parameters is States.Runtime, which States.ALL neither retries nor catches."""
    d = machine(
        {
            "T": task(
                "echo",
                Parameters={"x.$": "$.missing"},
                Retry=[{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 0.01}],
                Catch=[{"ErrorEquals": ["States.ALL"], "Next": "C"}],
                End=True,
            ),
            "C": {"Type": "Succeed"},
        }
    )
    resp = run(d, {"a": 1})
    assert resp["status"] == "FAILED" and resp["error"] == "States.Runtime"
    assert "$.missing" in resp["cause"]


def test_task_timeout_is_states_timeout():
    """A Task running past TimeoutSeconds fails with States.Timeout (catchable)."""
    d = machine(
        {
            "T": task(
                "sleep", TimeoutSeconds=1, Catch=[{"ErrorEquals": ["States.Timeout"], "Next": "C"}], End=True
            ),
            "C": {"Type": "Pass", "Result": "timed out", "End": True},
        }
    )
    t0 = time.monotonic()
    assert output(run(d, {"seconds": 5})) == "timed out"
    assert time.monotonic() - t0 < 4


def test_execution_timeout_is_timed_out():
    """The machine's TimeoutSeconds ends the execution TIMED_OUT with States.Timeout."""
    d = machine({"W": {"Type": "Wait", "Seconds": 30, "End": True}}, TimeoutSeconds=1)
    t0 = time.monotonic()
    resp = run(d)
    assert (resp["status"], resp["error"]) == ("TIMED_OUT", "States.Timeout")
    assert time.monotonic() - t0 < 5


# --------------------------------------------------------------------------- parallel and map


def test_parallel_runs_branches_and_outputs_in_branch_order():
    """Parallel gives each branch the same input and outputs their results in branch order."""
    branch = lambda fn: machine({"T": task(fn, End=True)})  # noqa: E731
    d = machine({"P": {"Type": "Parallel", "Branches": [branch("double"), branch("echo")], "End": True}})
    assert output(run(d, {"value": 21})) == [42, {"value": 21}]


def test_parallel_branch_failure_is_caught_at_the_parallel_state():
    """A failing branch fails the Parallel state with the branch's error, which its Catch handles."""
    d = machine(
        {
            "P": {
                "Type": "Parallel",
                "Branches": [
                    machine({"T": task("throttle", End=True)}),
                    machine({"W": {"Type": "Pass", "End": True}}),
                ],
                "Catch": [{"ErrorEquals": ["Service.Throttled"], "Next": "C"}],
                "End": True,
            },
            "C": {"Type": "Pass", "OutputPath": "$.Cause", "End": True},
        }
    )
    assert output(run(d, {})) == "slow down"


def test_inline_map_item_selector_context_and_order():
    """Inline Map: ItemsPath, ItemSelector with $$.Map.Item.Index/Value, outputs in item order."""
    d = machine(
        {
            "M": {
                "Type": "Map",
                "ItemsPath": "$.xs",
                "MaxConcurrency": 3,
                "ItemSelector": {"value.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index", "k.$": "$.k"},
                "ItemProcessor": machine({"T": task("echo", End=True)}),
                "End": True,
            }
        }
    )
    out = output(run(d, {"xs": [5, 6, 7, 8, 9], "k": "c"}))
    assert out == [{"value": v, "i": i, "k": "c"} for i, v in enumerate([5, 6, 7, 8, 9])]


def test_legacy_iterator_and_parameters_are_accepted():
    """The legacy Map fields Iterator and Parameters work like ItemProcessor and ItemSelector."""
    d = machine(
        {
            "M": {
                "Type": "Map",
                "ItemsPath": "$.xs",
                "Parameters": {"value.$": "$$.Map.Item.Value"},
                "Iterator": machine({"T": task("double", End=True)}),
                "End": True,
            }
        }
    )
    assert output(run(d, {"xs": [1, 2, 3]})) == [2, 4, 6]


def test_map_inside_parallel_inside_map():
    """States nest: a Map whose iterations run a Parallel whose branch runs a Map."""
    inner_map = machine(
        {
            "IM": {
                "Type": "Map",
                "ItemsPath": "$.ys",
                "ItemProcessor": machine({"D": task("double", End=True)}),
                "End": True,
            }
        }
    )
    par = machine(
        {
            "P": {
                "Type": "Parallel",
                "Branches": [inner_map, machine({"E": {"Type": "Pass", "End": True}})],
                "End": True,
            }
        }
    )
    d = machine({"M": {"Type": "Map", "ItemsPath": "$.rows", "ItemProcessor": par, "End": True}})
    out = output(run(d, {"rows": [{"ys": [1, 2]}, {"ys": [3]}]}))
    assert out == [[[2, 4], {"ys": [1, 2]}], [[6], {"ys": [3]}]]


def test_inline_map_iteration_failure_fails_the_map():
    """One failing iteration fails an inline Map with that iteration's error."""
    d = machine(
        {
            "M": {
                "Type": "Map",
                "ItemsPath": "$.xs",
                "ItemSelector": {"id.$": "$$.Map.Item.Value"},
                "ItemProcessor": machine({"T": task("fail_odd", End=True)}),
                "End": True,
            }
        }
    )
    resp = run(d, {"xs": [0, 2, 3]})
    assert resp["status"] == "FAILED" and resp["error"] == "ValueError" and "odd id 3" in resp["cause"]


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("definition", "field", "reason"),
    [
        (machine({"A": {"Type": "Pass", "Next": "Nope"}}), "States.A.Next", "names no state"),
        (
            machine({"A": {"Type": "Pass", "End": True}, "B": {"Type": "Pass", "End": True}}),
            "States.B",
            "unreachable",
        ),
        (machine({"A": {"Type": "Pas", "End": True}}), "States.A.Type", "must be one of"),
        (machine({"A": {"Type": "Pass", "End": True, "Resullt": 1}}), "States.A.Resullt", "did you mean"),
        (machine({"A": {"Type": "Pass"}}), "States.A.Next", "is required"),
        (
            machine(
                {
                    "A": {
                        "Type": "Task",
                        "Resource": FN + "echo",
                        "End": True,
                        "Catch": [{"ErrorEquals": ["States.ALL"]}],
                    }
                }
            ),
            "States.A.Catch[0].Next",
            "is required",
        ),
        (
            machine({"A": {"Type": "Pass", "End": True, "ResultPath": "$.a[*]"}}),
            "States.A.ResultPath",
            "reference path",
        ),
        (machine({"A": {"Type": "Wait", "End": True}}), "States.A.Seconds", "exactly one"),
        ({"StartAt": "X", "States": {"A": {"Type": "Succeed"}}}, "StartAt", "names no state"),
        (
            machine(
                {
                    "A": {
                        "Type": "Parallel",
                        "Branches": [machine({"B": {"Type": "Pass", "Next": "Z"}})],
                        "End": True,
                    }
                }
            ),
            "States.A.Branches[0].States.B.Next",
            "names no state",
        ),
        (machine({"A": {"Type": "Pass", "End": True}}, QueryLanguage="XPath"), "QueryLanguage", "JSONPath or JSONata"),
    ],
)
def test_invalid_definitions_name_the_state_and_field(definition, field, reason):
    """A bad definition raises ConfigError naming the state and field, before anything runs."""
    with pytest.raises(ConfigError) as info:
        run(definition)
    assert info.value.field == field and reason in info.value.reason, (info.value.field, info.value.reason)


def test_unmapped_resources_are_all_named_before_start():
    """execute refuses to start when Task resources are unmapped, and names all of them at once."""
    d = machine(
        {
            "A": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:one", "Next": "B"},
            "B": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:two", "End": True},
        }
    )
    with pytest.raises(ConfigError) as info:
        distmap.execute(d, {}, resources={})
    assert "function:one" in info.value.reason and "function:two" in info.value.reason


# --------------------------------------------------------------------------- response and CLI


def test_response_has_start_sync_execution_shape():
    """The response carries StartSyncExecution's fields with input/output as JSON strings."""
    resp = run(machine({"P": {"Type": "Pass", "End": True}}), {"a": 1}, name="n1", state_machine_name="sm")
    assert resp["executionArn"] == "arn:aws:states:us-east-1:123456789012:execution:sm:n1"
    assert resp["stateMachineArn"] == "arn:aws:states:us-east-1:123456789012:stateMachine:sm"
    assert resp["name"] == "n1" and resp["status"] == "SUCCEEDED"
    assert json.loads(resp["input"]) == {"a": 1} and json.loads(resp["output"]) == {"a": 1}
    assert resp["startDate"] <= resp["stopDate"]
    assert "error" not in resp and "cause" not in resp


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{TESTS}"}
    return subprocess.run(
        [sys.executable, "-m", "distmap", "execute", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_execute_exit_codes_and_output(tmp_path):
    """The CLI prints the response; exit 0 even when the execution FAILED, 2 for a bad definition."""
    (tmp_path / "res.yaml").write_text(json.dumps(RESOURCES))
    (tmp_path / "in.json").write_text('{"id": 3}')
    (tmp_path / "ok.asl.json").write_text(json.dumps(machine({"T": task("echo", End=True)})))
    r = _cli("ok.asl.json", "--input", "@in.json", "--resources", "res.yaml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    resp = json.loads(r.stdout)
    assert resp["status"] == "SUCCEEDED" and json.loads(resp["output"]) == {"id": 3}
    assert resp["stateMachineArn"].endswith(":stateMachine:ok")
    (tmp_path / "bad.json").write_text(json.dumps(machine({"T": task("reject", End=True)})))
    r = _cli("bad.json", "--input", '{"id": 1}', "--resources", "res.yaml", cwd=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["error"] == "OrderRejected"
    (tmp_path / "broken.json").write_text(json.dumps(machine({"T": {"Type": "Pass", "Next": "X"}})))
    r = _cli("broken.json", cwd=tmp_path)
    assert r.returncode == 2 and "States.T.Next" in r.stderr
