"""Service integrations in `distmap execute`: lambda:invoke, aws-sdk and optimized integrations
(functions and boto3 against a moto server), states:startExecution, task tokens and activities,
`distmap validate` / `--stub echo`, and an AWS-sample-style Distributed Map end to end.

Task functions live in tests/integrationfns.py; the S3 / SNS / SQS / DynamoDB server is the
session's moto server on 127.0.0.1 (tests/fixtures_s3.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import integrationfns
import pytest
from test_asl_execute import machine

import distmap
from distmap import ConfigError
from distmap.asl.resources import Resources

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
EXAMPLE = ROOT / "examples" / "csv-to-sns"
FN = "arn:aws:lambda:us-east-1:123456789012:function:"
INVOKE = "arn:aws:states:::lambda:invoke"
FUNCTIONS = {
    "Enrich": "integrationfns:enrich",
    "Explode": "integrationfns:explode",
    "NotJson": "integrationfns:not_json",
    "Mutate": "integrationfns:mutate",
    "Throttled": "integrationfns:throttled",
    "Sleep": "integrationfns:sleep",
    "Touch": "integrationfns:touch",
    "ApproveLater": "integrationfns:approve_later",
    "RejectLater": "integrationfns:reject_later",
    "Heartbeats": "integrationfns:heartbeat_then_approve",
    "RecordToken": "integrationfns:record_token",
    "FailWithToken": "integrationfns:fail_with_token",
}


def execute(definition: Any, data: Any = None, resources: Any = None, **kw: Any) -> dict[str, Any]:
    res = resources if resources is not None else {"Functions": FUNCTIONS}
    return distmap.execute(definition, data, resources=res, state_machine_name="sm", **kw)


def output(resp: dict[str, Any]) -> Any:
    assert resp["status"] == "SUCCEEDED", resp
    return json.loads(resp["output"])


def invoke(function: str, payload: Any = "$", resource: str = INVOKE, **fields: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"FunctionName": function}
    if isinstance(payload, str):
        params["Payload.$"] = payload
    else:
        params["Payload"] = payload
    return {"Type": "Task", "Resource": resource, "Parameters": params, "End": True, **fields}


def caught(state: dict[str, Any], errors: list[str] | None = None) -> dict[str, Any]:
    """A machine running ``state`` whose error output ({Error, Cause}) is the execution output."""
    state = {**state, "Catch": [{"ErrorEquals": errors or ["States.ALL"], "Next": "Caught"}]}
    return machine({"S": state, "Caught": {"Type": "Pass", "End": True}})


# --------------------------------------------------------------------------- resources file


def test_resources_file_sections_load_relative_definitions_and_survive_pickling(tmp_path):
    """Functions / StateMachines (paths relative to the file) / Activities load; a pickled copy
    carries the child definitions and imports functions lazily on first use."""
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "child.asl.json").write_text(
        json.dumps(machine({"P": {"Type": "Pass", "End": True}}))
    )
    (tmp_path / "res.yaml").write_text(
        "Functions:\n  Enrich: integrationfns:enrich\n"
        "StateMachines:\n  arn:aws:states:us-east-1:123456789012:stateMachine:Child: defs/child.asl.json\n"
        "Activities:\n  Approve: integrationfns:approve_activity\n"
        "Resources:\n  arn:aws:states:::sns:publish: {boto3: true}\n"
        "  arn:aws:states:::aws-sdk:*: boto3\n"
    )
    res = pickle.loads(pickle.dumps(Resources.load(tmp_path / "res.yaml")))
    assert res.exact("arn:aws:states:::sns:publish") == "boto3"
    assert res.exact("arn:aws:states:::sns:publish.waitForTaskToken") == "boto3"
    assert res.pattern("arn:aws:states:::aws-sdk:s3:getObject") == "boto3"
    key = res.state_machine("arn:aws:states:us-east-1:123456789012:stateMachine:Child")
    assert res.definitions[key]["StartAt"] == "P"
    assert (
        res.activity("arn:aws:states:us-east-1:123456789012:activity:Approve")
        == "integrationfns:approve_activity"
    )
    assert res._resolved == {}
    target, _ = res.lambda_function("Enrich", None, "us-east-1", "123456789012")
    assert res.resolve(target) is integrationfns.enrich


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ("Lambdas:\n  A: m:f\n", "Lambdas", "unknown section"),
        ("Functions:\n  A: not-a-function\n", "Functions.A", "module:function"),
        ("Resources:\n  x: {boto3: false}\n", "Resources.x", "mode"),
        ("Activities:\n  A: boto3\n", "Activities.A", "module:function or echo"),
        ("StateMachines:\n  arn:x: missing.asl.json\n", "StateMachines.arn:x", "cannot read"),
    ],
)
def test_bad_resources_file_entries_are_config_errors(tmp_path, text, field, reason):
    """A bad section, target or state machine path is a ConfigError naming the entry."""
    (tmp_path / "res.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        Resources.load(tmp_path / "res.yaml")
    assert info.value.field == field and reason in info.value.reason, (info.value.field, info.value.reason)


ARN = FN + "Enrich"


@pytest.mark.parametrize(
    ("keys", "name", "qualifier", "expected"),
    [
        (["Enrich"], "Enrich", None, "Enrich"),
        (["Enrich"], ARN, None, "Enrich"),
        (["Enrich"], "123456789012:function:Enrich", None, "Enrich"),
        (["Enrich"], "Enrich:prod", None, "Enrich"),  # an unqualified key serves every qualifier
        (["Enrich"], "Enrich", "prod", "Enrich"),
        ([ARN], "Enrich", None, ARN),  # a name resolves in the caller's region and account
        (["Enrich"], "arn:aws:lambda:eu-west-1:123456789012:function:Enrich", None, None),
        (["Enrich"], "999999999999:function:Enrich", None, None),
        (["Enrich:prod"], "Enrich", None, None),
        (["Enrich:prod"], ARN + ":prod", None, "Enrich:prod"),
        (["Enrich", "Enrich:2"], "Enrich:2", None, "Enrich:2"),  # the qualified key wins
        (["Enrich", "Enrich:2"], "Enrich:3", None, "Enrich"),
        (["Enrich:$LATEST"], "Enrich", None, "Enrich:$LATEST"),
        (["${EnrichArn}"], "${EnrichArn}", None, "${EnrichArn}"),  # template placeholders match exactly
        (["Other"], "Enrich", None, None),
    ],
)
def test_function_names_resolve_the_way_lambda_resolves_them(keys, name, qualifier, expected):
    """Functions keys match by name, partial or full ARN and qualifier, in the caller's region/account."""
    res = Resources.from_data({"Functions": {k: f"mod{i}:fn" for i, k in enumerate(keys)}})
    found = res.lambda_function(name, qualifier, "us-east-1", "123456789012")
    got = None if found is None else keys[int(found[0].split(":")[0][3:])]
    assert got == expected


def test_a_qualifier_that_contradicts_the_function_name_is_rejected():
    """FunctionName 'f:prod' with Qualifier 'dev' is an invalid parameter, as Lambda says."""
    resp = execute(
        caught(
            invoke("Enrich:prod", {"id": 1})
            | {"Parameters": {"FunctionName": "Enrich:prod", "Qualifier": "dev"}}
        )
    )
    assert output(resp)["Error"] == "Lambda.InvalidParameterValueException"


# --------------------------------------------------------------------------- lambda:invoke


def test_lambda_invoke_result_has_aws_shape_and_output_path_selects_the_payload():
    """The task result is Lambda's Invoke response as Step Functions returns it; OutputPath
    $.Payload keeps the function's return value; a numeric qualifier is the executed version."""
    raw = output(execute(machine({"Raw": invoke("Enrich")}), {"id": 3, "name": "ana"}))
    assert list(raw) == ["ExecutedVersion", "Payload", "SdkHttpMetadata", "SdkResponseMetadata", "StatusCode"]
    assert raw["ExecutedVersion"] == "$LATEST" and raw["StatusCode"] == 200
    assert raw["Payload"] == {"id": 3, "name": "ANA"}
    http = raw["SdkHttpMetadata"]
    assert http["HttpStatusCode"] == 200
    assert http["HttpHeaders"]["X-Amz-Executed-Version"] == "$LATEST"
    assert http["HttpHeaders"]["Content-Length"] == str(
        len(json.dumps(raw["Payload"], separators=(",", ":")))
    )
    assert http["AllHttpHeaders"]["Content-Type"] == ["application/json"]
    assert raw["SdkResponseMetadata"]["RequestId"] == http["HttpHeaders"]["x-amzn-RequestId"]
    payload = invoke(FN + "Enrich:$LATEST", OutputPath="$.Payload")
    assert output(execute(machine({"P": payload}), {"id": 3, "name": "ana"})) == {"id": 3, "name": "ANA"}
    versioned = invoke("Enrich:7", ResultSelector={"v.$": "$.ExecutedVersion"})
    assert output(execute(machine({"V": versioned}), {"id": 1})) == {"v": "7"}


def test_lambda_exception_is_error_type_with_lambdas_json_cause():
    """A raising function fails the task with Error = the exception class and Cause = the JSON
    Lambda's Python runtime reports (errorMessage, errorType, requestId, stackTrace)."""
    err = output(execute(caught(invoke("Explode")), {"id": 9}))
    assert err["Error"] == "InvalidOrder"
    cause = json.loads(err["Cause"])
    assert list(cause) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert cause["errorMessage"] == "order 9 is invalid" and cause["errorType"] == "InvalidOrder"
    assert any("integrationfns.py" in line and "in explode" in line for line in cause["stackTrace"])


def test_lambda_errors_drive_retry_and_catch_like_on_aws(tmp_path):
    """Retry on Lambda.TooManyRequestsException re-invokes; States.TaskFailed catches a function error."""
    retrier = {"ErrorEquals": ["Lambda.TooManyRequestsException"], "IntervalSeconds": 0.01, "MaxAttempts": 3}
    out = output(
        execute(
            machine({"T": invoke("Throttled", Retry=[retrier], OutputPath="$.Payload")}),
            {"dir": str(tmp_path), "fails": 2},
        )
    )
    assert out == {"calls": 3}
    err = output(execute(caught(invoke("Explode"), ["States.TaskFailed"]), {"id": 1}))
    assert err["Error"] == "InvalidOrder"


def test_function_gets_a_copy_of_its_event_and_must_return_json():
    """The event goes through JSON (mutations stay inside the function); a non-JSON return value
    fails with Runtime.MarshalError."""
    out = output(execute(machine({"M": invoke("Mutate", ResultPath="$.r")}), {"id": 1}))
    assert "touched" not in out and out["r"]["Payload"] == "ok"
    err = output(execute(caught(invoke("NotJson")), {}))
    assert (
        err["Error"] == "Runtime.MarshalError"
        and "Unable to marshal response" in json.loads(err["Cause"])["errorMessage"]
    )


def test_unknown_function_at_run_time_is_resource_not_found():
    """A FunctionName chosen at run time that no Functions entry serves fails like Lambda does."""
    state = {
        "Type": "Task",
        "Resource": INVOKE,
        "Parameters": {"FunctionName.$": "$.fn", "Payload": {"id": 5}},
        "End": True,
    }
    err = output(execute(caught(state), {"fn": "Nowhere"}))
    assert err["Error"] == "Lambda.ResourceNotFoundException"
    assert "Function not found: arn:aws:lambda:us-east-1:123456789012:function:Nowhere" in err["Cause"]
    assert output(execute(machine({"S": state | {"OutputPath": "$.Payload"}}), {"fn": "Enrich"})) == {
        "id": 5,
        "name": "",
    }


def test_bare_lambda_arn_from_functions_returns_the_payload_alone():
    """A Resource that is a Lambda ARN served by Functions returns the bare payload; its errors
    carry Lambda's JSON cause."""
    assert output(
        execute(machine({"T": {"Type": "Task", "Resource": FN + "Enrich", "End": True}}), {"id": 2})
    ) == {"id": 2, "name": ""}
    err = output(execute(caught({"Type": "Task", "Resource": FN + "Explode", "End": True}), {"id": 4}))
    assert err["Error"] == "InvalidOrder" and json.loads(err["Cause"])["errorMessage"] == "order 4 is invalid"


def test_invocation_type_event_answers_202_at_once_and_runs_the_function(tmp_path):
    """InvocationType Event queues the invocation: StatusCode 202, empty Payload, no waiting."""
    target = tmp_path / "touched"
    state = invoke("Touch", {"path": str(target), "delay": 0.3})
    state["Parameters"]["InvocationType"] = "Event"
    t0 = time.monotonic()
    out = output(execute(machine({"T": state}), {}))
    assert time.monotonic() - t0 < 0.3 + 2
    assert (out["StatusCode"], out["Payload"]) == (202, "")
    deadline = time.monotonic() + 5
    while not target.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert target.read_text() == "done"


def test_lambda_task_past_heartbeat_seconds_is_heartbeat_timeout():
    """A task that cannot send heartbeats fails with States.HeartbeatTimeout after HeartbeatSeconds."""
    err = output(execute(caught(invoke("Sleep", {"seconds": 3}, HeartbeatSeconds=1)), {}))
    assert err["Error"] == "States.HeartbeatTimeout"


@pytest.mark.s3
def test_function_mapped_to_boto3_invokes_real_lambda_and_keeps_its_errors(s3_server):
    """Functions: X: boto3 calls Lambda's Invoke where AWS_ENDPOINT_URL points; the service's
    error keeps Step Functions' name (Lambda.ResourceNotFoundException)."""
    err = output(execute(caught(invoke("Ghost", {})), {}, {"Functions": {"Ghost": "boto3"}}))
    assert err["Error"] == "Lambda.ResourceNotFoundException"
    assert "Function not found" in err["Cause"] and "(Service: AWSLambda; Status Code: 404" in err["Cause"]


# --------------------------------------------------------------------------- services


def test_service_integration_mapped_to_a_function_receives_the_parameters():
    """{function: module:function} runs a fake of the service with the Task's Parameters."""
    res = {"Resources": {"arn:aws:states:::dynamodb:putItem": {"function": "integrationfns:fake_put_item"}}}
    state = {
        "Type": "Task",
        "Resource": "arn:aws:states:::dynamodb:putItem",
        "Parameters": {"TableName": "orders", "Item": {"id": {"S.$": "$.id"}}},
        "End": True,
    }
    assert output(execute(machine({"P": state}), {"id": "7"}, res)) == {
        "stored": {"id": {"S": "7"}},
        "table": "orders",
    }


@pytest.mark.s3
def test_aws_sdk_s3_calls_run_through_boto3_with_sfn_shapes_and_error_names(s3, s3_bucket):
    """aws-sdk:s3 put/get run against the server: bodies are strings, dates ISO strings; a missing
    key fails with S3.NoSuchKeyException (service and error in PascalCase, Exception suffix)."""
    res = {"Resources": {"arn:aws:states:::aws-sdk:*": "boto3"}}
    put = {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:s3:putObject",
        "Parameters": {"Bucket.$": "$.bucket", "Key": "note.txt", "Body.$": "$.text"},
        "ResultPath": "$.put",
        "Next": "Get",
    }
    get = {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
        "Parameters": {"Bucket.$": "$.bucket", "Key.$": "$.key"},
        "End": True,
    }
    out = output(
        execute(
            machine({"Put": put, "Get": get}), {"bucket": s3_bucket, "key": "note.txt", "text": "héllo"}, res
        )
    )
    assert out["Body"] == "héllo" and out["ContentLength"] == len("héllo".encode())
    assert out["LastModified"].endswith("Z") and "ResponseMetadata" not in out
    assert s3.get_object(Bucket=s3_bucket, Key="note.txt")["Body"].read().decode() == "héllo"
    err = output(execute(caught(get), {"bucket": s3_bucket, "key": "missing.txt"}, res))
    assert err["Error"] == "S3.NoSuchKeyException"
    assert "(Service: S3, Status Code: 404, Request ID: " in err["Cause"]


@pytest.mark.s3
def test_dynamodb_optimized_and_aws_sdk_integrations_through_boto3(s3_server):
    """dynamodb:putItem / getItem add SdkHttpMetadata; a failed condition is
    DynamoDB.ConditionalCheckFailedException (optimized) or DynamoDb.… (aws-sdk)."""
    table = f"orders-{uuid.uuid4().hex[:8]}"
    boto3.client("dynamodb").create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    res = {
        "Resources": {
            "arn:aws:states:::dynamodb:*": "boto3",
            "arn:aws:states:::aws-sdk:dynamodb:putItem": "boto3",
        }
    }
    item = {"id": {"S.$": "$.id"}, "total": {"N": "12"}}

    def put(resource: str, **params: Any) -> dict[str, Any]:
        return {
            "Type": "Task",
            "Resource": resource,
            "Parameters": {"TableName": table, "Item": item, **params},
            "End": True,
        }

    put_out = output(execute(machine({"P": put("arn:aws:states:::dynamodb:putItem")}), {"id": "a"}, res))
    assert put_out["SdkHttpMetadata"]["HttpStatusCode"] == 200 and put_out["SdkResponseMetadata"]["RequestId"]
    get = {
        "Type": "Task",
        "Resource": "arn:aws:states:::dynamodb:getItem",
        "Parameters": {"TableName": table, "Key": {"id": {"S.$": "$.id"}}},
        "OutputPath": "$.Item",
        "End": True,
    }
    assert output(execute(machine({"G": get}), {"id": "a"}, res)) == {"id": {"S": "a"}, "total": {"N": "12"}}
    cond = {"ConditionExpression": "attribute_not_exists(id)"}
    err = output(execute(caught(put("arn:aws:states:::dynamodb:putItem", **cond)), {"id": "a"}, res))
    assert err["Error"] == "DynamoDB.ConditionalCheckFailedException"
    assert (
        "(Service: AmazonDynamoDBv2; Status Code: 400; Error Code: ConditionalCheckFailedException"
        in err["Cause"]
    )
    err = output(execute(caught(put("arn:aws:states:::aws-sdk:dynamodb:putItem", **cond)), {"id": "a"}, res))
    assert err["Error"] == "DynamoDb.ConditionalCheckFailedException"


@pytest.mark.s3
def test_sns_publish_and_sqs_send_message_serialise_objects_to_json(s3_server):
    """sns:publish / sqs:sendMessage send a JSON object Message / MessageBody as JSON text and
    return MessageId (+ MD5OfMessageBody) with the SDK metadata."""
    sqs, sns = boto3.client("sqs"), boto3.client("sns")
    queue = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    topic = sns.create_topic(Name=f"t-{uuid.uuid4().hex[:8]}")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    res = {
        "Resources": {
            "arn:aws:states:::sns:publish": "boto3",
            "arn:aws:states:::sqs:sendMessage": {"boto3": True},
        }
    }
    publish = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sns:publish",
        "Parameters": {"TopicArn": topic, "Subject": "hi", "Message.$": "$.order"},
        "ResultPath": "$.published",
        "Next": "Send",
    }
    send = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage",
        "Parameters": {"QueueUrl": queue, "MessageBody.$": "$.order"},
        "ResultPath": "$.sent",
        "End": True,
    }
    out = output(execute(machine({"Publish": publish, "Send": send}), {"order": {"id": 1, "ok": True}}, res))
    assert out["published"]["MessageId"] and out["published"]["SdkHttpMetadata"]["HttpStatusCode"] == 200
    body = '{"id":1,"ok":true}'
    assert out["sent"]["MD5OfMessageBody"] == hashlib.md5(body.encode()).hexdigest()
    bodies = [
        m["Body"]
        for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
    ]
    assert body in bodies
    envelope = next(json.loads(b) for b in bodies if b != body)
    assert json.loads(envelope["Message"]) == {"id": 1, "ok": True} and envelope["Subject"] == "hi"


@pytest.mark.parametrize(
    ("resource", "reason"),
    [
        ("arn:aws:states:::aws-sdk:s3:fetchEverything", "s3 has no action 'fetchEverything'"),
        ("arn:aws:states:::glue:startJobRun.sync", ".sync waits for a job"),
        ("my-custom-resource", "AWS service integrations only"),
    ],
)
def test_boto3_mode_refuses_calls_it_cannot_make_before_starting(resource, reason):
    """boto3 mode is checked up front: unknown actions, .sync jobs, non-AWS resources."""
    d = machine({"T": {"Type": "Task", "Resource": resource, "End": True}})
    with pytest.raises(ConfigError) as info:
        execute(d, {}, {"Resources": {resource: "boto3"}})
    assert info.value.field == "States.T" and reason in info.value.reason, info.value.reason


@pytest.mark.parametrize(
    ("state", "field", "reason"),
    [
        ({"Resource": INVOKE, "Parameters": {"Payload": {}}}, "States.T.Parameters.FunctionName", "required"),
        (
            {"Resource": INVOKE, "Parameters": {"FunctionName": "f", "Bogus": 1}},
            "States.T.Parameters.Bogus",
            "not a parameter",
        ),
        (
            {"Resource": INVOKE + ".sync", "Parameters": {"FunctionName": "f"}},
            "States.T.Resource",
            "does not support .sync",
        ),
        ({"Resource": FN + "f.waitForTaskToken"}, "States.T.Resource", "takes no .waitForTaskToken"),
        (
            {"Resource": "arn:aws:states:::aws-sdk:s3:getObject.sync"},
            "States.T.Resource",
            "only .waitForTaskToken",
        ),
        (
            {"Resource": "arn:aws:states:::states:startExecution.sync", "Parameters": {"Input": {}}},
            "States.T.Parameters.StateMachineArn",
            "required",
        ),
    ],
)
def test_integration_definition_errors_name_the_state_and_field(state, field, reason):
    """Resources and Parameters Step Functions would reject are definition errors."""
    with pytest.raises(ConfigError) as info:
        execute(machine({"T": {"Type": "Task", "End": True, **state}}), {})
    assert info.value.field == field and reason in info.value.reason, (info.value.field, info.value.reason)


# --------------------------------------------------------------------------- startExecution

CHILD = machine(
    {
        "Work": {
            "Type": "Pass",
            "Parameters": {"doubled.$": "States.MathAdd($.n, $.n)", "execution.$": "$$.Execution.Name"},
            "End": True,
        }
    }
)
FAILING_CHILD = machine({"Boom": {"Type": "Fail", "Error": "Child.Broke", "Cause": "on purpose"}})
CHILD_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:Child"


def child_resources(tmp_path: Path) -> Path:
    (tmp_path / "child.asl.json").write_text(json.dumps(CHILD))
    (tmp_path / "failing.asl.json").write_text(json.dumps(FAILING_CHILD))
    (tmp_path / "touch.asl.json").write_text(
        json.dumps(machine({"T": invoke("Touch", OutputPath="$.Payload")}))
    )
    res = {
        "Functions": FUNCTIONS,
        "StateMachines": {
            CHILD_ARN: "child.asl.json",
            "Failing": "failing.asl.json",
            "Toucher": "touch.asl.json",
        },
    }
    (tmp_path / "res.json").write_text(json.dumps(res))
    return tmp_path / "res.json"


def start(pattern: str = "", arn: str = CHILD_ARN, **fields: Any) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::states:startExecution" + pattern,
        "Parameters": {"StateMachineArn": arn, "Input.$": "$", "Name": f"run-{uuid.uuid4().hex[:8]}"},
        "End": True,
        **fields,
    }


def test_start_execution_sync_gives_output_text_and_sync2_gives_json(tmp_path):
    """.sync returns DescribeExecution's fields with Input/Output as JSON text; .sync:2 as JSON."""
    res = child_resources(tmp_path)
    d = machine(
        {
            "A": start(".sync") | {"ResultPath": "$.sync", "End": None, "Next": "B"},
            "B": start(".sync:2", ResultPath="$.sync2"),
        }
    )
    d["States"]["A"].pop("End")
    out = output(execute(d, {"n": 21}, res))
    sync, sync2 = out["sync"], out["sync2"]
    assert list(sync) == [
        "ExecutionArn", "Input", "InputDetails", "Name", "Output", "OutputDetails",
        "StartDate", "StateMachineArn", "Status", "StopDate",
    ]  # fmt: skip
    assert sync["Status"] == "SUCCEEDED" and sync["StateMachineArn"] == CHILD_ARN
    assert sync["ExecutionArn"] == f"arn:aws:states:us-east-1:123456789012:execution:Child:{sync['Name']}"
    assert json.loads(sync["Output"]) == {"doubled": 42, "execution": sync["Name"]}
    assert json.loads(sync["Input"]) == {"n": 21}
    assert sync2["Output"] == {"doubled": 42, "execution": sync2["Name"]} and sync2["Input"]["n"] == 21


def test_start_execution_async_returns_the_arn_and_the_child_still_runs(tmp_path):
    """Without .sync the Task answers {ExecutionArn, StartDate, Sdk*Metadata} at once; execute
    returns after the child has finished."""
    res = child_resources(tmp_path)
    target = tmp_path / "child-ran"
    t = start(arn="Toucher")
    out = output(execute(machine({"S": t}), {"path": str(target), "delay": 0.3}, res))
    assert sorted(out) == ["ExecutionArn", "SdkHttpMetadata", "SdkResponseMetadata", "StartDate"]
    assert out["ExecutionArn"].startswith("arn:aws:states:us-east-1:123456789012:execution:Toucher:run-")
    assert target.read_text() == "done"


def test_failed_child_fails_a_sync_task_with_task_failed_and_its_description(tmp_path):
    """A child that fails makes the .sync Task fail with States.TaskFailed; Cause is the child's
    DescribeExecution JSON with its Error and Cause."""
    res = child_resources(tmp_path)
    err = output(execute(caught(start(".sync", arn="Failing")), {"n": 1}, res))
    assert err["Error"] == "States.TaskFailed"
    cause = json.loads(err["Cause"])
    assert (cause["Status"], cause["Error"], cause["Cause"]) == ("FAILED", "Child.Broke", "on purpose")


def test_unmapped_state_machine_at_run_time_does_not_exist(tmp_path):
    """A StateMachineArn chosen at run time that StateMachines does not map fails like AWS does."""
    res = child_resources(tmp_path)
    state = start(".sync")
    state["Parameters"] = {"StateMachineArn.$": "$.arn"}
    err = output(execute(caught(state), {"arn": CHILD_ARN + "Nope"}, res))
    assert err["Error"] == "StepFunctions.StateMachineDoesNotExistException"


# --------------------------------------------------------------------------- callbacks and activities


def callback(
    function: str, timeout: int | None = None, heartbeat: int | None = None, **payload: Any
) -> dict[str, Any]:
    state = invoke(
        function,
        {"token.$": "$$.Task.Token", "id.$": "$.id", **payload},
        resource=INVOKE + ".waitForTaskToken",
    )
    if timeout:
        state["TimeoutSeconds"] = timeout
    if heartbeat:
        state["HeartbeatSeconds"] = heartbeat
    return state


def test_wait_for_task_token_result_is_what_send_task_success_sends():
    """lambda:invoke.waitForTaskToken passes $$.Task.Token in the payload; the task's result is
    the output of send_task_success, not the function's return value."""
    assert output(execute(machine({"T": callback("ApproveLater")}), {"id": 4})) == {"approved": 4}


def test_send_task_failure_fails_the_task_with_its_error_and_cause():
    """send_task_failure(token, error, cause) fails the waiting task; Catch sees that error."""
    err = output(execute(caught(callback("RejectLater")), {"id": 8}))
    assert err == {"Error": "Review.Rejected", "Cause": "order 8 rejected"}


def test_callback_timeout_is_states_timeout_and_the_token_is_then_refused():
    """TimeoutSeconds bounds the wait (States.Timeout); a late send_task_success is TaskTimedOut."""
    integrationfns.TOKENS.clear()
    err = output(execute(caught(callback("RecordToken", timeout=1)), {"id": 1}))
    assert err["Error"] == "States.Timeout"
    with pytest.raises(distmap.TaskTokenError) as info:
        distmap.send_task_success(integrationfns.TOKENS[-1], {})
    assert info.value.error == "TaskTimedOut"


def test_heartbeats_keep_a_callback_alive_and_silence_is_heartbeat_timeout():
    """send_task_heartbeat resets HeartbeatSeconds (the wait outlives it); no heartbeat ->
    States.HeartbeatTimeout, which Catch can match."""
    alive = callback("Heartbeats", timeout=10, heartbeat=1, beats=4, interval=0.4)
    assert output(execute(machine({"T": alive}), {"id": 1})) == "approved after heartbeats"
    err = output(
        execute(caught(callback("RecordToken", heartbeat=1), ["States.HeartbeatTimeout"]), {"id": 1})
    )
    assert err["Error"] == "States.HeartbeatTimeout"


def test_each_attempt_gets_a_fresh_task_token():
    """A retried callback task gets a new $$.Task.Token per attempt."""
    integrationfns.TOKENS.clear()
    retry = [{"ErrorEquals": ["InvalidOrder"], "IntervalSeconds": 0.01}]
    out = output(execute(machine({"T": callback("FailWithToken", timeout=5) | {"Retry": retry}}), {"id": 1}))
    assert out == {"attempt": 2}
    assert len(set(integrationfns.TOKENS)) == 2


def test_token_api_refuses_bad_unknown_and_unserialisable():
    """InvalidToken for a non-token, TaskDoesNotExist for an unknown one, InvalidOutput for non-JSON."""
    with pytest.raises(distmap.TaskTokenError) as info:
        distmap.send_task_success("not a token", {})
    assert info.value.error == "InvalidToken"
    with pytest.raises(distmap.TaskTokenError) as info:
        distmap.send_task_heartbeat(f"AQ{os.getpid():x}.{uuid.uuid4().hex}")
    assert info.value.error == "TaskDoesNotExist"
    with pytest.raises(distmap.TaskTokenError) as info:
        distmap.send_task_success(f"AQ1.{uuid.uuid4().hex}", {1, 2})
    assert info.value.error == "InvalidOutput"


def test_child_workflow_completes_the_parent_token_with_sfn_send_task_success(tmp_path):
    """startExecution.waitForTaskToken: the child gets the token in its input and completes it
    with the built-in aws-sdk:sfn:sendTaskSuccess (Output as JSON text)."""
    notifier = machine(
        {
            "Reply": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:sfn:sendTaskSuccess",
                "Parameters": {"TaskToken.$": "$.token", "Output.$": "States.JsonToString($.answer)"},
                "End": True,
            }
        }
    )
    (tmp_path / "notifier.asl.json").write_text(json.dumps(notifier))
    res = {"StateMachines": {"Notifier": str(tmp_path / "notifier.asl.json")}}
    state = start(".waitForTaskToken", arn="Notifier", TimeoutSeconds=10)
    state["Parameters"]["Input"] = {"token.$": "$$.Task.Token", "answer": {"from": "child"}}
    del state["Parameters"]["Input.$"]
    assert output(execute(machine({"S": state}), {}, res)) == {"from": "child"}


@pytest.mark.s3
def test_sqs_callback_pattern_with_boto3_and_an_external_consumer(s3_server):
    """The AWS docs' callback example: sqs:sendMessage.waitForTaskToken puts the token in a real
    queue; a consumer reads it and calls send_task_success."""
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName=f"cb-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    stop = threading.Event()

    def consumer() -> None:
        while not stop.is_set():
            for m in sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", []):
                body = json.loads(m["Body"])
                distmap.send_task_success(body["TaskToken"], {"checked": body["Message"]})
                stop.set()

    thread = threading.Thread(target=consumer, daemon=True)
    thread.start()
    state = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {
            "QueueUrl": queue,
            "MessageBody": {"Message.$": "$.order", "TaskToken.$": "$$.Task.Token"},
        },
        "TimeoutSeconds": 20,
        "End": True,
    }
    try:
        out = output(
            execute(
                machine({"T": state}),
                {"order": "o-1"},
                {"Resources": {"arn:aws:states:::sqs:sendMessage": "boto3"}},
            )
        )
    finally:
        stop.set()
        thread.join(5)
    assert out == {"checked": "o-1"}


ACTIVITY = "arn:aws:states:us-east-1:123456789012:activity:"


def test_activity_worker_result_error_and_heartbeats():
    """An Activities worker's return value is the task result, its exception the task error;
    heartbeats sent through current_task_token() keep it past HeartbeatSeconds."""
    res = {
        "Activities": {
            "Approve": "integrationfns:approve_activity",
            ACTIVITY + "Deny": "integrationfns:deny_activity",
            "Slow": "integrationfns:slow_activity",
        }
    }
    task = {"Type": "Task", "Resource": ACTIVITY + "Approve", "End": True}
    assert output(execute(machine({"A": task}), {"id": 3}, res)) == {"approved": 3, "token_seen": True}
    err = output(execute(caught(task | {"Resource": ACTIVITY + "Deny"}), {"id": 3}, res))
    assert err == {"Error": "Approval.Denied", "Cause": "order 3 denied"}
    slow = task | {"Resource": ACTIVITY + "Slow", "HeartbeatSeconds": 1, "TimeoutSeconds": 10}
    assert output(execute(machine({"A": slow}), {"beats": 4, "interval": 0.4}, res)) == "finished"
    err = output(execute(caught(slow), {"beats": 4, "interval": 0.4, "heartbeat": False}, res))
    assert err["Error"] == "States.HeartbeatTimeout"


# --------------------------------------------------------------------------- validate and stubs

MIXED = machine(
    {
        "Invoke": invoke("Enrich", ResultPath="$.invoked", Next="Notify", End=None),
        "Notify": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sns:publish",
            "Parameters": {"TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Message.$": "$"},
            "ResultPath": None,
            "Next": "Child",
        },
        "Child": start(".sync", arn=CHILD_ARN, ResultPath="$.child", Next="Approve", End=None),
        "Approve": {
            "Type": "Task",
            "Resource": ACTIVITY + "Approve",
            "ResultPath": "$.approval",
            "Next": "Dynamic",
        },
        "Dynamic": {
            "Type": "Task",
            "Resource": INVOKE,
            "Parameters": {"FunctionName.$": "$.fn"},
            "ResultPath": None,
            "Next": "Reply",
        },
        "Reply": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:sfn:sendTaskHeartbeat.waitForTaskToken",
            "Parameters": {"TaskToken.$": "$$.Task.Token"},
            "ResultPath": None,
            "End": True,
        },
    }
)
for _name in ("Invoke", "Child"):
    MIXED["States"][_name].pop("End")


def test_validate_lists_every_need_and_what_maps_it(tmp_path):
    """validate names each resource / function / state machine / activity (including those of
    child machines) with its target, and which are unmapped."""
    (tmp_path / "child.asl.json").write_text(json.dumps(machine({"C": invoke("ChildFn")})))
    res = {
        "Functions": {"Enrich": "integrationfns:enrich"},
        "StateMachines": {CHILD_ARN: str(tmp_path / "child.asl.json")},
    }
    report = distmap.validate(MIXED, res)
    needs = {(n["kind"], n["name"]): n["target"] for n in report["requirements"]}
    assert needs == {
        ("function", "Enrich"): "integrationfns:enrich",
        ("resource", "arn:aws:states:::sns:publish"): None,
        ("state machine", CHILD_ARN): str(tmp_path / "child.asl.json"),
        ("activity", ACTIVITY + "Approve"): None,
        ("function", "FunctionName.$: $.fn"): "dynamic",
        ("resource", "arn:aws:states:::aws-sdk:sfn:sendTaskHeartbeat.waitForTaskToken"): None,
        ("function", "ChildFn"): None,
    }
    child_need = next(n for n in report["requirements"] if n["name"] == "ChildFn")
    assert child_need["states"] == [f"{tmp_path / 'child.asl.json'}: States.C"]
    assert sorted(n["name"] for n in report["unmapped"]) == sorted(
        [
            "arn:aws:states:::sns:publish",
            ACTIVITY + "Approve",
            "arn:aws:states:::aws-sdk:sfn:sendTaskHeartbeat.waitForTaskToken",
            "ChildFn",
        ]
    )


def test_execute_refuses_unmapped_tasks_and_names_them_all_at_once():
    """execute lists every unmapped need (function, resource, state machine, activity) up front."""
    with pytest.raises(ConfigError) as info:
        distmap.execute(MIXED, {}, resources={})
    reason = info.value.reason
    assert reason.startswith("5 Task resource(s) are not mapped")
    for text in (
        "function Enrich",
        "resource arn:aws:states:::sns:publish",
        f"state machine {CHILD_ARN}",
        f"activity {ACTIVITY}Approve",
    ):
        assert text in reason


def test_stub_echo_runs_every_unmapped_task_as_an_echo():
    """--stub echo: Lambda answers its payload (in the invoke envelope), services and activities
    return their input, a .sync child echoes its input, callbacks complete at once."""
    resp = execute(MIXED, {"fn": "Anything", "v": 1}, {}, stub="echo")
    out = output(resp)
    assert out["invoked"]["Payload"] == {"fn": "Anything", "v": 1}
    assert out["child"]["Output"] == out["child"]["Input"] and out["child"]["Status"] == "SUCCEEDED"
    assert json.loads(out["child"]["Input"])["invoked"]["StatusCode"] == 200
    assert out["approval"]["fn"] == "Anything" and "child" in out["approval"]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{TESTS}"}
    return subprocess.run(
        [sys.executable, "-m", "distmap", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_cli_validate_exit_codes_and_execute_with_stub(tmp_path):
    """validate exits 1 listing UNMAPPED needs, 0 when all are mapped, 2 for a bad definition;
    execute --stub echo runs the unmapped definition."""
    d = machine({"T": invoke("Enrich", OutputPath="$.Payload")})
    (tmp_path / "m.asl.json").write_text(json.dumps(d))
    (tmp_path / "res.yaml").write_text("Functions:\n  Enrich: integrationfns:enrich\n")
    r = _cli("validate", "m.asl.json", cwd=tmp_path)
    assert (
        r.returncode == 1 and "function" in r.stdout and "UNMAPPED" in r.stdout and "1 unmapped" in r.stdout
    )
    r = _cli("validate", "m.asl.json", "--resources", "res.yaml", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["requirements"][0]["target"] == "integrationfns:enrich"
    r = _cli("execute", "m.asl.json", "--input", '{"id": 1}', cwd=tmp_path)
    assert r.returncode == 2 and "function Enrich" in r.stderr
    r = _cli("execute", "m.asl.json", "--input", '{"id": 1}', "--stub", "echo", cwd=tmp_path)
    assert r.returncode == 0 and json.loads(json.loads(r.stdout)["output"]) == {"id": 1}
    (tmp_path / "bad.asl.json").write_text(
        json.dumps(machine({"T": {"Type": "Task", "Resource": INVOKE, "End": True}}))
    )
    r = _cli("validate", "bad.asl.json", cwd=tmp_path)
    assert r.returncode == 2 and "States.T.Parameters.FunctionName" in r.stderr


# --------------------------------------------------------------------------- end to end


def _orders_csv(rows: int, bad: int = 0) -> bytes:
    lines = ["order_id,customer,quantity,unit_price"]
    for i in range(rows):
        quantity = 0 if i < bad else 1 + i % 3
        lines.append(f"{1000 + i},c{i},{quantity},2.50")
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.s3
def test_csv_to_sns_sample_runs_end_to_end(backend, s3, s3_bucket, monkeypatch):
    """examples/csv-to-sns on each backend: a CSV in S3 goes through a Distributed Map with
    ItemBatcher and lambda:invoke (OutputPath $.Payload) into ResultWriter files; a CSV with too
    many bad rows trips the tolerance, and the Catch publishes the error to SNS."""
    monkeypatch.chdir(ROOT)  # jobs.orders is imported from the working directory
    sqs, sns = boto3.client("sqs"), boto3.client("sns")
    queue = sqs.create_queue(QueueName=f"alerts-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    topic = sns.create_topic(Name=f"alerts-{uuid.uuid4().hex[:8]}")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    s3.put_object(Bucket=s3_bucket, Key="in/orders.csv", Body=_orders_csv(120))
    s3.put_object(Bucket=s3_bucket, Key="in/bad.csv", Body=_orders_csv(60, bad=30))
    data = {"bucket": s3_bucket, "key": "in/orders.csv", "runDate": "2026-11-25", "topicArn": topic}

    def run(key: str) -> dict[str, Any]:
        return distmap.execute(
            EXAMPLE / "definition.asl.json",
            {**data, "key": key},
            resources=EXAMPLE / "resources.yaml",
            backend=backend,
        )

    good = run("in/orders.csv")
    out = output(good)
    details = out["mapResult"]["ResultWriterDetails"]
    assert out["mapResult"]["MapRunArn"].startswith(
        "arn:aws:states:us-east-1:123456789012:mapRun:definition/ProcessOrders:"
    )
    manifest = json.loads(s3.get_object(Bucket=details["Bucket"], Key=details["Key"])["Body"].read())
    records = []
    for entry in manifest["ResultFiles"]["SUCCEEDED"]:
        records.extend(
            json.loads(s3.get_object(Bucket=manifest["DestinationBucket"], Key=entry["Key"])["Body"].read())
        )
    payloads = [json.loads(r["Output"]) for r in records]
    assert len(payloads) == 5  # 120 rows in batches of 25
    assert sum(p["orders"] for p in payloads) == 120 and {p["runDate"] for p in payloads} == {"2026-11-25"}
    assert manifest["ResultFiles"].get("FAILED", []) == []

    bad = run("in/bad.csv")
    assert (bad["status"], bad["error"]) == ("FAILED", "OrdersFailed")
    messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2).get("Messages", [])
    assert len(messages) == 1
    envelope = json.loads(messages[0]["Body"])
    assert envelope["Subject"] == "Order processing failed"
    assert json.loads(envelope["Message"])["Error"] == "States.ExceedToleratedFailureThreshold"
