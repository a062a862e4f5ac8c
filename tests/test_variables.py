"""Workflow variables (``Assign``) in JSONata and JSONPath states: evaluation order, ``$name`` in
JSONPath Parameters / *Path fields / Choice, scope across Map, Parallel, Retry and Catch, names
and size limits.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_asl_execute import machine, output, run, task
from test_jsonata import failed, jmachine

from distmap import ConfigError


def test_jsonata_assign_is_visible_to_later_states():
    """A variable assigned in one state is $name in the states after it."""
    d = jmachine(
        {
            "A": {"Type": "Pass", "Assign": {"user": "{% $states.input.name %}", "n": 3}, "Next": "B"},
            "B": {"Type": "Pass", "Output": "{% $user & '/' & $string($n) %}", "End": True},
        }
    )
    assert output(run(d, {"name": "ada"})) == "ada/3"


def test_assign_values_see_the_variables_as_they_were_when_the_state_began():
    """All values of one Assign, and the state's Output, read the old variables (a swap works)."""
    d = jmachine(
        {
            "A": {"Type": "Pass", "Assign": {"a": 1, "b": 2}, "Next": "B"},
            "B": {"Type": "Pass", "Assign": {"a": "{% $b %}", "b": "{% $a %}"}, "Output": {"a_seen_by_output": "{% $a %}"}, "Next": "C"},
            "C": {"Type": "Pass", "Output": {"a": "{% $a %}", "b": "{% $b %}", "prev": "{% $states.input %}"}, "End": True},
        }
    )
    assert output(run(d, {})) == {"a": 2, "b": 1, "prev": {"a_seen_by_output": 1}}


def test_task_assign_reads_states_result():
    """A Task's Assign is evaluated with $states.result (before Output replaces it)."""
    d = jmachine(
        {
            "T": task("add", Arguments={"a": 1, "b": 2}, Assign={"total": "{% $states.result.sum %}"}, Output={}, Next="P"),
            "P": {"Type": "Pass", "Output": "{% $total %}", "End": True},
        }
    )
    assert output(run(d, {})) == 3


def test_jsonpath_assign_and_variable_paths_in_parameters_input_path_and_choice():
    """JSONPath states assign with 'name.$' paths (their $ is the state's result) and read $name in
    Parameters, InputPath / OutputPath and Choice Variable."""
    d = machine(
        {
            "A": {"Type": "Pass", "Assign": {"cfg.$": "$.config", "fixed": "lit"}, "Next": "B"},
            "B": {"Type": "Pass", "Parameters": {"limit.$": "$cfg.limit", "f.$": "$fixed"}, "Next": "C"},
            "C": {"Type": "Choice", "Choices": [{"Variable": "$cfg.limit", "NumericGreaterThan": 5, "Next": "D"}], "Default": "E"},
            "D": {"Type": "Pass", "InputPath": "$cfg", "OutputPath": "$.limit", "End": True},
            "E": {"Type": "Fail", "Error": "Wrong"},
        }
    )
    assert output(run(d, {"config": {"limit": 9}})) == 9


def test_jsonpath_task_assign_uses_the_result_after_result_selector():
    """In a JSONPath Task, Assign's $ is the result after ResultSelector."""
    d = machine(
        {
            "T": task("add", Parameters={"a": 2, "b": 3}, ResultSelector={"s.$": "$.sum"}, Assign={"got.$": "$.s"}, ResultPath=None, Next="P"),
            "P": {"Type": "Pass", "Parameters": {"got.$": "$got"}, "End": True},
        }
    )
    assert output(run(d, {})) == {"got": 5}


def test_undefined_variable_in_jsonpath_is_a_runtime_error():
    """A $name path to a variable no state assigned fails with States.Runtime naming it."""
    d = machine({"P": {"Type": "Pass", "Parameters": {"v.$": "$nope"}, "End": True}})
    error, cause = failed(run(d, {}))
    assert error == "States.Runtime" and "$nope" in cause


def test_map_iterations_read_outer_variables_and_their_assignments_do_not_leak():
    """Map iterations see the outer variables; what an iteration assigns stays in it (the outer
    value is unchanged after the Map, and no iteration sees another's)."""
    inner = machine(
        {
            "Set": {"Type": "Pass", "Assign": {"x": "{% $states.input %}"}, "Next": "Read"},
            "Read": {"Type": "Pass", "Output": "{% $outer & ':' & $string($x) %}", "End": True},
        }
    )
    d = jmachine(
        {
            "A": {"Type": "Pass", "Assign": {"outer": "o", "x": -1}, "Next": "M"},
            "M": {"Type": "Map", "Items": [1, 2, 3], "ItemProcessor": inner, "Next": "After"},
            "After": {"Type": "Pass", "Output": {"r": "{% $states.input %}", "x": "{% $x %}"}, "End": True},
        }
    )
    assert output(run(d, {})) == {"r": ["o:1", "o:2", "o:3"], "x": -1}


def test_parallel_branches_read_outer_variables_and_their_assignments_do_not_leak():
    """Parallel branches see the outer variables; their assignments do not reach the caller."""
    branch = lambda v: machine({"B": {"Type": "Pass", "Assign": {"shared": v}, "Output": "{% $shared & $base %}", "End": True}})  # noqa: E731
    d = jmachine(
        {
            "A": {"Type": "Pass", "Assign": {"shared": "outer", "base": "!"}, "Next": "P"},
            "P": {"Type": "Parallel", "Branches": [branch("one"), branch("two")], "Next": "After"},
            "After": {"Type": "Pass", "Output": {"r": "{% $states.input %}", "shared": "{% $shared %}"}, "End": True},
        }
    )
    assert output(run(d, {})) == {"r": ["outer!", "outer!"], "shared": "outer"}


def test_retried_state_assigns_once_on_success(tmp_path):
    """Failed attempts assign nothing; the attempt that succeeds assigns (with its own result)."""
    d = jmachine(
        {
            "T": task(
                "flaky",
                Arguments={"dir": str(tmp_path), "fails": 2},
                Retry=[{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 0.01, "MaxAttempts": 3}],
                Assign={"attempts": "{% $states.result.attempts %}"},
                Next="P",
            ),
            "P": {"Type": "Pass", "Output": "{% $attempts %}", "End": True},
        }
    )
    assert output(run(d, {})) == 3


def test_caught_state_skips_its_assign_and_applies_the_catchers():
    """When a Catch handles the error, the state's own Assign is not applied; the catcher's Assign
    is, with $states.errorOutput."""
    d = jmachine(
        {
            "A": {"Type": "Pass", "Assign": {"status": "before"}, "Next": "T"},
            "T": task(
                "reject",
                Assign={"status": "succeeded"},
                Catch=[{"ErrorEquals": ["States.ALL"], "Assign": {"err": "{% $states.errorOutput.Error %}"}, "Next": "P"}],
                End=True,
            ),
            "P": {"Type": "Pass", "Output": {"status": "{% $status %}", "err": "{% $err %}"}, "End": True},
        }
    )
    assert output(run(d, {"id": 1})) == {"status": "before", "err": "OrderRejected"}


def test_jsonpath_catcher_assign_reads_the_error_output():
    """A JSONPath catcher's Assign has the error output as $."""
    d = machine(
        {
            "T": task("reject", Catch=[{"ErrorEquals": ["States.ALL"], "Assign": {"e.$": "$.Error"}, "ResultPath": None, "Next": "P"}], End=True),
            "P": {"Type": "Pass", "Parameters": {"e.$": "$e"}, "End": True},
        }
    )
    assert output(run(d, {"id": 1})) == {"e": "OrderRejected"}


def test_choice_rule_assign_applies_for_the_matched_rule_only():
    """In a Choice, the matched rule's Assign applies; with Default, the state's own Assign."""
    d = jmachine(
        {
            "C": {
                "Type": "Choice",
                "Choices": [{"Condition": "{% $states.input.go %}", "Next": "X", "Assign": {"path": "rule"}}],
                "Default": "X",
                "Assign": {"path": "default"},
            },
            "X": {"Type": "Pass", "Output": "{% $path %}", "End": True},
        }
    )
    assert output(run(d, {"go": True})) == "rule"
    assert output(run(d, {"go": False})) == "default"


@pytest.mark.parametrize("name", ["states", "1st", "has-dash", "x" * 81])
def test_bad_variable_names_are_definition_errors(name: str):
    """A variable name must be an identifier of at most 80 characters and not 'states'."""
    d = jmachine({"A": {"Type": "Pass", "Assign": {name: 1}, "End": True}})
    with pytest.raises(ConfigError) as info:
        run(d, {})
    assert info.value.field.startswith("States.A.Assign")


def test_a_variable_over_256_kib_fails_with_data_limit_exceeded():
    """One variable larger than 256 KiB fails the state with States.DataLimitExceeded."""
    d = jmachine({"A": {"Type": "Pass", "Assign": {"big": "{% $states.input.s %}"}, "End": True}})
    error, cause = failed(run(d, {"s": "x" * (256 * 1024)}))
    assert error == "States.DataLimitExceeded" and "'big'" in cause and "256 KiB" in cause


def test_one_assign_over_256_kib_in_total_fails():
    """The values of one Assign together may not exceed 256 KiB."""
    d = jmachine({"A": {"Type": "Pass", "Assign": {"a": "{% $states.input.s %}", "b": "{% $states.input.s %}"}, "End": True}})
    error, cause = failed(run(d, {"s": "x" * (150 * 1024)}))
    assert error == "States.DataLimitExceeded" and "for one Assign" in cause


def test_all_variables_over_10_mib_fail():
    """The variables of an execution together may not exceed 10 MiB."""
    states: dict[str, Any] = {}
    for i in range(45):
        states[f"S{i}"] = {"Type": "Pass", "Assign": {f"v{i}": "{% $states.input.s %}"}, "Next": f"S{i + 1}"}
    states["S45"] = {"Type": "Succeed"}
    error, cause = failed(run(jmachine(states), {"s": "x" * (250 * 1024)}))
    assert error == "States.DataLimitExceeded" and "10 MiB" in cause


def test_assign_over_the_limit_is_not_caught_by_states_all():
    """States.DataLimitExceeded from Assign is terminal: States.ALL does not retry or catch it."""
    d = jmachine(
        {
            "A": {
                "Type": "Task",
                "Resource": "arn:aws:lambda:us-east-1:123456789012:function:echo",
                "Assign": {"big": "{% $states.input.s %}"},
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "B"}],
                "End": True,
            },
            "B": {"Type": "Succeed"},
        }
    )
    assert failed(run(d, {"s": "x" * (300 * 1024)}))[0] == "States.DataLimitExceeded"


def test_jsonpath_choice_rule_assign_reads_the_effective_input():
    """A JSONPath Choice rule's Assign applies when it matches, with the state's input as $."""
    d = machine(
        {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 1, "Assign": {"seen.$": "$.n"}, "Next": "X"}]},
            "X": {"Type": "Pass", "Parameters": {"seen.$": "$seen"}, "End": True},
        }
    )
    assert output(run(d, {"n": 5})) == {"seen": 5}


@pytest.mark.parametrize(("kind", "field"), [("Fail", "Assign"), ("Fail", "Output"), ("Succeed", "Assign")])
def test_terminal_states_refuse_assign_and_fail_refuses_output(kind: str, field: str):
    """Fail and Succeed states end the execution: Assign on them (and Output on Fail) is a
    definition error, as AWS allows neither."""
    d = jmachine({"F": {"Type": kind, field: {"a": 1}}})
    with pytest.raises(ConfigError) as info:
        run(d, {})
    assert info.value.field == f"States.F.{field}"


def _distributed(selector: dict[str, Any], inner: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "Type": "Map",
        "ItemSelector": selector,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, **inner},
        "End": True,
        **fields,
    }


def test_distributed_map_item_selector_reads_outer_variables_in_jsonata():
    """A DISTRIBUTED Map's JSONata ItemSelector (run in the engine's workers) reads the variables
    of the state machine that runs the Map."""
    inner = machine({"I": {"Type": "Pass", "End": True}})
    d = jmachine(
        {
            "A": {"Type": "Pass", "Assign": {"prefix": "p-"}, "Next": "M"},
            "M": _distributed({"v": "{% $prefix & $string($states.context.Map.Item.Value) %}"}, inner, Items=[1, 2, 3]),
        }
    )
    assert output(run(d, {})) == [{"v": "p-1"}, {"v": "p-2"}, {"v": "p-3"}]


def test_distributed_map_item_selector_reads_outer_variables_in_jsonpath():
    """The same with a JSONPath ItemSelector ('name.$': '$var')."""
    inner = machine({"I": {"Type": "Pass", "End": True}})
    d = machine(
        {
            "A": {"Type": "Pass", "Assign": {"prefix": "p-"}, "Next": "M"},
            "M": _distributed({"v.$": "$$.Map.Item.Value", "p.$": "$prefix"}, inner, ItemsPath="$.xs"),
        }
    )
    assert output(run(d, {"xs": [1, 2]})) == [{"v": 1, "p": "p-"}, {"v": 2, "p": "p-"}]


def test_distributed_map_children_do_not_see_outer_variables():
    """A DISTRIBUTED Map's child workflows start with no variables: a read of an outer one fails
    the child (States.QueryEvaluationError, undefined)."""
    inner = machine({"I": {"Type": "Pass", "Output": "{% $prefix %}", "End": True}})  # inherits JSONata
    d = jmachine(
        {
            "A": {"Type": "Pass", "Assign": {"prefix": "p-"}, "Next": "M"},
            "M": _distributed({"v": "{% $states.context.Map.Item.Value %}"}, inner, Items=[1], ToleratedFailurePercentage=100),
        }
    )
    out = output(run(d, {}))
    assert out[0]["Status"] == "FAILED" and out[0]["Error"] == "States.QueryEvaluationError"
