"""One data flow: the same rules through ``distmap run`` job files and ``distmap execute``.

Each case runs twice, with the same expectations:

* as a ``distmap run`` job: ItemSelector, the item function, and Catch on ItemProcessor;
* as a ``distmap execute`` definition: a DISTRIBUTED Map over the same items (ItemsPath), the
  same ItemSelector, and a child Task calling the same function, whose Catch goes to a Pass state.

Both go through ``distmap.dataflow`` (JSONPath, templates, intrinsics, ResultPath), so they can
no longer disagree (they used to: a Catch ResultPath on an array input, a template holding both
``a`` and ``a.$``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import load_results

import distmap
from distmap.errors import ConfigError

FN = "arn:aws:lambda:us-east-1:123456789012:function:"
RESOURCES = {"Resources": {FN + name: f"aslfns:{name}" for name in ("echo", "reject", "nan_result")}}
STATE_INPUT = {"runName": "nightly", "limit": 2}

ITEMS = [{"id": 1, "tags": ["a", "b"]}, {"id": 2, "tags": []}]

CASES = [
    pytest.param(
        {"ItemSelector": {"v.$": "$$.Map.Item.Value.id", "i.$": "$$.Map.Item.Index", "run.$": "$.runName"}},
        "echo",
        ITEMS,
        [("ok", {"v": 1, "i": 0, "run": "nightly"}), ("ok", {"v": 2, "i": 1, "run": "nightly"})],
        id="selector-paths-and-context",
    ),
    pytest.param(
        {"ItemSelector": {"s.$": "States.Format('{}-{}', $.runName, $$.Map.Item.Value.id)", "n": 3}},
        "echo",
        ITEMS,
        [("ok", {"s": "nightly-1", "n": 3}), ("ok", {"s": "nightly-2", "n": 3})],
        id="selector-intrinsic-and-static",
    ),
    pytest.param(
        {"ItemSelector": {"firstTag.$": "$$.Map.Item.Value.tags[0]"}},
        "echo",
        ITEMS,
        [
            ("ok", {"firstTag": "a"}),
            (
                "fail",
                "States.Runtime",
                "The JSONPath '$$.Map.Item.Value.tags[0]' specified for the field "
                "'ItemSelector.firstTag.$' could not be found in the context object",
            ),
        ],
        id="selector-path-not-found",
    ),
    pytest.param(
        {"ItemSelector": {"tags.$": "$$.Map.Item.Value.tags[?(@ == 'b')]"}},
        "echo",
        ITEMS,
        [("ok", {"tags": ["b"]}), ("ok", {"tags": []})],
        id="selector-filter",
    ),
    pytest.param(
        {"Catch": [{"ErrorEquals": ["OrderRejected"], "ResultPath": "$.error"}]},
        "reject",
        [{"id": 1}],
        [("ok", {"id": 1, "error": {"Error": "OrderRejected", "Cause": "order 1 rejected"}})],
        id="catch-resultpath-object",
    ),
    pytest.param(
        {"Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error"}]},
        "reject",
        [[1, 2]],
        [
            (
                "fail",
                "States.ResultPathMatchFailure",
                "Unable to apply ResultPath '$.error' to the state input",
            )
        ],
        id="catch-resultpath-on-array",
    ),
    pytest.param(
        {"Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": None}]},
        "reject",
        [{"id": 7}],
        [("ok", {"id": 7})],
        id="catch-resultpath-null",
    ),
    pytest.param(
        {"Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.list[1]"}]},
        "reject",
        [{"list": [0, 0]}],
        [("ok", {"list": [0, {"Error": "OrderRejected", "Cause": "order None rejected"}]})],
        id="catch-resultpath-array-index",
    ),
    pytest.param(
        {},
        "nan_result",
        [{"id": 1}],
        [("fail", "States.Runtime", None)],
        id="result-not-json",
    ),
]


def _check(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g[0] == w[0], (g, w)
        if w[0] == "ok":
            assert g[1] == w[1]
        else:
            assert g[1] == w[1], (g, w)
            if w[2] is not None:
                assert g[2].startswith(w[2]) or w[2] in g[2], (g[2], w[2])


def via_run(tmp_path: Path, fields: dict[str, Any], fn: str, items: list[Any]) -> list[tuple[Any, ...]]:
    src = tmp_path / "items.jsonl"
    src.write_text("".join(json.dumps(i) + "\n" for i in items))
    job: dict[str, Any] = {
        "ItemReader": {"Source": str(src), "ReaderConfig": {"InputType": "JSONL"}},
        "ItemProcessor": {
            "Function": f"aslfns:{fn}",
            **({"Catch": fields["Catch"]} if "Catch" in fields else {}),
        },
        "ResultWriter": {"Destination": str(tmp_path / "out")},
        "ToleratedFailurePercentage": 100,
        "Input": STATE_INPUT,
    }
    if "ItemSelector" in fields:
        job["ItemSelector"] = fields["ItemSelector"]
    res = distmap.run(job, backend="inline", handle_signals=False)
    files = load_results(res)
    by_index: dict[int, tuple[Any, ...]] = {}
    for status, recs in files.items():
        for r in recs:
            index = int(r["Name"].rsplit("-", 1)[1])
            if status == "SUCCEEDED":
                by_index[index] = ("ok", json.loads(r["Output"]))
            else:
                by_index[index] = ("fail", r["Error"], r["Cause"])
    return [by_index[i] for i in sorted(by_index)]


def via_execute(fields: dict[str, Any], fn: str, items: list[Any]) -> list[tuple[Any, ...]]:
    t: dict[str, Any] = {"Type": "Task", "Resource": FN + fn, "End": True}
    states: dict[str, Any] = {"T": t}
    if "Catch" in fields:
        t["Catch"] = [{**c, "Next": "Caught"} for c in fields["Catch"]]
        states["Caught"] = {"Type": "Pass", "End": True}
    m: dict[str, Any] = {
        "Type": "Map",
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                          "StartAt": "T", "States": states},
        "ItemsPath": "$.items",
        "ToleratedFailurePercentage": 100,
        "End": True,
    }  # fmt: skip
    if "ItemSelector" in fields:
        m["ItemSelector"] = fields["ItemSelector"]
    resp = distmap.execute(
        {"StartAt": "M", "States": {"M": m}},
        {**STATE_INPUT, "items": items},
        resources=RESOURCES,
        backend="inline",
    )
    assert resp["status"] == "SUCCEEDED", resp
    out = []
    for o in json.loads(resp["output"]):
        if isinstance(o, dict) and o.get("Status") == "FAILED" and "Error" in o:
            out.append(("fail", o["Error"], o["Cause"]))
        else:
            out.append(("ok", o))
    return out


@pytest.mark.parametrize("fields, fn, items, want", CASES)
def test_run_applies_the_data_flow_rules(tmp_path: Path, fields, fn, items, want):
    """`distmap run`: ItemSelector, Catch ResultPath and result rules as the table says."""
    _check(via_run(tmp_path, fields, fn, items), want)


@pytest.mark.parametrize("fields, fn, items, want", CASES)
def test_execute_applies_the_same_rules(fields, fn, items, want):
    """`distmap execute`: the same table through a DISTRIBUTED Map gives the same outcomes."""
    _check(via_execute(fields, fn, items), want)


def test_template_with_a_field_and_its_path_twin_is_rejected_by_both():
    """A template holding both ``a`` and ``a.$`` is an error in a job file and in a definition."""
    selector = {"a": 1, "a.$": "$.runName"}
    with pytest.raises(ConfigError, match="also defined by"):
        distmap.run({"ItemReader": {"Source": "x.jsonl", "ReaderConfig": {"InputType": "JSONL"}},
                     "ItemProcessor": {"Function": "aslfns:echo"}, "ItemSelector": selector})  # fmt: skip
    with pytest.raises(ConfigError, match="also defined by"):
        via_execute({"ItemSelector": selector}, "echo", [1])


def test_non_finite_task_result_fails_the_task_in_execute():
    """A Task returning Infinity fails with States.Runtime naming where, instead of writing null."""
    d = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": FN + "nan_result", "End": True}}}
    resp = distmap.execute(d, {}, resources=RESOURCES)
    assert resp["status"] == "FAILED"
    assert resp["error"] == "States.Runtime"
    assert "NaN or Infinity at $.ratio" in resp["cause"]
