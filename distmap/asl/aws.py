"""``boto3`` mode: AWS SDK and optimized service integrations as real boto3 calls.

The client talks to whatever the standard AWS environment points to (``AWS_ENDPOINT_URL`` for a
moto server or LocalStack, else real AWS), in the region of the execution. As Step Functions
does:

* the action is the API's camelCase name (``getObject`` -> ``get_object``) and Parameters are
  PascalCase even where the API's own members are camelCase (``StateMachineArn`` for SFN's
  ``stateMachineArn``); results come back with PascalCase keys, dates as ISO 8601 strings and
  bodies / blobs as strings (UTF-8 text, else base64);
* ``aws-sdk:*`` results are the API response alone; optimized integrations (``sns:publish``,
  ``sqs:sendMessage``, ``dynamodb:putItem`` ...) add ``SdkHttpMetadata`` / ``SdkResponseMetadata``
  and serialise a non-string ``Message`` / ``MessageBody`` / EventBridge ``Detail`` to JSON;
* errors are named ``<Service>.<Exception>``: for ``aws-sdk:*`` the service in PascalCase
  (``S3.NoSuchKeyException``, ``DynamoDb.ConditionalCheckFailedException``, ``Sfn.…``) with an
  ``Exception`` suffix always; for optimized integrations the service's Step Functions prefix
  (``DynamoDB.ConditionalCheckFailedException``, ``SNS.NotFoundException``,
  ``SQS.QueueDoesNotExistException``).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import os
import threading
import uuid
from typing import Any

from distmap.errors import StatesError

# Step Functions' aws-sdk service names that are not boto3's
_BOTO3_NAMES = {
    "sfn": "stepfunctions",
    "states": "stepfunctions",
    "cloudwatchlogs": "logs",
    "eventbridge": "events",
    "elasticmapreduce": "emr",
    "elasticloadbalancingv2": "elbv2",
    "elasticloadbalancing": "elb",
    "cognitoidentityprovider": "cognito-idp",
}
# error-name prefixes Step Functions uses (aws-sdk: SDK v2 client names; optimized: its own)
_SDK_PREFIX = {"dynamodb": "DynamoDb", "sfn": "Sfn"}
_OPTIMIZED_PREFIX = {
    "dynamodb": "DynamoDB",
    "sns": "SNS",
    "sqs": "SQS",
    "lambda": "Lambda",
    "states": "StepFunctions",
    "events": "EventBridge",
}
_OPTIMIZED_SERVICE_LABEL = {
    "dynamodb": "AmazonDynamoDBv2",
    "sns": "AmazonSNS",
    "sqs": "AmazonSQS",
    "lambda": "AWSLambda",
    "states": "AWSStepFunctions",
}
_STRINGIFIED = {("sns", "publish"): "Message", ("sqs", "sendMessage"): "MessageBody"}

_lock = threading.Lock()
_clients: dict[tuple[Any, ...], Any] = {}


@functools.lru_cache(maxsize=1)
def _available() -> frozenset[str]:
    import boto3

    return frozenset(boto3.session.Session().get_available_services())


def boto3_service(name: str) -> str | None:
    """The boto3 client name for a Step Functions service name, or None if boto3 has none."""
    available = _available()
    name = _BOTO3_NAMES.get(name, name)
    if name in available:
        return name
    squashed = {s.replace("-", ""): s for s in available}
    return squashed.get(name)


def _operation_name(action: str) -> str:
    return action[:1].upper() + action[1:]


def check_operation(service: str, action: str) -> str | None:
    """Why boto3 cannot run ``service:action`` (None when it can)."""
    boto_name = boto3_service(service)
    if boto_name is None:
        return f"boto3 has no service {service!r}"
    model = _model(boto_name)
    if _operation_name(action) not in model.operation_names:
        return f"{boto_name} has no action {action!r}"
    return None


@functools.lru_cache(maxsize=64)
def _model(boto_name: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(boto_name)


def client(boto_name: str, region: str) -> Any:
    """A boto3 client per (service, region, endpoint, process), created once."""
    key = (boto_name, region, os.environ.get("AWS_ENDPOINT_URL"), os.getpid())
    found = _clients.get(key)
    if found is not None:
        return found
    import boto3
    from botocore.config import Config

    with _lock:
        found = _clients.get(key)
        if found is None:
            found = boto3.session.Session().client(
                boto_name, region_name=region, config=Config(retries={"max_attempts": 3, "mode": "standard"})
            )
            _clients[key] = found
    return found


def call(service: str, action: str, params: Any, region: str, *, optimized: bool) -> Any:
    """Run one API call; return the Step Functions-shaped result or raise a named StatesError."""
    boto_name = boto3_service(service)
    if boto_name is None:
        raise StatesError("States.Runtime", f"boto3 has no service {service!r}")
    try:
        op = _model(boto_name).operation_model(_operation_name(action))
    except Exception:
        raise StatesError("States.Runtime", f"{boto_name} has no action {action!r}") from None
    params = dict(params or {}) if isinstance(params, dict) else {}
    field = _STRINGIFIED.get((service, action))
    if optimized and field and field in params and not isinstance(params[field], str):
        params[field] = _json(params[field])
    if optimized and (service, action) == ("events", "putEvents") and isinstance(params.get("Entries"), list):
        params["Entries"] = [
            {**e, "Detail": _json(e["Detail"])}
            if isinstance(e, dict) and not isinstance(e.get("Detail", ""), str)
            else e
            for e in params["Entries"]
        ]
    kwargs = _to_api(params, op.input_shape)
    try:
        response = getattr(client(boto_name, region), _snake(op.name))(**kwargs)
    except Exception as exc:
        raise service_error(service, boto_name, exc, optimized=optimized) from None
    meta = response.pop("ResponseMetadata", {}) if isinstance(response, dict) else {}
    result = _from_api(response, op.output_shape)
    if optimized:
        if "Md5OfMessageBody" in result:
            result["MD5OfMessageBody"] = result.pop("Md5OfMessageBody")
        result.update(sdk_metadata(meta))
    return result


def sdk_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    headers = {str(k): str(v) for k, v in (meta.get("HTTPHeaders") or {}).items()}
    request_id = meta.get("RequestId") or headers.get("x-amzn-requestid") or str(uuid.uuid4())
    return {
        "SdkHttpMetadata": {
            "AllHttpHeaders": {k: [v] for k, v in headers.items()},
            "HttpHeaders": headers,
            "HttpStatusCode": int(meta.get("HTTPStatusCode") or 200),
        },
        "SdkResponseMetadata": {"RequestId": request_id},
    }


def service_error(service: str, boto_name: str, exc: Exception, *, optimized: bool) -> StatesError:
    """Step Functions' name and cause for an exception from a boto3 call."""
    from botocore.exceptions import ClientError

    sid = _model(boto_name).service_id.replace(" ", "")
    if not isinstance(exc, ClientError):  # no answer from the service (network, parameters, ...)
        prefix = _OPTIMIZED_PREFIX.get(service, sid) if optimized else _SDK_PREFIX.get(service, sid)
        name = "SdkClientException" if "Endpoint" in type(exc).__name__ else f"{sid}Exception"
        if optimized and name != "SdkClientException":
            name = f"Amazon{sid}Exception"
        return StatesError(f"{prefix}.{name}", f"{type(exc).__name__}: {exc}")
    err = exc.response.get("Error", {})
    meta = exc.response.get("ResponseMetadata", {})
    code = str(err.get("Code") or "Unknown")
    message = str(err.get("Message") or code)
    status = meta.get("HTTPStatusCode", 400)
    request_id = meta.get("RequestId", "")
    modeled = type(exc).__name__ != "ClientError"
    if optimized:
        prefix = _OPTIMIZED_PREFIX.get(service, sid)
        label = _OPTIMIZED_SERVICE_LABEL.get(service, f"AWS{sid}")
        exc_name = type(exc).__name__ if modeled else code
        if service != "dynamodb" and not exc_name.endswith("Exception"):
            exc_name += "Exception"
        cause = (
            f"{message} (Service: {label}; Status Code: {status}; Error Code: {code}; "
            f"Request ID: {request_id}; Proxy: null)"
        )
        return StatesError(f"{prefix}.{exc_name}", cause)
    prefix = _SDK_PREFIX.get(service, sid)
    exc_name = type(exc).__name__ if modeled else prefix
    if not exc_name.endswith("Exception"):
        exc_name += "Exception"
    details = [f"Service: {prefix}", f"Status Code: {status}", f"Request ID: {request_id}"]
    if meta.get("HostId"):
        details.append(f"Extended Request ID: {meta['HostId']}")
    return StatesError(f"{prefix}.{exc_name}", f"{message} ({', '.join(details)})")


# --------------------------------------------------------------------------- shapes


def _snake(operation: str) -> str:
    from botocore import xform_name

    return xform_name(operation)


def _json(value: Any) -> str:
    import orjson

    return orjson.dumps(value).decode()


def _to_api(value: Any, shape: Any) -> Any:
    """PascalCase Parameters -> the API's member names (recursively through the input shape)."""
    if shape is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        members = shape.members
        by_pascal = {m[:1].upper() + m[1:]: m for m in members}
        out = {}
        for key, item in value.items():
            name = key if key in members else by_pascal.get(key, key)
            out[name] = _to_api(item, members.get(name))
        return out
    if kind == "list" and isinstance(value, list):
        return [_to_api(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _to_api(v, shape.value) for k, v in value.items()}
    return value


def _from_api(value: Any, shape: Any) -> Any:
    """A boto3 response -> JSON with PascalCase keys, ISO dates and text bodies."""
    if isinstance(value, dict):
        members = shape.members if shape is not None and shape.type_name == "structure" else None
        if members is not None:
            return {k[:1].upper() + k[1:]: _from_api(v, members.get(k)) for k, v in value.items()}
        inner = shape.value if shape is not None and shape.type_name == "map" else None
        return {k: _from_api(v, inner) for k, v in value.items()}
    if isinstance(value, list | tuple):
        inner = shape.member if shape is not None and shape.type_name == "list" else None
        return [_from_api(v, inner) for v in value]
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if hasattr(value, "read"):  # a streaming body
        value = value.read()
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(bytes(value)).decode("ascii")
    if hasattr(value, "is_finite"):  # Decimal
        return int(value) if value == value.to_integral_value() else float(value)
    return value
