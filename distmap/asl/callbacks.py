"""Task tokens: ``.waitForTaskToken`` callbacks and activities.

A Task whose Resource ends in ``.waitForTaskToken`` (or names an activity) gets a fresh task
token for each attempt, readable as ``$$.Task.Token`` in its Parameters. The Task calls its
integration (the Lambda function, the SQS message...) and then waits until someone completes the
token::

    distmap.send_task_success(token, {"approved": True})      # the Task's result
    distmap.send_task_failure(token, "Review.Rejected", "too risky")
    distmap.send_task_heartbeat(token)                         # resets the HeartbeatSeconds clock

The output is a JSON-serialisable value (not JSON text). ``TimeoutSeconds`` bounds the whole
wait (``States.Timeout``); ``HeartbeatSeconds`` bounds the time between the start of the task and
the first heartbeat, and between heartbeats (``States.HeartbeatTimeout``). Inside a workflow,
``arn:aws:states:::aws-sdk:sfn:sendTaskSuccess`` / ``sendTaskFailure`` / ``sendTaskHeartbeat``
do the same.

Tokens live in the process that runs the Task: the interpreter for the top-level machine, the
worker process for a DISTRIBUTED Map's child workflows. Completing a token from another process
raises ``TaskDoesNotExist``.

Errors (``TaskTokenError``, a ``StatesError`` whose ``error`` is the Step Functions API code):
``InvalidToken`` (not a distmap token), ``TaskDoesNotExist`` (unknown here),
``TaskTimedOut`` (the task already ended: completed, timed out or failed), ``InvalidOutput``
(output that is not JSON-serialisable).
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from distmap.errors import StatesError, classify

if TYPE_CHECKING:
    from distmap.asl.machine import Run

_TOKEN = re.compile(r"^AQ[0-9a-f]+\.[0-9a-f]{32}$")
_ENDED_KEEP = 10_000  # tokens of ended tasks remembered, so late calls get TaskTimedOut
_POLL = 0.2


class TaskTokenError(StatesError):
    """SendTaskSuccess / Failure / Heartbeat refused: ``error`` is the Step Functions API code."""


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    outcome: tuple[Any, ...] | None = None  # ("success", output) | ("failure", error, cause)
    last_beat: float = field(default_factory=time.monotonic)


_lock = threading.Lock()
_pending: dict[str, _Pending] = {}
_ended: OrderedDict[str, str] = OrderedDict()
_local = threading.local()


def new_token() -> str:
    """A fresh opaque task token (it names this process, for clearer errors)."""
    return f"AQ{os.getpid():x}.{uuid.uuid4().hex}"


def open_task(token: str) -> None:
    with _lock:
        _pending[token] = _Pending()


def close_task(token: str, reason: str = "timed out") -> None:
    """End the task (idempotent): later calls with its token raise TaskTimedOut."""
    with _lock:
        task = _pending.pop(token, None)
        if task is None:
            return
        _ended[token] = reason
        while len(_ended) > _ENDED_KEEP:
            _ended.popitem(last=False)
    task.done.set()


def _task(token: Any) -> _Pending:
    if not isinstance(token, str) or not _TOKEN.match(token):
        raise TaskTokenError("InvalidToken", f"Invalid Token: {token!r}")
    with _lock:
        task = _pending.get(token)
        if task is not None:
            return task
        ended = _ended.get(token)
    if ended is not None:
        raise TaskTokenError(
            "TaskTimedOut", f"Task Timed Out: the task of this token already ended ({ended})"
        )
    pid = token[2:].split(".", 1)[0]
    where = "" if int(pid, 16) == os.getpid() else f" (the token belongs to process {int(pid, 16)})"
    raise TaskTokenError("TaskDoesNotExist", f"Task Does Not Exist: no waiting task has this token{where}")


def _complete(token: Any, outcome: tuple[Any, ...]) -> None:
    task = _task(token)
    with _lock:
        if task.outcome is not None or _pending.get(token) is not task:
            raise TaskTokenError("TaskTimedOut", "Task Timed Out: the task of this token already ended")
        task.outcome = outcome
    task.done.set()


def send_task_success(token: str, output: Any = None) -> None:
    """Complete a waiting task successfully; ``output`` (any JSON value) becomes its result."""
    try:
        copied = orjson.loads(orjson.dumps(output))
    except TypeError as exc:
        raise TaskTokenError("InvalidOutput", f"the output is not JSON-serialisable: {exc}") from None
    _complete(token, ("success", copied))


def send_task_failure(token: str, error: str | None = None, cause: str | None = None) -> None:
    """Fail a waiting task with this ``error`` name and ``cause`` (what Retry / Catch see);
    without an error name it fails with ``States.TaskFailed``."""
    _complete(token, ("failure", error or "States.TaskFailed", cause or ""))


def send_task_heartbeat(token: str) -> None:
    """Report that the task of this token is still making progress (resets HeartbeatSeconds)."""
    task = _task(token)
    task.last_beat = time.monotonic()


def current_task_token() -> str | None:
    """The task token of the callback or activity task this thread is running, if any."""
    return getattr(_local, "token", None)


def run_with_token(token: str, fn: Callable[[Any], Any], arg: Any) -> Any:
    """Call ``fn(arg)`` with ``current_task_token()`` returning ``token`` meanwhile."""
    previous = getattr(_local, "token", None)
    _local.token = token
    try:
        return fn(arg)
    finally:
        _local.token = previous


def start_activity(token: str, fn: Callable[[Any], Any], task_input: Any) -> None:
    """Run an activity worker function on a thread: its return value completes the task, an
    exception fails it (error = the class name, or a StatesError's name; cause = the message)."""

    def work() -> None:
        try:
            result = run_with_token(token, fn, task_input)
        except Exception as exc:
            outcome: tuple[Any, ...] = ("failure", *classify(exc))
        else:
            outcome = ("success", result)
        try:
            if outcome[0] == "success":
                send_task_success(token, outcome[1])
            else:
                send_task_failure(token, outcome[1], outcome[2])
        except TaskTokenError as exc:
            if exc.error == "InvalidOutput":
                send_task_failure(token, "States.Runtime", exc.cause)
            # otherwise the task already ended (completed through the API, or timed out)

    threading.Thread(target=work, name="distmap-activity", daemon=True).start()


def wait(token: str, run: Run, heartbeat: float | None) -> Any:
    """Block until the token is completed; return the output or raise its failure.

    Wakes regularly to notice the execution's deadline or cancellation (raised by
    ``run.check_alive``) and a missed heartbeat (``States.HeartbeatTimeout``)."""
    with _lock:
        task = _pending.get(token)
    if task is None:
        raise StatesError("States.Runtime", "the task token was closed before the task waited for it")
    while True:
        run.check_alive()
        slice_ = _POLL
        if heartbeat is not None:
            left = heartbeat - (time.monotonic() - task.last_beat)
            if left <= 0:
                close_task(token, "heartbeat timed out")
                raise StatesError(
                    "States.HeartbeatTimeout",
                    f"the task sent no heartbeat within HeartbeatSeconds ({heartbeat:g})",
                )
            slice_ = min(slice_, left + 0.001)
        if task.done.wait(slice_):
            break
    outcome = task.outcome
    if outcome is None:  # closed by the state (TimeoutSeconds): the caller stopped waiting already
        raise StatesError("States.Timeout", "the task timed out")
    close_task(token, "completed")
    if outcome[0] == "success":
        return outcome[1]
    raise StatesError(outcome[1], outcome[2])


def builtin_sfn(action: str, params: Any) -> dict[str, Any]:
    """``aws-sdk:sfn:sendTaskSuccess`` / ``sendTaskFailure`` / ``sendTaskHeartbeat`` on local tokens."""
    if not isinstance(params, dict):
        raise StatesError("Sfn.SfnException", "the Parameters must be an object with TaskToken")
    token = params.get("TaskToken")
    try:
        if action == "sendTaskSuccess":
            output = params.get("Output")
            if isinstance(output, str):
                try:
                    output = orjson.loads(output)
                except orjson.JSONDecodeError:
                    raise TaskTokenError("InvalidOutput", "Output must be JSON text") from None
            send_task_success(token, output)
        elif action == "sendTaskFailure":
            send_task_failure(token, params.get("Error"), params.get("Cause"))
        else:
            send_task_heartbeat(token)
    except TaskTokenError as exc:
        raise StatesError(
            f"Sfn.{exc.error}Exception", f"{exc.cause} (Service: Sfn, Status Code: 400)"
        ) from None
    return {}
