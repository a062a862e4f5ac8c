"""AWS's words for AWS's errors: the error names and causes recorded from real Step Functions
executions, checked through ``distmap execute`` (a DISTRIBUTED Map named ``MapState``).

Recorded AWS causes start with "An error occurred while executing the state 'MapState' (entered
at the event id #2). "; distmap keeps no event history, so the parenthesis is left out.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_asl_distributed import dmap, execute, put_jsonl, reader
from test_asl_execute import machine, task

PREFIX = "An error occurred while executing the state 'MapState'. "


def failing_map(**fields: Any) -> dict[str, Any]:
    return machine(
        {
            "MapState": dmap(
                ItemsPath="$.xs",
                ItemSelector={"id.$": "$$.Map.Item.Value"},
                processor=machine({"T": task("fail_odd", End=True)}),
                **fields,
            )
        }
    )


@pytest.mark.parametrize(
    ("fields", "data", "error", "cause"),
    [
        (
            {"ToleratedFailureCountPath": "$.ToleratedFailureCount"},
            {"ToleratedFailureCount": "NoNumber"},
            "States.Runtime",
            PREFIX + 'The ToleratedFailureCountPath field refers to value "NoNumber" which is not a valid '
            "integer: $.ToleratedFailureCount",
        ),
        (
            {"ToleratedFailureCountPath": "$.ToleratedFailureCount"},
            {"ToleratedFailureCount": -1},
            "States.Runtime",
            PREFIX + "ToleratedFailureCount cannot be negative.",
        ),
        (
            {"ToleratedFailurePercentagePath": "$.ToleratedFailurePercentage"},
            {"ToleratedFailurePercentage": "NoNumber"},
            "States.Runtime",
            PREFIX + 'The ToleratedFailurePercentagePath field refers to value "NoNumber" which is not a '
            "valid float: $.ToleratedFailurePercentage",
        ),
        (
            {"ToleratedFailurePercentagePath": "$.ToleratedFailurePercentage"},
            {"ToleratedFailurePercentage": 100.1},
            "States.Runtime",
            PREFIX + "ToleratedFailurePercentage must be between 0 and 100.",
        ),
        (
            {"MaxConcurrencyPath": "$.MaxConcurrencyValue"},
            {"MaxConcurrencyValue": "NoNumber"},
            "States.Runtime",
            PREFIX + 'The MaxConcurrencyPath field refers to value "NoNumber" which is not a valid integer: '
            "$.MaxConcurrencyValue",
        ),
        (
            {"ToleratedFailureCount": 0},
            {},
            "States.ExceedToleratedFailureThreshold",
            "The specified tolerated failure threshold was exceeded (",
        ),
    ],
)
def test_path_values_and_threshold_use_aws_texts(fields, data, error, cause):
    """A bad *Path value or a breached threshold fails the execution with AWS's error and cause."""
    resp = execute(failing_map(**fields), {"xs": [0, 1, 2, 3], **data})
    assert resp["status"] == "FAILED"
    assert resp["error"] == error
    assert resp["cause"].startswith(cause), resp["cause"]



@pytest.mark.s3
@pytest.mark.parametrize(
    ("max_items", "error", "cause"),
    [
        (1.5, "States.Runtime", PREFIX + 'The MaxItemsPath field refers to value "1.5" which is not a valid '
                                         "integer: $.MaxItems"),
        (-1, "States.ItemReaderFailed", "field MaxItems must be positive"),
    ],
)  # fmt: skip
def test_max_items_path_uses_aws_texts(s3, s3_bucket, max_items, error, cause):
    """MaxItemsPath: a non-integer is States.Runtime, a negative value States.ItemReaderFailed (AWS)."""
    put_jsonl(s3, s3_bucket, "rows.jsonl", [{"id": i} for i in range(5)])
    d = machine({"MapState": dmap(ItemReader=reader(s3_bucket, "rows.jsonl", MaxItemsPath="$.MaxItems"))})
    resp = execute(d, {"MaxItems": max_items})
    assert (resp["status"], resp["error"], resp["cause"]) == ("FAILED", error, cause)


@pytest.mark.s3
def test_catch_on_the_map_sees_the_reader_failure(s3, s3_bucket):
    """A Catch on the Map state sees States.ItemReaderFailed with the reader's cause (here AWS's
    text for a JSON source that is not an array)."""
    s3.put_object(Bucket=s3_bucket, Key="obj.json", Body=b'{"Hello": "world"}')
    d = machine(
        {
            "MapState": dmap(
                ItemReader=reader(s3_bucket, "obj.json", "JSON"),
                Catch=[{"ErrorEquals": ["States.ItemReaderFailed"], "ResultPath": "$.err", "Next": "Done"}],
                End=None,
                Next="Never",
            ),
            "Never": {"Type": "Fail", "Error": "Unexpected"},
            "Done": {"Type": "Succeed"},
        }
    )
    resp = execute(d, {})
    assert resp["status"] == "SUCCEEDED", resp
    err = json.loads(resp["output"])["err"]
    assert err["Error"] == "States.ItemReaderFailed"
    assert err["Cause"].startswith("Attempting to map over non-iterable node. (")
