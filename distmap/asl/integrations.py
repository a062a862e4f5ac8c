"""Task integrations: what a Task's ``Resource`` means, what it needs, and how it runs here.

Resources distmap knows (anything else is a custom string that must be mapped in ``Resources:``):

==========================================================  =======================================
``arn:aws:lambda:<region>:<account>:function:<name>[:q]``    a Lambda function (``Functions:``)
``arn:aws:states:::lambda:invoke[.waitForTaskToken]``        a Lambda function named by
                                                              ``Parameters.FunctionName``
``arn:aws:states:::aws-sdk:<service>:<action>[.waitFor…]``   an AWS SDK call (``boto3`` or a function)
``arn:aws:states:::<service>:<action>[.sync|.waitFor…]``     an optimized integration (idem)
``arn:aws:states:::states:startExecution[.sync[:2]|…]``      a child state machine (``StateMachines:``)
``arn:aws:states:<region>:<account>:activity:<name>``        an activity worker (``Activities:``)
``arn:aws:states:::aws-sdk:sfn:sendTask{Success,Failure,``  built in: complete a local task token
``Heartbeat}``
==========================================================  =======================================

``TaskState`` parses its Resource once (``parse_integration``: definition errors name the state
and field) and runs each attempt through a ``TaskCall``. ``requirements`` lists what a whole
machine needs (for ``distmap validate`` and for ``execute`` to refuse unmapped Tasks up front).
See ``distmap.asl.resources`` for the order in which a Task finds its target.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from distmap.asl import callbacks, lambdas
from distmap.asl.children import location
from distmap.asl.resources import FunctionRef, Resources, Target, split_suffix
from distmap.errors import ConfigError, StatesError

if TYPE_CHECKING:
    from distmap.asl.machine import Run, StateMachine
    from distmap.config.fields import Fields

LAMBDA = "lambda"  # a bare Lambda function ARN
LAMBDA_INVOKE = "lambda:invoke"
AWS_SDK = "aws-sdk"
SERVICE = "service"  # an optimized integration
START_EXECUTION = "states:startExecution"
ACTIVITY = "activity"
SFN_CALLBACK = "sfn-callback"  # aws-sdk:sfn:sendTaskSuccess / Failure / Heartbeat
CUSTOM = "custom"

_LAMBDA_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:")
_ACTIVITY_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:states:[a-z0-9-]+:\d{12}:activity:[A-Za-z0-9_.-]+$")
_SERVICE_ARN = re.compile(
    r"^arn:aws[a-zA-Z-]*:states:(?P<region>[a-z0-9-]*):\d*:(?P<service>[a-z0-9-]+):"
    r"(?P<action>[A-Za-z0-9]+)(?::(?P<api>[A-Za-z0-9]+))?$"
)
_SFN_CALLBACKS = ("sendTaskSuccess", "sendTaskFailure", "sendTaskHeartbeat")
_DYNAMODB_COMMON = {
    "Key",
    "TableName",
    "ConditionalOperator",
    "ConditionExpression",
    "Expected",
    "ExpressionAttributeNames",
    "ExpressionAttributeValues",
    "ReturnConsumedCapacity",
    "ReturnItemCollectionMetrics",
    "ReturnValues",
}
# Parameters Step Functions accepts for its optimized integrations, and their patterns
_OPTIMIZED: dict[tuple[str, str], tuple[frozenset[str], frozenset[str | None]]] = {
    ("lambda", "invoke"): (lambdas.INVOKE_PARAMETERS, frozenset({None, "waitForTaskToken"})),
    ("states", "startExecution"): (
        frozenset({"Input", "Name", "StateMachineArn"}),
        frozenset({None, "sync", "sync:2", "waitForTaskToken"}),
    ),
    ("sns", "publish"): (
        frozenset(
            {
                "Message",
                "MessageAttributes",
                "MessageStructure",
                "MessageDeduplicationId",
                "MessageGroupId",
                "PhoneNumber",
                "Subject",
                "TargetArn",
                "TopicArn",
            }
        ),
        frozenset({None, "waitForTaskToken"}),
    ),
    ("sqs", "sendMessage"): (
        frozenset(
            {
                "DelaySeconds",
                "MessageAttributes",
                "MessageBody",
                "MessageDeduplicationId",
                "MessageGroupId",
                "QueueUrl",
            }
        ),
        frozenset({None, "waitForTaskToken"}),
    ),
    ("dynamodb", "getItem"): (
        frozenset(
            {
                "Key",
                "TableName",
                "AttributesToGet",
                "ConsistentRead",
                "ExpressionAttributeNames",
                "ProjectionExpression",
                "ReturnConsumedCapacity",
            }
        ),
        frozenset({None}),
    ),
    ("dynamodb", "putItem"): (frozenset(_DYNAMODB_COMMON - {"Key"} | {"Item"}), frozenset({None})),
    ("dynamodb", "deleteItem"): (frozenset(_DYNAMODB_COMMON), frozenset({None})),
    ("dynamodb", "updateItem"): (
        frozenset(_DYNAMODB_COMMON | {"AttributeUpdates", "UpdateExpression"}),
        frozenset({None}),
    ),
}


@dataclass(frozen=True)
class Integration:
    """A Task's Resource, parsed."""

    resource: str
    kind: str
    service: str = ""
    action: str = ""
    pattern: str | None = None  # None | "waitForTaskToken" | "sync" | "sync:2"
    function: str | None = None  # a static FunctionName, or the bare Lambda ARN
    qualifier: str | None = None  # a static Qualifier
    state_machine: str | None = None  # a static StateMachineArn
    dynamic: str | None = None  # "FunctionName.$: $.fn" when the target is chosen at run time
    region: str | None = None  # the region in the Resource ARN, if any

    @property
    def uses_token(self) -> bool:
        return self.pattern == "waitForTaskToken" or self.kind == ACTIVITY


def parse_integration(resource: str, parameters: Any, f: Fields) -> Integration:
    """Classify a Task's Resource; reject what Step Functions would reject at definition time."""
    base, pattern = split_suffix(resource)
    if _LAMBDA_ARN.match(resource):
        if pattern or FunctionRef.parse(resource) is None:
            raise f.error(
                "Resource",
                f"not a Lambda function ARN: {resource!r} (a function ARN takes no .waitForTaskToken "
                "or .sync; use arn:aws:states:::lambda:invoke.waitForTaskToken)",
            )
        region = resource.split(":")[3]
        return Integration(resource, LAMBDA, "lambda", "invoke", function=resource, region=region)
    if _ACTIVITY_ARN.match(resource):
        return Integration(resource, ACTIVITY, region=resource.split(":")[3])
    m = _SERVICE_ARN.match(base)
    if m is None:
        return Integration(resource, CUSTOM, pattern=pattern)
    service, action, api = m["service"], m["action"], m["api"]
    region = m["region"] or None
    if service == "aws-sdk":
        if api is None:
            raise f.error(
                "Resource", f"an AWS SDK integration is aws-sdk:<service>:<action>, got {resource!r}"
            )
        if pattern not in (None, "waitForTaskToken"):
            raise f.error("Resource", f"aws-sdk integrations support only .waitForTaskToken, not .{pattern}")
        if action == "sfn" and api in _SFN_CALLBACKS and pattern is None:
            return Integration(resource, SFN_CALLBACK, "sfn", api, region=region)
        return Integration(resource, AWS_SDK, action, api, pattern, region=region)
    if api is not None:
        return Integration(resource, CUSTOM, pattern=pattern)
    allowed = _OPTIMIZED.get((service, action))
    if allowed is not None:
        keys, patterns = allowed
        if pattern not in patterns:
            ok = ", ".join(sorted("." + p for p in patterns if p)) or "none"
            raise f.error("Resource", f"{service}:{action} does not support .{pattern} (supported: {ok})")
        if parameters is not None and not isinstance(parameters, dict):
            raise f.error("Parameters", "must be an object")
        for key in parameters or {}:
            name = key[:-2] if key.endswith(".$") else key
            if name not in keys:
                raise f.error(
                    f"Parameters.{key}",
                    f"is not a parameter of {service}:{action} (supported: {', '.join(sorted(keys))})",
                )
    if (service, action) == ("lambda", "invoke"):
        fn, dynamic = _required(parameters, "FunctionName", f)
        qualifier = (parameters or {}).get("Qualifier")
        if fn is not None and FunctionRef.parse(fn) is None and not fn.startswith("${"):
            raise f.error("Parameters.FunctionName", f"is not a Lambda function name or ARN: {fn!r}")
        return Integration(
            resource,
            LAMBDA_INVOKE,
            service,
            action,
            pattern,
            function=fn,
            qualifier=qualifier if isinstance(qualifier, str) else None,
            dynamic=dynamic,
            region=region,
        )
    if (service, action) == ("states", "startExecution"):
        arn, dynamic = _required(parameters, "StateMachineArn", f)
        return Integration(
            resource,
            START_EXECUTION,
            service,
            action,
            pattern,
            state_machine=arn,
            dynamic=dynamic,
            region=region,
        )
    return Integration(resource, SERVICE, service, action, pattern, region=region)


def _required(parameters: Any, key: str, f: Fields) -> tuple[str | None, str | None]:
    """A required Parameters field: (its static value, None) or (None, "Key.$: path")."""
    params = parameters if isinstance(parameters, dict) else {}
    if key in params:
        value = params[key]
        if not isinstance(value, str) or not value:
            raise f.error(f"Parameters.{key}", f"must be a non-empty string, got {value!r}")
        return value, None
    if key + ".$" in params:
        return None, f"{key}.$: {params[key + '.$']}"
    raise f.error(f"Parameters.{key}", "is required")


# --------------------------------------------------------------------------- requirements


@dataclass(frozen=True)
class Need:
    """Something a Task needs mapped, and what (if anything) maps it."""

    kind: str  # "resource" | "function" | "state machine" | "activity"
    name: str
    where: str
    target: str | None  # a description of what runs it; None when unmapped
    integration: Integration
    raw: Target | None = None  # the mapped target itself (module:function, boto3, echo)


def walk_tasks(machine: StateMachine) -> Iterator[Any]:
    """Every Task state of a machine, including those in Parallel branches and Map processors."""
    for state in machine.states.values():
        if isinstance(getattr(state, "integration", None), Integration):  # a Task state
            yield state
        for branch in getattr(state, "branches", ()) or ():
            yield from walk_tasks(branch)
        processor = getattr(state, "processor", None)
        if processor is not None:
            yield from walk_tasks(processor)


def count_states(machine: StateMachine) -> int:
    total = 0
    for state in machine.states.values():
        total += 1
        for branch in getattr(state, "branches", ()) or ():
            total += count_states(branch)
        processor = getattr(state, "processor", None)
        if processor is not None:
            total += count_states(processor)
    return total


def requirements(
    machine: StateMachine,
    res: Resources,
    region: str,
    account: str,
    *,
    source: str | None = None,
    _seen: set[str] | None = None,
) -> list[Need]:
    """What every Task of the machine (and of the child machines it starts) needs."""
    seen = _seen if _seen is not None else set()
    needs: list[Need] = []
    prefix = f"{source}: " if source and _seen is not None else ""
    for task in walk_tasks(machine):
        integ: Integration = task.integration
        if integ.kind == SFN_CALLBACK:
            needs.append(Need("resource", integ.resource, prefix + task.where, "built-in", integ))
            continue
        kind, name = _need_of(integ)
        described, raw = _static_target(integ, res, region, account)
        needs.append(Need(kind, name, prefix + task.where, described, integ, raw))
        if integ.kind == START_EXECUTION and integ.state_machine:
            key = res.state_machine(integ.state_machine)
            if key is not None and key in res.definitions and key not in seen:
                seen.add(key)
                child = res.parsed_machine(key, type(machine).parse)
                needs.extend(
                    requirements(child, res, region, account, source=res.state_machines[key], _seen=seen)
                )
    return needs


def unmapped(needs: list[Need]) -> list[Need]:
    return [n for n in needs if n.target is None]


def _need_of(integ: Integration) -> tuple[str, str]:
    if integ.kind in (LAMBDA, LAMBDA_INVOKE):
        return "function", integ.function or integ.dynamic or ""
    if integ.kind == START_EXECUTION:
        return "state machine", integ.state_machine or integ.dynamic or ""
    if integ.kind == ACTIVITY:
        return "activity", integ.resource
    return "resource", integ.resource


def _describe(target: Target) -> str:
    if callable(target):
        return f"{target.__module__}:{getattr(target, '__qualname__', repr(target))}"
    return str(target)


def _static_target(integ: Integration, res: Resources, region: str, account: str) -> tuple[str | None, Any]:
    exact = res.exact(integ.resource)
    if exact is not None:
        return _describe(exact), exact
    if integ.kind in (LAMBDA, LAMBDA_INVOKE) and integ.function:
        try:
            found = res.lambda_function(integ.function, integ.qualifier, region, account)
        except ValueError:  # a contradicting Qualifier: Lambda refuses the call at run time
            ref = FunctionRef.parse(integ.function)
            bare = ref.arn(region, account, qualified=False) if ref else integ.function
            found = res.lambda_function(bare, None, region, account)
        if found is not None:
            return _describe(found[0]), found[0]
    if integ.kind == START_EXECUTION and integ.state_machine:
        key = res.state_machine(integ.state_machine)
        if key is not None:
            return res.state_machines[key], None
    if integ.kind == ACTIVITY:
        target = res.activity(integ.resource)
        if target is not None:
            return _describe(target), target
    pattern = res.pattern(integ.resource)
    if pattern is not None:
        return _describe(pattern), pattern
    if integ.dynamic:
        return "dynamic", None
    if res.stub:
        return f"{res.stub} (stub)", res.stub
    return None, None


def check_targets(needs: list[Need], res: Resources) -> None:
    """Refuse targets that cannot run their Task (boto3 where boto3 has no such call...)."""
    for need in needs:
        if need.raw == "boto3":
            reason = _boto3_unsupported(need.integration)
            if reason:
                raise ConfigError(
                    need.where,
                    f"{need.integration.resource} is mapped to boto3, but {reason}",
                    source=res.source,
                )


def _boto3_unsupported(integ: Integration) -> str | None:
    from distmap.asl import aws

    if integ.kind == CUSTOM:
        return (
            "boto3 runs AWS service integrations only (arn:aws:states:::<service>:<action>, aws-sdk, Lambda)"
        )
    if integ.kind == START_EXECUTION:
        return "child state machines run from StateMachines: (boto3 mode is not supported for them)"
    if integ.kind == ACTIVITY:
        return "activities run Python functions from Activities:"
    if integ.pattern in ("sync", "sync:2"):
        return f".{integ.pattern} waits for a job boto3 cannot poll here; map the resource to a function"
    if integ.kind in (AWS_SDK, SERVICE):
        return aws.check_operation(integ.service, integ.action)
    return None


# --------------------------------------------------------------------------- running


class TaskCall:
    """One attempt of a Task: call its integration, then (callback tasks) wait for the token."""

    def __init__(self, integration: Integration, run: Run, ctx: dict[str, Any], heartbeat: float | None):
        self.integration = integration
        self.run = run
        self.heartbeat = heartbeat
        task = ctx.get("Task") if integration.uses_token else None
        self.token: str | None = task.get("Token") if isinstance(task, dict) else None
        if self.token is not None:
            callbacks.open_task(self.token)

    @property
    def heartbeats(self) -> bool:
        """Whether HeartbeatSeconds is enforced by the wait (else it is a plain time limit)."""
        return self.token is not None

    def __call__(self, params: Any) -> Any:
        result, waits = dispatch(self.integration, params, self.run, self.token)
        if self.token is None or not waits:
            return result
        return callbacks.wait(self.token, self.run, self.heartbeat)

    def close(self) -> None:
        if self.token is not None:
            callbacks.close_task(self.token)


def dispatch(integ: Integration, params: Any, run: Run, token: str | None) -> tuple[Any, bool]:
    """Run the Task's target: ``(result, whether to wait for the task token)``."""
    res: Resources = run.resources
    exact = res.exact(integ.resource)
    if exact is not None:
        if integ.kind == ACTIVITY and exact not in ("echo", "boto3"):
            return res.resolve(exact)(params), False  # a plain function, as before activities
        return _run_target(exact, integ, params, run, token)
    if integ.kind == SFN_CALLBACK:
        return callbacks.builtin_sfn(integ.action, params), False
    if integ.kind in (LAMBDA, LAMBDA_INVOKE):
        name, qualifier = _function_of(integ, params)
        region, account = location(run)
        try:
            found = res.lambda_function(name, qualifier, region, account)
        except ValueError as exc:
            raise lambdas.invalid_parameter(str(exc)) from None
        if found is not None:
            return _run_lambda(found[0], found[1], integ, params, run, token)
    elif integ.kind == START_EXECUTION:
        from distmap.asl import children

        arn = params.get("StateMachineArn") if isinstance(params, dict) else None
        key = res.state_machine(arn) if isinstance(arn, str) else None
        if key is not None:
            return children.start(integ, params, run, key), integ.pattern == "waitForTaskToken"
    elif integ.kind == ACTIVITY:
        target = res.activity(integ.resource)
        if target == "echo":
            return params, False
        if target is not None:
            callbacks.start_activity(token or "", res.resolve(target), params)
            return None, True
    pattern = res.pattern(integ.resource)
    if pattern is not None:
        return _run_target(pattern, integ, params, run, token)
    if res.stub == "echo":
        return _echo(integ, params, run), False
    raise _not_mapped(integ, params, run)


def _function_of(integ: Integration, params: Any) -> tuple[str, str | None]:
    if integ.kind == LAMBDA:
        return integ.resource, None
    if not isinstance(params, dict) or not isinstance(params.get("FunctionName"), str):
        raise lambdas.invalid_parameter("FunctionName must be a string")
    qualifier = params.get("Qualifier")
    return params["FunctionName"], qualifier if isinstance(qualifier, str) else None


def _run_target(
    target: Target, integ: Integration, params: Any, run: Run, token: str | None
) -> tuple[Any, bool]:
    """An entry of ``Resources:``: echo, boto3, or a function receiving the Parameters."""
    waits = token is not None
    if target in ("echo", "boto3"):
        return _stub_or_boto3(target, integ, params, run, waits)
    fn = run.resources.resolve(target)
    if token is not None:
        return callbacks.run_with_token(token, fn, params), waits
    return fn(params), waits


def _run_lambda(
    target: Target, ref: FunctionRef, integ: Integration, params: Any, run: Run, token: str | None
) -> tuple[Any, bool]:
    """A ``Functions:`` entry: the function runs as a Lambda function."""
    waits = token is not None
    if target in ("echo", "boto3"):
        return _stub_or_boto3(target, integ, params, run, waits)
    fn = run.resources.resolve(target)
    if integ.kind == LAMBDA:
        return lambdas.run_function(fn, params)[0], False
    if token is not None:
        plain = fn

        def fn(event: Any) -> Any:
            return callbacks.run_with_token(token, plain, event)

    return lambdas.invoke(fn, params, ref), waits


def _stub_or_boto3(
    target: Target, integ: Integration, params: Any, run: Run, waits: bool
) -> tuple[Any, bool]:
    """The two targets that are not Python functions: an echo stub (never waits for a token) and
    a real boto3 call (waits for its token when the Task has one)."""
    if target == "echo":
        return _echo(integ, params, run), False
    return _boto3(integ, params, run), waits


def _boto3(integ: Integration, params: Any, run: Run) -> Any:
    from distmap.asl import aws

    region = integ.region or location(run)[0]
    if integ.kind in (LAMBDA, LAMBDA_INVOKE):
        return _boto3_lambda(integ, params, region)
    if integ.kind in (AWS_SDK, SERVICE):
        return aws.call(integ.service, integ.action, params, region, optimized=integ.kind == SERVICE)
    raise StatesError("States.Runtime", f"boto3 cannot run {integ.resource}")


def _boto3_lambda(integ: Integration, params: Any, region: str) -> Any:
    """A real Lambda Invoke (LocalStack or AWS) through boto3."""
    import orjson

    from distmap.asl import aws

    if integ.kind == LAMBDA:
        kwargs: dict[str, Any] = {"FunctionName": integ.resource, "Payload": orjson.dumps(params)}
    else:
        kwargs = {k: v for k, v in params.items() if k in lambdas.INVOKE_PARAMETERS}
        kwargs["Payload"] = orjson.dumps(kwargs.get("Payload", {}))
    try:
        response = aws.client("lambda", region).invoke(**kwargs)
    except Exception as exc:
        raise aws.service_error("lambda", "lambda", exc, optimized=True) from None
    body = response["Payload"].read() if hasattr(response.get("Payload"), "read") else b""
    try:
        payload = orjson.loads(body) if body else ""
    except orjson.JSONDecodeError:
        payload = body.decode("utf-8", "replace")
    if response.get("FunctionError"):
        error = payload.get("errorType") if isinstance(payload, dict) else None
        raise StatesError(str(error or "Lambda.Unknown"), body.decode("utf-8", "replace"))
    if integ.kind == LAMBDA:
        return payload
    meta = response.get("ResponseMetadata", {})
    return {
        "ExecutedVersion": response.get("ExecutedVersion", "$LATEST"),
        "Payload": payload,
        **aws.sdk_metadata(meta),
        "StatusCode": response.get("StatusCode", 200),
    }


def _echo(integ: Integration, params: Any, run: Run) -> Any:
    """An echo stub: the Task's result is its input (Lambda-shaped for lambda:invoke)."""
    if integ.kind == LAMBDA_INVOKE:
        payload = params.get("Payload", {}) if isinstance(params, dict) else params
        return lambdas.envelope(payload, 0, "$LATEST", 200)
    if integ.kind == START_EXECUTION:
        from distmap.asl import children

        return children.echo(integ, params, run)
    return params


def _not_mapped(integ: Integration, params: Any, run: Run) -> StatesError:
    region, account = location(run)
    if integ.kind in (LAMBDA, LAMBDA_INVOKE):
        return lambdas.not_found(_function_of(integ, params)[0], region, account)
    if integ.kind == START_EXECUTION:
        from distmap.asl import children

        return children.does_not_exist(params)
    return StatesError(
        "States.Runtime", f"nothing runs {integ.resource!r} here: map it in the resources file"
    )
