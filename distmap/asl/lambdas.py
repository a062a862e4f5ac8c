"""Lambda functions, run as Python functions with Lambda's envelope.

``arn:aws:states:::lambda:invoke`` returns what Step Functions returns::

    {"ExecutedVersion": "$LATEST", "Payload": <the function's return value>,
     "SdkHttpMetadata": {"AllHttpHeaders": {...: [...]}, "HttpHeaders": {...}, "HttpStatusCode": 200},
     "SdkResponseMetadata": {"RequestId": "..."}, "StatusCode": 200}

and a bare Lambda ARN Resource returns the payload alone. The payload goes through JSON both
ways, as it does on Lambda: the function gets its own copy of the event, and a return value that
is not JSON-serialisable fails with ``Runtime.MarshalError``. An exception fails the task with
Error = the exception's class name (or a ``StatesError``'s name) and Cause = the JSON Lambda's
Python runtime reports: ``{"errorMessage", "errorType", "requestId", "stackTrace"}``.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import orjson

from distmap.asl.resources import FunctionRef
from distmap.errors import StatesError, classify

INVOKE_PARAMETERS = frozenset(
    {"FunctionName", "Payload", "InvocationType", "Qualifier", "ClientContext", "LogType"}
)
INVOCATION_TYPES = {"RequestResponse": 200, "Event": 202, "DryRun": 204}


def executed_version(ref: FunctionRef) -> str:
    """A numeric qualifier is the version that ran; an alias or none reports ``$LATEST``."""
    return ref.qualifier if ref.qualifier and ref.qualifier.isdigit() else "$LATEST"


def _marshal(value: Any, what: str) -> tuple[Any, bytes]:
    try:
        raw = orjson.dumps(value)
    except TypeError as exc:
        raise StatesError(
            "Runtime.MarshalError" if what == "response" else "Lambda.InvalidRequestContentException",
            _cause(
                f"Unable to marshal {what}: {exc}",
                "Runtime.MarshalError" if what == "response" else "InvalidRequestContentException",
                [],
            ),
        ) from None
    return orjson.loads(raw), raw


def _cause(message: str, error_type: str, stack: list[str]) -> str:
    return json.dumps(
        {
            "errorMessage": message,
            "errorType": error_type,
            "requestId": str(uuid.uuid4()),
            "stackTrace": stack,
        }
    )


def function_error(exc: BaseException) -> StatesError:
    """The task failure for an exception raised by a function run as a Lambda function."""
    error_type, message = classify(exc)
    frames = traceback.extract_tb(exc.__traceback__)[1:]  # drop the frame that called the function
    return StatesError(error_type, _cause(message, error_type, traceback.format_list(frames)))


def run_function(fn: Callable[[Any], Any], payload: Any) -> tuple[Any, bytes]:
    """Call the function as Lambda would: JSON event in, JSON response out."""
    event, _ = _marshal(payload, "request")
    try:
        result = fn(event)
    except Exception as exc:
        raise function_error(exc) from None
    return _marshal(result, "response")


def invoke(fn: Callable[[Any], Any], params: dict[str, Any], ref: FunctionRef) -> dict[str, Any]:
    """``lambda:invoke`` with a local function: Lambda's Invoke response in Step Functions' shape."""
    kind = params.get("InvocationType", "RequestResponse")
    if kind not in INVOCATION_TYPES:
        raise StatesError(
            "Lambda.InvalidParameterValueException",
            f"InvocationType must be one of {', '.join(INVOCATION_TYPES)}, got {kind!r}",
        )
    payload = params.get("Payload", {})
    version = executed_version(ref)
    if kind == "RequestResponse":
        value, raw = run_function(fn, payload)
        return envelope(value, len(raw), version, 200)
    if kind == "Event":  # asynchronous: Lambda queues the event and answers 202 at once

        def later() -> None:
            with contextlib.suppress(Exception):  # nothing reports an Event invocation's failure
                run_function(fn, payload)

        threading.Thread(target=later, name="distmap-lambda-event", daemon=True).start()
    return envelope("", 0, version, INVOCATION_TYPES[kind])


def envelope(payload: Any, length: int, version: str, status: int) -> dict[str, Any]:
    request_id = str(uuid.uuid4())
    trace = f"root=1-{int(time.time()):08x}-{secrets.token_hex(12)};sampled=0"
    headers = {
        "X-Amz-Executed-Version": version,
        "x-amzn-Remapped-Content-Length": "0",
        "Connection": "keep-alive",
        "x-amzn-RequestId": request_id,
        "Content-Length": str(length),
        "Date": formatdate(usegmt=True),
        "X-Amzn-Trace-Id": trace,
        "Content-Type": "application/json",
    }
    return {
        "ExecutedVersion": version,
        "Payload": payload,
        "SdkHttpMetadata": {
            "AllHttpHeaders": {k: [v] for k, v in headers.items()},
            "HttpHeaders": dict(sorted(headers.items(), key=lambda kv: kv[0].lower())),
            "HttpStatusCode": status,
        },
        "SdkResponseMetadata": {"RequestId": request_id},
        "StatusCode": status,
    }


def not_found(function_name: str, region: str, account: str) -> StatesError:
    ref = FunctionRef.parse(function_name)
    arn = ref.arn(region, account) if ref else function_name
    return StatesError(
        "Lambda.ResourceNotFoundException",
        f"Function not found: {arn} (Service: AWSLambda; Status Code: 404; Error Code: "
        f"ResourceNotFoundException; Request ID: {uuid.uuid4()}; Proxy: null)",
    )


def invalid_parameter(message: str) -> StatesError:
    return StatesError(
        "Lambda.InvalidParameterValueException",
        f"{message} (Service: AWSLambda; Status Code: 400; Error Code: InvalidParameterValueException; "
        f"Request ID: {uuid.uuid4()}; Proxy: null)",
    )
