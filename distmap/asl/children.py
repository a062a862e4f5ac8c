"""``arn:aws:states:::states:startExecution``: child state machines from ``StateMachines:``.

* no suffix: the child starts on a background thread and the Task returns
  ``{"ExecutionArn", "StartDate", "SdkHttpMetadata", "SdkResponseMetadata"}`` at once;
  ``distmap.execute`` waits for such children before it returns;
* ``.sync``: the Task waits and returns DescribeExecution's fields, with ``Input`` and ``Output``
  as JSON text: ``{"ExecutionArn", "Input", "InputDetails", "Name", "Output", "OutputDetails",
  "StartDate", "StateMachineArn", "Status", "StopDate"}``;
* ``.sync:2``: the same with ``Input`` and ``Output`` as JSON values;
* ``.waitForTaskToken``: the child starts in the background and the Task waits for its token.

A child that does not succeed fails a ``.sync`` Task with ``States.TaskFailed`` and, as Cause,
the JSON of its DescribeExecution fields (``Status``, ``Error``, ``Cause`` ...). The child runs
on the parent's backend, with the same resources file. Dates are ISO 8601 strings.
"""

from __future__ import annotations

import re
import threading
import uuid
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

import orjson

from distmap.errors import StatesError
from distmap.records import iso_now

if TYPE_CHECKING:
    from distmap.asl.integrations import Integration
    from distmap.asl.machine import Run

_STATE_MACHINE_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]+$")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")

_lock = threading.Lock()
_started: list[threading.Thread] = []


def wait_for_started_executions(timeout: float | None = None) -> None:
    """Wait for the executions started asynchronously (startExecution without .sync) to end."""
    while True:
        with _lock:
            if not _started:
                return
            thread = _started.pop()
        thread.join(timeout)


def _sfn_error(code: str, message: str) -> StatesError:
    return StatesError(
        f"StepFunctions.{code}Exception",
        f"{message} (Service: AWSStepFunctions; Status Code: 400; Error Code: {code}; "
        f"Request ID: {uuid.uuid4()}; Proxy: null)",
    )


def does_not_exist(params: Any) -> StatesError:
    arn = params.get("StateMachineArn") if isinstance(params, dict) else None
    return _sfn_error("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{arn}'")


def location(run: Run) -> tuple[str, str]:
    """(region, account) of the running execution, from its ARN (workers rebuild their Run)."""
    parts = str(run.execution.get("Id", "")).split(":")
    if len(parts) >= 5 and parts[0] == "arn" and parts[3] and parts[4]:
        return parts[3], parts[4]
    return run.region, run.account


def _request(params: Any, run: Run) -> tuple[str, str, Any]:
    """(state machine ARN, execution name, input) of a startExecution request."""
    arn = params["StateMachineArn"]
    if not _STATE_MACHINE_ARN.match(arn):  # a name or a placeholder: a local ARN for it
        region, account = location(run)
        name = re.sub(r"[^A-Za-z0-9_-]", "-", arn.rsplit(":", 1)[-1]) or "StateMachine"
        arn = f"arn:aws:states:{region}:{account}:stateMachine:{name}"
    name = params.get("Name")
    if name is None:
        name = str(uuid.uuid4())
    elif not isinstance(name, str) or not _NAME.match(name):
        raise _sfn_error("InvalidName", f"Invalid Name: {name!r}")
    data = params.get("Input", {})
    if isinstance(data, str):
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise _sfn_error(
                "InvalidExecutionInput", f"Invalid State Machine Execution Input: {exc}"
            ) from None
    return arn, name, data


def _execution_arn(sm_arn: str, name: str) -> str:
    parts = sm_arn.split(":")
    return ":".join([*parts[:5], "execution", parts[-1], name])


def start(integ: Integration, params: Any, run: Run, key: str) -> Any:
    """Start (and for .sync, finish) a child execution of the ``StateMachines`` entry ``key``."""
    res = run.resources
    if res.state_machines[key] == "echo":
        return echo(integ, params, run)
    sm_arn, name, data = _request(params, run)
    run_child = run.run_child
    if run_child is None:
        raise StatesError("States.Runtime", "child executions cannot be started here (no execution engine)")

    def child(cancel: threading.Event | None = None) -> dict[str, Any]:
        return run_child(run, key, data, state_machine_arn=sm_arn, name=name, cancel=cancel)

    if integ.pattern in ("sync", "sync:2"):
        return _finished(child(run.cancel), json_values=integ.pattern == "sync:2")
    started = iso_now()
    thread = threading.Thread(target=child, name=f"distmap-child-{name}", daemon=True)
    with _lock:
        _started.append(thread)
    thread.start()
    return _started_response(_execution_arn(sm_arn, name), started)


def echo(integ: Integration, params: Any, run: Run) -> Any:
    """A stub child: it succeeds at once with its input as output."""
    sm_arn, name, data = _request(params, run)
    exec_arn = _execution_arn(sm_arn, name)
    now = iso_now()
    if integ.pattern not in ("sync", "sync:2"):
        return _started_response(exec_arn, now)
    text = orjson.dumps(data).decode()
    response = {
        "executionArn": exec_arn,
        "stateMachineArn": sm_arn,
        "name": name,
        "startDate": now,
        "stopDate": now,
        "status": "SUCCEEDED",
        "input": text,
        "output": text,
    }
    return _finished(response, json_values=integ.pattern == "sync:2")


def _started_response(exec_arn: str, started: str) -> dict[str, Any]:
    request_id = str(uuid.uuid4())
    body = orjson.dumps({"executionArn": exec_arn, "startDate": started})
    headers = {
        "x-amzn-RequestId": request_id,
        "Connection": "keep-alive",
        "Content-Length": str(len(body)),
        "Date": formatdate(usegmt=True),
        "Content-Type": "application/x-amz-json-1.0",
    }
    return {
        "ExecutionArn": exec_arn,
        "SdkHttpMetadata": {
            "AllHttpHeaders": {k: [v] for k, v in headers.items()},
            "HttpHeaders": headers,
            "HttpStatusCode": 200,
        },
        "SdkResponseMetadata": {"RequestId": request_id},
        "StartDate": started,
    }


def _finished(response: dict[str, Any], *, json_values: bool) -> dict[str, Any]:
    """DescribeExecution's fields for a finished child; fail the Task unless it succeeded."""

    def value(text: str) -> Any:
        return orjson.loads(text) if json_values else text

    out: dict[str, Any] = {
        "ExecutionArn": response["executionArn"],
        "Input": value(response["input"]),
        "InputDetails": {"Included": True},
        "Name": response["name"],
    }
    if "output" in response:
        out["Output"] = value(response["output"])
        out["OutputDetails"] = {"Included": True}
    out.update(
        StartDate=response["startDate"],
        StateMachineArn=response["stateMachineArn"],
        Status=response["status"],
        StopDate=response["stopDate"],
    )
    if response["status"] == "SUCCEEDED":
        return out
    if "error" in response:
        out["Error"] = response["error"]
    if "cause" in response:
        out["Cause"] = response["cause"]
    raise StatesError("States.TaskFailed", orjson.dumps(dict(sorted(out.items()))).decode())
