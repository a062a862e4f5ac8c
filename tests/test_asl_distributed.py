"""DISTRIBUTED Map states inside `distmap execute`: ItemReader from S3, ItemSelector, ItemBatcher,
tolerated failures and their *Path variants, ResultWriter to S3, MapRunArn, output order.

S3 is a moto server on 127.0.0.1 (tests/fixtures_s3.py), reached through the standard AWS env.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_asl_execute import FN, RESOURCES, machine, output, task

import distmap

pytestmark = pytest.mark.s3


def dmap(**fields: Any) -> dict[str, Any]:
    processor = fields.pop("processor", machine({"T": task("echo", End=True)}))
    return {
        "Type": "Map",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            **processor,
        },
        "End": True,
        **fields,
    }


def put_jsonl(s3: Any, bucket: str, key: str, rows: list[Any]) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body="".join(json.dumps(r) + "\n" for r in rows).encode())


def reader(bucket: str, key: str, input_type: str = "JSONL", **config: Any) -> dict[str, Any]:
    return {
        "Resource": "arn:aws:states:::s3:getObject",
        "Parameters": {"Bucket": bucket, "Key": key},
        "ReaderConfig": {"InputType": input_type, **config},
    }


def execute(definition: dict[str, Any], data: Any = None, **kw: Any) -> dict[str, Any]:
    return distmap.execute(definition, data, resources=RESOURCES, state_machine_name="sm", **kw)


def test_items_from_state_input_come_back_in_item_order():
    """Without ItemReader the items come from ItemsPath; the output array is in item order."""
    d = machine(
        {
            "M": dmap(
                ItemsPath="$.xs",
                MaxConcurrency=7,
                ItemSelector={"value.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"},
                processor=machine({"T": task("double", End=True)}),
            )
        }
    )
    xs = list(range(300))
    assert output(execute(d, {"xs": xs})) == [2 * x for x in xs]


def test_distributed_map_runs_on_both_backends(backend):
    """The same DISTRIBUTED Map gives the same output on the local backend and on Ray: children
    run in the engine's workers (the ChildMachine is pickled to them), failures are tolerated."""
    d = machine(
        {
            "M": dmap(
                ItemsPath="$.xs",
                ItemSelector={"id.$": "$$.Map.Item.Value"},
                ToleratedFailureCount=50,
                processor=machine({"T": task("fail_odd", End=True)}),
            )
        }
    )
    out = output(execute(d, {"xs": list(range(100))}, backend=backend))
    assert [o["id"] for o in out[0::2]] == list(range(0, 100, 2))
    assert all(o["Status"] == "FAILED" and o["Error"] == "ValueError" for o in out[1::2])


def test_reader_from_s3_with_dynamic_bucket_and_max_items(s3, s3_bucket):
    """ItemReader s3:getObject takes Parameters paths and MaxItemsPath from the state input; ItemsPath is ignored."""
    put_jsonl(s3, s3_bucket, "in/rows.jsonl", [{"id": i} for i in range(50)])
    rd = {
        "Resource": "arn:aws:states:::s3:getObject",
        "Parameters": {"Bucket.$": "$.bucket", "Key": "in/rows.jsonl"},
        "ReaderConfig": {"InputType": "JSONL", "MaxItemsPath": "$.limit"},
    }
    d = machine({"M": dmap(ItemReader=rd, ItemsPath="$.not_used")})
    out = output(execute(d, {"bucket": s3_bucket, "limit": 10, "not_used": "x"}))
    assert out == [{"id": i} for i in range(10)]


def test_csv_reader_and_item_batcher_with_batch_input(s3, s3_bucket):
    """ItemBatcher gives the child {"Items": [...], "BatchInput": ...}; CSV values are strings."""
    s3.put_object(
        Bucket=s3_bucket, Key="in.csv", Body=b"id,name\n" + b"".join(b"%d,n%d\n" % (i, i) for i in range(7))
    )
    d = machine(
        {
            "M": dmap(
                ItemReader=reader(s3_bucket, "in.csv", "CSV", CSVHeaderLocation="FIRST_ROW"),
                ItemBatcher={"MaxItemsPerBatch": 3, "BatchInput": {"run.$": "$.run"}},
                processor=machine({"T": task("batch_ids", End=True)}),
            )
        }
    )
    out = output(execute(d, {"run": "r1"}))
    assert out == [
        {"ids": ["0", "1", "2"], "input": {"run": "r1"}},
        {"ids": ["3", "4", "5"], "input": {"run": "r1"}},
        {"ids": ["6"], "input": {"run": "r1"}},
    ]


def test_result_writer_output_and_map_run_arn(s3, s3_bucket):
    """With ResultWriter the Map output is {MapRunArn, ResultWriterDetails: {Bucket, Key}} and the
    manifest is at <Prefix>/<run-id>/manifest.json; MapRunArn names the state machine and Label."""
    put_jsonl(s3, s3_bucket, "rows.jsonl", [{"id": i} for i in range(20)])
    d = machine(
        {
            "M": dmap(
                ItemReader=reader(s3_bucket, "rows.jsonl"),
                Label="Fanout",
                ResultWriter={
                    "Resource": "arn:aws:states:::s3:putObject",
                    "Parameters": {"Bucket": s3_bucket, "Prefix": "results"},
                },
            )
        }
    )
    out = output(execute(d, {}))
    arn = out["MapRunArn"]
    assert arn.startswith("arn:aws:states:us-east-1:123456789012:mapRun:sm/Fanout:")
    run_id = arn.rsplit(":", 1)[1]
    assert out["ResultWriterDetails"] == {"Bucket": s3_bucket, "Key": f"results/{run_id}/manifest.json"}
    manifest = json.loads(
        s3.get_object(Bucket=s3_bucket, Key=f"results/{run_id}/manifest.json")["Body"].read()
    )
    assert manifest["MapRunArn"] == arn
    assert sum(1 for _ in manifest["ResultFiles"]["SUCCEEDED"]) >= 1


def test_tolerated_failures_keep_failed_children_in_the_output():
    """Within ToleratedFailureCount the Map succeeds; a failed child appears as its FAILED record."""
    d = machine(
        {
            "M": dmap(
                ItemsPath="$.xs",
                ItemSelector={"id.$": "$$.Map.Item.Value"},
                ToleratedFailureCount=2,
                processor=machine({"T": task("fail_odd", End=True)}),
            )
        }
    )
    out = output(execute(d, {"xs": [0, 1, 2, 3]}))
    assert out[0] == {"id": 0, "ok": True} and out[2] == {"id": 2, "ok": True}
    assert out[1]["Status"] == "FAILED" and out[1]["Error"] == "ValueError" and "odd id 1" in out[1]["Cause"]
    assert out[3]["Status"] == "FAILED"


@pytest.mark.parametrize(
    ("fields", "data", "status", "error"),
    [
        ({"ToleratedFailureCountPath": "$.n"}, {"n": 2}, "SUCCEEDED", None),
        ({"ToleratedFailureCountPath": "$.n"}, {"n": "2"}, "SUCCEEDED", None),  # numeric strings accepted
        ({"ToleratedFailureCountPath": "$.n"}, {"n": 1}, "FAILED", "States.ExceedToleratedFailureThreshold"),
        ({"ToleratedFailureCountPath": "$.n"}, {"n": -1}, "FAILED", "States.Runtime"),
        ({"ToleratedFailureCountPath": "$.n"}, {"n": 1.5}, "FAILED", "States.Runtime"),
        ({"ToleratedFailurePercentagePath": "$.p"}, {"p": 50}, "SUCCEEDED", None),
        (
            {"ToleratedFailurePercentagePath": "$.p"},
            {"p": "49.9"},
            "FAILED",
            "States.ExceedToleratedFailureThreshold",
        ),
        ({"ToleratedFailurePercentagePath": "$.p"}, {"p": 101}, "FAILED", "States.Runtime"),
        ({"ToleratedFailurePercentagePath": "$.p"}, {"p": "lots"}, "FAILED", "States.Runtime"),
        ({"MaxConcurrencyPath": "$.c"}, {"c": -3}, "FAILED", "States.Runtime"),
        ({}, {}, "FAILED", "States.ExceedToleratedFailureThreshold"),  # nothing tolerated by default
    ],
)
def test_tolerance_paths_are_validated_and_applied(fields, data, status, error):
    """*Path tolerances come from the input: bad values are States.Runtime, exceeding them fails the Map."""
    d = machine(
        {
            "M": dmap(
                ItemsPath="$.xs",
                ItemSelector={"id.$": "$$.Map.Item.Value"},
                processor=machine({"T": task("fail_odd", End=True)}),
                **fields,
            )
        }
    )
    resp = execute(d, {"xs": [0, 1, 2, 3], **data})
    assert resp["status"] == status, resp
    assert resp.get("error") == error


def test_threshold_failure_is_catchable():
    """States.ExceedToleratedFailureThreshold can be caught by the Map state's Catch."""
    m = dmap(
        ItemsPath="$.xs",
        ItemSelector={"id.$": "$$.Map.Item.Value"},
        processor=machine({"T": task("fail_odd", End=True)}),
        Catch=[
            {"ErrorEquals": ["States.ExceedToleratedFailureThreshold"], "ResultPath": "$.err", "Next": "H"}
        ],
    )
    m.pop("End")
    m["Next"] = "Done"
    d = machine(
        {"M": m, "Done": {"Type": "Succeed"}, "H": {"Type": "Pass", "OutputPath": "$.err.Error", "End": True}}
    )
    assert output(execute(d, {"xs": [1]})) == "States.ExceedToleratedFailureThreshold"


def test_child_workflow_with_retry_choice_and_several_states():
    """The child workflow is a full state machine (Choice, Task with Retry) run per item by the engine."""
    child = machine(
        {
            "C": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.id", "NumericLessThan": 2, "Next": "Small"}],
                "Default": "Big",
            },
            "Small": {"Type": "Pass", "Result": "small", "End": True},
            "Big": task("double", Parameters={"value.$": "$.id"}, End=True),
        }
    )
    d = machine({"M": dmap(ItemsPath="$.xs", ItemSelector={"id.$": "$$.Map.Item.Value"}, processor=child)})
    assert output(execute(d, {"xs": [0, 1, 2, 3]})) == ["small", "small", 4, 6]


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        (
            {"ItemReader": {"Resource": "arn:aws:states:::s3:listObjectVersions", "Parameters": {"Bucket": "b"}}},
            "States.M.ItemReader.Resource",
            "unsupported ItemReader resource",
        ),
        (
            {"ToleratedFailureCount": 1, "ToleratedFailureCountPath": "$.x"},
            "States.M.ToleratedFailureCount",
            "both",
        ),
        (
            {
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "Parameters": {"Bucket": "my-bucket", "Key": "k"},
                    "ReaderConfig": {"InputType": "XML"},
                }
            },
            "States.M.ItemReader.ReaderConfig.InputType",
            "must be one of",
        ),
    ],
)
def test_invalid_distributed_map_fields(fields, field, reason):
    """Bad Distributed Map fields are definition errors naming the state and field."""
    d = machine({"M": dmap(**fields)})
    with pytest.raises(distmap.ConfigError) as info:
        execute(d, {})
    assert info.value.field == field and reason in info.value.reason, (info.value.field, info.value.reason)


def test_inline_only_map_rejects_distributed_fields():
    """ItemReader / ResultWriter / tolerances are only allowed with Mode DISTRIBUTED."""
    d = machine(
        {
            "M": {
                "Type": "Map",
                "ItemProcessor": machine({"T": task("echo", End=True)}),
                "ToleratedFailureCount": 1,
                "End": True,
            }
        }
    )
    with pytest.raises(distmap.ConfigError, match="DISTRIBUTED"):
        execute(d, {})


_ = FN  # re-exported helper names used above
