"""The Task state: its call, its TimeoutSeconds / HeartbeatSeconds (numbers, paths or JSONata
expressions) and the JSON check of its result."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from distmap.asl.execution_types import ExecutionTimedOut
from distmap.asl.query_language import (
    JSONPATH,
    expression_or,
    states_of,
    typed,
    variables_of,
)
from distmap.asl.state_base import Run, _Cancelled, _positive_or_path, _Worker
from distmap.config.fields import Fields
from distmap.dataflow.jsonata import Expression
from distmap.dataflow.values import NOT_JSON, NotJson, check_finite
from distmap.errors import Runtime, StatesError, as_states_error


class TaskState(_Worker):
    """A Task: its Resource is a Lambda function, an AWS service integration, a child state
    machine, an activity or a custom string (``distmap.asl.integrations``)."""

    def __init__(self, name: str, f: Fields, where: str, language: str = JSONPATH) -> None:
        super().__init__(name, f, where, language)
        self.resource = f.string("Resource", required=True)
        self.timeout, self.timeout_path = expression_or(
            f, "TimeoutSeconds", name, lambda: _positive_or_path(f, "TimeoutSeconds")
        ), None
        if not isinstance(self.timeout, Expression):
            self.timeout, self.timeout_path = self.timeout
        self.heartbeat, self.heartbeat_path = expression_or(
            f, "HeartbeatSeconds", name, lambda: _positive_or_path(f, "HeartbeatSeconds")
        ), None
        if not isinstance(self.heartbeat, Expression):
            self.heartbeat, self.heartbeat_path = self.heartbeat
        static = not isinstance(self.timeout, Expression) and not isinstance(self.heartbeat, Expression)
        if static and self.timeout and self.heartbeat and self.heartbeat >= self.timeout:
            raise f.error("HeartbeatSeconds", "must be smaller than TimeoutSeconds")
        f.get("Credentials")
        from distmap.asl.integrations import parse_integration

        assert self.resource is not None
        arguments = f.get("Arguments") if self.jsonata else f.get("Parameters")
        self.integration = parse_integration(self.resource, arguments, f)

    def resources(self) -> list[str]:
        return [self.resource] if self.resource else []

    def execute(self, raw: Any, run: Run) -> tuple[Any, str | None]:
        if self.integration.uses_token:
            run = self._with_task_token(run)
        return super().execute(raw, run)

    @staticmethod
    def _with_task_token(run: Run) -> Run:
        """A copy of ``run`` whose context object carries a fresh ``Task.Token`` per attempt."""
        import copy

        from distmap.asl.callbacks import new_token

        tokened = copy.copy(run)
        base = run.context

        def context(state: str, retry_count: int = 0, entered: str | None = None) -> dict[str, Any]:
            ctx = base(state, retry_count, entered)
            ctx["Task"] = {"Token": new_token()}
            return ctx

        tokened.context = context  # type: ignore[method-assign]
        return tokened

    def work(self, params: Any, effective: Any, ctx: dict[str, Any], run: Run) -> Any:
        from distmap.asl.integrations import TaskCall

        timeout, heartbeat = self.timeout, self.heartbeat
        if isinstance(timeout, Expression):
            timeout = _positive_number(typed(timeout, states_of(effective, ctx), variables_of(ctx), "integer"), "TimeoutSeconds")
        if isinstance(heartbeat, Expression):
            heartbeat = _positive_number(
                typed(heartbeat, states_of(effective, ctx), variables_of(ctx), "integer"), "HeartbeatSeconds"
            )
        if self.timeout_path is not None:
            timeout = _positive_number(self.timeout_path.evaluate(effective, ctx), "TimeoutSecondsPath")
        if self.heartbeat_path is not None:
            heartbeat = _positive_number(self.heartbeat_path.evaluate(effective, ctx), "HeartbeatSecondsPath")
        call = TaskCall(self.integration, run, ctx, heartbeat)
        # the first limit to pass ends the task: TimeoutSeconds; HeartbeatSeconds as a plain limit
        # when nothing can send heartbeats (a callback task's wait enforces it itself); the
        # execution's deadline
        limits: list[tuple[float, str | None]] = []
        if timeout is not None:
            limits.append((timeout, "States.Timeout"))
        if heartbeat is not None and not call.heartbeats:
            limits.append((heartbeat, "States.HeartbeatTimeout"))
        remaining = run.remaining()
        if remaining is not None:
            limits.append((remaining, None))
        try:
            if not limits:
                return _call(call, params)
            limit, error = min(limits, key=lambda lim: lim[0])
            return _call_with_timeout(
                call, params, limit, timed_out_by_task=error is not None, error=error or "States.Timeout"
            )
        finally:
            call.close()


def _json_result(result: Any) -> Any:
    """A Task's result must be JSON: NaN and Infinity fail the Task (see dataflow.values)."""
    try:
        check_finite(result)
    except NotJson as exc:
        raise StatesError(NOT_JSON, f"the task returned a value that is not JSON: {exc}") from None
    return result


def _positive_number(value: Any, what: str) -> float:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise Runtime(cause=f"{what} must resolve to a positive number, got {value!r}")
    return float(value)


def _call(fn: Callable[[Any], Any], params: Any) -> Any:
    try:
        return _json_result(fn(params))
    except StatesError:
        raise
    except (ExecutionTimedOut, _Cancelled, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise as_states_error(exc) from None


def _call_with_timeout(
    fn: Callable[[Any], Any],
    params: Any,
    limit: float,
    *,
    timed_out_by_task: bool,
    error: str = "States.Timeout",
) -> Any:
    """Run the task function on a daemon thread; give up after ``limit`` seconds (the thread is
    abandoned, its late result ignored). ``timed_out_by_task``: the limit is the Task's own
    (TimeoutSeconds, or HeartbeatSeconds with ``error`` States.HeartbeatTimeout), else it is the
    execution's deadline."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = fn(params)
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name="distmap-task", daemon=True).start()
    if not done.wait(limit):
        if not timed_out_by_task:
            raise ExecutionTimedOut()
        if error == "States.HeartbeatTimeout":
            raise StatesError(error, f"the task sent no heartbeat within HeartbeatSeconds ({limit:g})")
        raise StatesError(error, f"the task did not finish within {limit:g} seconds")
    if "error" in box:
        exc = box["error"]
        if isinstance(exc, StatesError | ExecutionTimedOut | _Cancelled):
            raise exc
        raise as_states_error(exc)
    return _json_result(box.get("value"))


