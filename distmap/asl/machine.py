"""State machines: parse and validate an ASL definition, then run it.

``StateMachine.parse(definition)`` checks every state and field up front (unknown fields,
missing ``Next`` targets, unreachable states, bad paths and templates, bad Retry / Catch) and
raises one ``ConfigError`` naming the state and field. ``StateMachine.run(input, run)`` walks
the states; a failure is raised as ``StatesError`` (ASL error name + cause).

Data flow (JSONPath mode), as AWS documents it for Task, Parallel, Map and Pass::

    raw input -> InputPath -> Parameters / ItemSelector -> (the work) -> ResultSelector
              -> ResultPath (merged into the raw input) -> OutputPath -> next state
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from distmap.asl.choice import parse_timestamp
from distmap.asl.execution_types import ExecutionTimedOut
from distmap.asl.query_language import (
    JSONATA,
    JSONPATH,
    Flow,
    catcher_flow,
    check_fields,
    expression_or,
    language_of,
    states_of,
    template,
    typed,
    variables_of,
)
from distmap.asl.resources import Resources
from distmap.config.fields import Fields
from distmap.config.parse import parse_catchers, parse_retriers
from distmap.dataflow.jsonata import Expression
from distmap.dataflow.jsonpath import (
    PathSyntaxError,
    compile_query,
    copy_json,
    is_reference_path,
    set_result_path,
)
from distmap.dataflow.templates import compile_payload
from distmap.dataflow.values import NOT_JSON, NotJson, check_finite
from distmap.dataflow.variables import ContextObject
from distmap.errors import ConfigError, Runtime, StatesError, as_states_error, error_matches
from distmap.names import name_problem
from distmap.records import EXECUTION_TYPES, iso_now
from distmap.retry import RetryPolicy

STATE_TYPES = ("Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map")
INLINE_MAP_CONCURRENCY = 40  # AWS runs at most 40 inline Map iterations at once


@dataclass
class Run:
    """What the states of one execution share (and Parallel / Map branches inherit)."""

    execution: dict[str, Any]
    state_machine: dict[str, Any]
    resources: Resources
    backend: str = "local"
    executor_options: dict[str, Any] = field(default_factory=dict)
    deadline: float | None = None
    """``time.monotonic()`` by which the whole execution must end (TimeoutSeconds)."""
    cancel: threading.Event = field(default_factory=threading.Event)
    region: str = "us-east-1"
    account: str = "123456789012"
    mask_causes: bool = True
    run_child: Callable[..., dict[str, Any]] | None = None
    """Runs a child execution (``states:startExecution``): ``execution.run_child_execution``,
    handed down by the execution (the lower modules that call it never import it)."""
    """Mask credentials in the Cause of DISTRIBUTED Map FAILED records."""
    variables: dict[str, Any] = field(default_factory=dict)
    """The workflow variables of the state machine (or branch / iteration) being run."""

    def context(self, state: str, retry_count: int = 0, entered: str | None = None) -> dict[str, Any]:
        return ContextObject(
            {
                "Execution": self.execution,
                "StateMachine": self.state_machine,
                "State": {"Name": state, "EnteredTime": entered or iso_now(), "RetryCount": retry_count},
            },
            variables=self.variables,
        )

    def scoped(self) -> Run:
        """A copy whose variables start as a copy of these (a branch, iteration or machine run):
        what it assigns never reaches the caller."""
        import copy

        inner = copy.copy(self)
        inner.variables = dict(self.variables)
        return inner

    def check_alive(self) -> None:
        if self.cancel.is_set():
            raise _Cancelled()
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise ExecutionTimedOut()

    def sleep(self, seconds: float) -> None:
        """Sleep, waking early for cancellation or the execution deadline."""
        end = time.monotonic() + max(0.0, seconds)
        while True:
            self.check_alive()
            left = end - time.monotonic()
            if left <= 0:
                return
            if self.deadline is not None:
                left = min(left, max(0.0, self.deadline - time.monotonic()) + 0.001)
            self.cancel.wait(min(left, 0.5))

    def remaining(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())


class _Cancelled(Exception):
    """A sibling branch failed; this branch stops at its next state."""


# --------------------------------------------------------------------------- helpers


def _path(f: Fields, key: str, default: str | None = "$") -> Any:
    """An optional Path field compiled as a query (None when the field is JSON null)."""
    raw = f.get(key, default)
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise f.error(key, f"must be a JSONPath string or null, got {raw!r}")
    try:
        return compile_query(raw)
    except (PathSyntaxError, ValueError) as exc:
        raise f.error(key, str(exc)) from None


def _reference_path(f: Fields, key: str) -> str | None:
    raw = f.get(key, "$")
    if raw is None:
        return None
    if not isinstance(raw, str) or not is_reference_path(raw) or raw.startswith("$$"):
        raise f.error(key, f"must be a reference path ($, $.a.b, $['a'][0]) or null, got {raw!r}")
    return raw


def _template(f: Fields, key: str) -> Callable[[Any, Any], Any] | None:
    raw = f.get(key)
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise f.error(key, f"must be an object, got {type(raw).__name__}")
    try:
        return compile_payload(raw, where=f.sub(key))
    except (PathSyntaxError, ValueError) as exc:
        raise ConfigError(f.sub(key), str(exc), source=f.source) from None


def _positive_or_path(f: Fields, key: str, *, integer: bool = True) -> tuple[float | None, Any]:
    """``Key`` (a number) or ``KeyPath`` (a query); never both."""
    if f.has(key) and f.has(key + "Path"):
        raise f.error(key, f"{key} and {key}Path cannot both be set")
    value = f.integer(key, None, minimum=1) if integer else f.number(key, None, exclusive_min=True)
    return value, _path(f, key + "Path", None)


# --------------------------------------------------------------------------- states


class State:
    """A state: parses its fields, then runs as ``execute(raw_input, run) -> (output, next)``."""

    terminal = False  # Succeed / Fail
    has_io = True  # InputPath / OutputPath

    def __init__(self, name: str, f: Fields, where: str, language: str = JSONPATH) -> None:
        self.name = name
        self.where = where
        kind = f.get("Type")
        f.get("Comment")
        self.language = language_of(f, language)
        self.jsonata = self.language == JSONATA
        check_fields(f, self.language, kind)
        jsonpath_io = self.has_io and not self.jsonata
        self.input_path = _path(f, "InputPath") if jsonpath_io else None
        self.output_path = _path(f, "OutputPath") if jsonpath_io else None
        self.flow = Flow(f, self.language, name)
        self.next: str | None = None
        if not self.terminal and not isinstance(self, ChoiceState):
            nxt, end = f.get("Next"), f.get("End")
            if nxt is not None and end is not None:
                raise f.error("End", "a state has either Next or End: true, not both")
            if end is not None and end is not True:
                raise f.error("End", f"must be true, got {end!r}")
            if nxt is None and end is None:
                raise f.error("Next", "is required (or End: true)")
            if nxt is not None and (not isinstance(nxt, str) or not nxt):
                raise f.error("Next", f"must be a state name, got {nxt!r}")
            self.next = nxt

    def targets(self) -> list[tuple[str, str]]:
        """``(field, state name)`` of every transition out of this state."""
        return [("Next", self.next)] if self.next else []

    # data flow ----------------------------------------------------------------------------
    def effective_input(self, raw: Any, ctx: Any) -> Any:
        if self.jsonata:
            return raw
        if self.input_path is None:
            return {}
        return self.input_path.evaluate(raw, ctx)

    def final_output(self, data: Any, ctx: Any) -> Any:
        if self.output_path is None:
            return {}
        return self.output_path.evaluate(data, ctx)

    def complete(self, raw: Any, ctx: Any, run: Run, result: Any, document: Any = None) -> Any:
        """The state's output, with its Assign stored. JSONata: ``Output`` over ``$states``
        (default: ``result``). JSONPath: OutputPath over ``document`` (the input with the result
        placed by ResultPath); Assign's ``$`` is ``result``."""
        if self.jsonata:
            return self.flow.finish(run.variables, states_of(raw, ctx, result=result), None, result)
        out = self.final_output(document, ctx)
        if self.flow.assign is None:
            return out
        return self.flow.finish(run.variables, {"context": ctx}, result, out)

    def execute(self, raw: Any, run: Run) -> tuple[Any, str | None]:  # pragma: no cover - abstract
        raise NotImplementedError

    def resources(self) -> list[str]:
        return []


class _Worker(State):
    """Task, Parallel and Map: Parameters, ResultSelector, ResultPath, Retry and Catch."""

    parameters_key = "Parameters"

    def __init__(self, name: str, f: Fields, where: str, language: str = JSONPATH) -> None:
        super().__init__(name, f, where, language)
        jsonpath = not self.jsonata
        self.parameters = _template(f, self.parameters_key) if self.parameters_key and jsonpath else None
        self.arguments = template(f, "Arguments", name) if self.parameters_key and self.jsonata else None
        self.result_selector = _template(f, "ResultSelector") if jsonpath else None
        self.result_path = _reference_path(f, "ResultPath") if jsonpath else None
        self.retry = RetryPolicy(parse_retriers(f))
        raw_catch = f.get("Catch", [])
        self.catchers = parse_catchers(f, allow_next=True)
        self.catch_flows: list[Flow | None] = []
        for i, c in enumerate(self.catchers):
            if not c.next:
                raise ConfigError(f"{f.sub(f'Catch[{i}]')}.Next", "is required", source=f.source)
            body = raw_catch[i]
            if self.jsonata and "ResultPath" in body:
                raise ConfigError(
                    f"{f.sub(f'Catch[{i}]')}.ResultPath",
                    "is a JSONPath field and is not allowed in a JSONata state; use Output",
                    source=f.source,
                )
            self.catch_flows.append(catcher_flow(body, f.sub(f"Catch[{i}]"), self.language, name, f.source))

    def targets(self) -> list[tuple[str, str]]:
        return super().targets() + [(f"Catch[{i}].Next", c.next or "") for i, c in enumerate(self.catchers)]

    def work(self, params: Any, effective: Any, ctx: dict[str, Any], run: Run) -> Any:  # pragma: no cover
        """The state's work on ``params`` (``effective`` is the input before Parameters)."""
        raise NotImplementedError

    def execute(self, raw: Any, run: Run) -> tuple[Any, str | None]:
        attempt = None
        retries = 0
        entered = iso_now()
        while True:
            run.check_alive()
            ctx = run.context(self.name, retries, entered)
            try:
                effective = self.effective_input(raw, ctx)
                if self.arguments is not None:
                    params = self.arguments(states_of(raw, ctx), variables_of(ctx))
                else:
                    params = self.parameters(effective, ctx) if self.parameters is not None else effective
                result = self.work(params, effective, ctx, run)
                if self.jsonata:
                    return self.complete(raw, ctx, run, result), self.next
                if self.result_selector is not None:
                    result = self.result_selector(result, ctx)
                return self.complete(raw, ctx, run, result, set_result_path(raw, self.result_path, result)), self.next
            except (ExecutionTimedOut, _Cancelled, KeyboardInterrupt):
                raise
            except Exception as exc:
                err = as_states_error(exc)
            delay = None
            if self.retry:
                attempt = attempt or self.retry.new_state()
                delay = self.retry.next_delay(attempt, err.error)
            if delay is not None:
                run.sleep(delay)
                retries += 1
                continue
            for c, flow in zip(self.catchers, self.catch_flows, strict=True):
                if error_matches(err.error, c.error_equals):
                    return self._caught(raw, run, c, flow, {"Error": err.error, "Cause": err.cause}), c.next
            raise err

    def _caught(self, raw: Any, run: Run, catcher: Any, flow: Flow | None, error_output: dict[str, Any]) -> Any:
        """A catcher's output. JSONata: its Output over ``$states.errorOutput`` (default: the error
        output); JSONPath: the error output placed by its ResultPath. Its Assign is stored."""
        ctx = run.context(self.name)
        if self.jsonata:
            if flow is None:
                return error_output
            return flow.finish(run.variables, states_of(raw, ctx, errorOutput=error_output), None, error_output)
        out = set_result_path(raw, catcher.result_path, error_output)
        if flow is None:
            return out
        return flow.finish(run.variables, {"context": ctx}, error_output, out)


class PassState(State):
    def __init__(self, name: str, f: Fields, where: str, language: str = JSONPATH) -> None:
        super().__init__(name, f, where, language)
        self.has_result = f.has("Result")
        self.result = f.get("Result")
        self.parameters = _template(f, "Parameters") if not self.jsonata else None
        self.result_path = _reference_path(f, "ResultPath") if not self.jsonata else None

    def execute(self, raw: Any, run: Run) -> tuple[Any, str | None]:
        ctx = run.context(self.name)
        effective = self.effective_input(raw, ctx)
        if self.has_result:
            result = copy_json(self.result)
        elif self.parameters is not None:
            result = self.parameters(effective, ctx)
        else:
            result = effective
        if self.jsonata:
            return self.complete(raw, ctx, run, result), self.next
        return self.complete(raw, ctx, run, result, set_result_path(raw, self.result_path, result)), self.next


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


class ChoiceState(State):
    def __init__(self, name: str, f: Fields, where: str, language: str = JSONPATH) -> None:
        super().__init__(name, f, where, language)
        raw = {k: f.get(k) for k in ("Choices", "Default")}
        from distmap.asl.choice_flow import compile_rules

        self.rules, self.rule_flows = compile_rules(self, raw, f)
        self._targets: list[tuple[str, str]] = []
        choices = raw["Choices"]
        if isinstance(choices, list):
            for i, rule in enumerate(choices):
                if isinstance(rule, Mapping) and isinstance(rule.get("Next"), str):
                    self._targets.append((f"Choices[{i}].Next", rule["Next"]))
        if isinstance(raw["Default"], str):
            self._targets.append(("Default", raw["Default"]))

    def targets(self) -> list[tuple[str, str]]:
        return list(self._targets)

    def execute(self, raw: Any, run: Run) -> tuple[Any, str | None]:
        from distmap.asl.choice_flow import choose

        ctx = run.context(self.name)
        effective = self.effective_input(raw, ctx)
        nxt, rule_flow = choose(self, raw, effective, ctx)
        if nxt is None:
            raise StatesError(
                "States.NoChoiceMatched",
                f"no Choice rule matched in state {self.name!r} and there is no Default",
            )
        flow = rule_flow or self.flow
        if self.jsonata:
            states = states_of(raw, ctx)
            default = raw
            if flow is not self.flow and flow.output is None and self.flow.output is not None:
                default = self.flow.output(states, variables_of(ctx))
            return flow.finish(run.variables, states, None, default), nxt
        out = self.final_output(effective, ctx)
        if flow.assign is None:
            return out, nxt
        return flow.finish(run.variables, {"context": ctx}, effective, out), nxt


class WaitState(State):
    def __init__(self, name: str, f: Fields, where: str, language: str = JSONPATH) -> None:
        super().__init__(name, f, where, language)
        given = [k for k in ("Seconds", "Timestamp", "SecondsPath", "TimestampPath") if f.has(k)]
        if len(given) != 1:
            raise f.error(
                "Seconds", "a Wait state needs exactly one of Seconds, Timestamp, SecondsPath, TimestampPath"
            )
        self.kind = given[0]
        dynamic = expression_or(f, self.kind, name, lambda: None) if self.jsonata else None
        if dynamic is not None:
            self.value: Any = dynamic
        elif self.kind == "Seconds":
            self.value = f.integer("Seconds", minimum=0)
        elif self.kind == "Timestamp":
            self.value = f.string("Timestamp")
            if _parse_timestamp(self.value) is None:
                raise f.error("Timestamp", f"must be an RFC 3339 timestamp, got {self.value!r}")
        else:
            self.value = _path(f, self.kind, None)

    def execute(self, raw: Any, run: Run) -> tuple[Any, str | None]:
        ctx = run.context(self.name)
        effective = self.effective_input(raw, ctx)
        if isinstance(self.value, Expression):
            seconds = self._dynamic_seconds(raw, ctx)
        elif self.kind == "Seconds":
            seconds = float(self.value)
        elif self.kind == "Timestamp":
            seconds = _parse_timestamp(self.value) - time.time()  # type: ignore[operator]
        elif self.kind == "SecondsPath":
            v = self.value.evaluate(effective, ctx)
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise Runtime(cause=f"SecondsPath must resolve to a non-negative number, got {v!r}")
            seconds = float(v)
        else:
            v = self.value.evaluate(effective, ctx)
            ts = _parse_timestamp(v) if isinstance(v, str) else None
            if ts is None:
                raise Runtime(cause=f"TimestampPath must resolve to an RFC 3339 timestamp, got {v!r}")
            seconds = ts - time.time()
        run.sleep(seconds)
        return self.complete(raw, ctx, run, effective, effective), self.next

    def _dynamic_seconds(self, raw: Any, ctx: Any) -> float:
        states, variables = states_of(raw, ctx), variables_of(ctx)
        if self.kind == "Seconds":
            seconds = typed(self.value, states, variables, "integer")
            if seconds < 0:
                raise StatesError("States.QueryEvaluationError", f"Seconds must be non-negative, got {seconds}")
            return float(seconds)
        text = typed(self.value, states, variables, "string")
        ts = _parse_timestamp(text)
        if ts is None:
            raise StatesError(
                "States.QueryEvaluationError", f"Timestamp must be an RFC 3339 timestamp, got {text!r}"
            )
        return ts - time.time()


def _parse_timestamp(text: Any) -> float | None:
    """Epoch seconds of an ASL timestamp (the grammar Choice's Timestamp* rules use), or None."""
    instant = parse_timestamp(text) if isinstance(text, str) else None
    return None if instant is None else instant.seconds + float(instant.fraction)


class SucceedState(State):
    terminal = True

    def execute(self, raw: Any, run: Run) -> tuple[Any, str | None]:
        ctx = run.context(self.name)
        effective = self.effective_input(raw, ctx)
        return self.complete(raw, ctx, run, effective, effective), None


class FailState(State):
    terminal = True
    has_io = False

    def __init__(self, name: str, f: Fields, where: str, language: str = JSONPATH) -> None:
        super().__init__(name, f, where, language)
        for a, b in (("Error", "ErrorPath"), ("Cause", "CausePath")):
            if f.has(a) and f.has(b):
                raise f.error(a, f"{a} and {b} cannot both be set")
        self.error: Any = expression_or(f, "Error", name, lambda: f.string("Error"))
        self.cause: Any = expression_or(f, "Cause", name, lambda: f.string("Cause"))
        self.error_path = _path(f, "ErrorPath", None)
        self.cause_path = _path(f, "CausePath", None)

    def execute(self, raw: Any, run: Run) -> tuple[Any, str | None]:
        ctx = run.context(self.name)
        error, cause = self.error, self.cause
        if isinstance(error, Expression):
            error = typed(error, states_of(raw, ctx), variables_of(ctx), "string")
        if isinstance(cause, Expression):
            cause = typed(cause, states_of(raw, ctx), variables_of(ctx), "string")
        if self.error_path is not None:
            error = self.error_path.evaluate(raw, ctx)
        if self.cause_path is not None:
            cause = self.cause_path.evaluate(raw, ctx)
        for label, v in (("ErrorPath", error), ("CausePath", cause)):
            if v is not None and not isinstance(v, str):
                raise Runtime(cause=f"{label} must resolve to a string, got {v!r}")
        err = StatesError("States.Fail", cause or "")
        err.error = error or ""  # a Fail state without Error fails with no error name
        raise err


class ParallelState(_Worker):
    def __init__(self, name: str, f: Fields, where: str, language: str = JSONPATH) -> None:
        super().__init__(name, f, where, language)
        branches = f.require("Branches")
        if not isinstance(branches, list) or not branches:
            raise f.error("Branches", "must be a non-empty list of state machines")
        self.branches = [
            StateMachine.parse(b, where=f"{f.sub('Branches')}[{i}]", source=f.source, language=self.language)
            for i, b in enumerate(branches)
        ]

    def resources(self) -> list[str]:
        return [r for b in self.branches for r in b.resources()]

    def work(self, params: Any, effective: Any, ctx: dict[str, Any], run: Run) -> Any:
        sub = _child_run(run)
        with ThreadPoolExecutor(max_workers=len(self.branches), thread_name_prefix="distmap-branch") as pool:
            futures = [pool.submit(b.run, copy_json(params), sub) for b in self.branches]
            _done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [fu for fu in futures if fu.done() and fu.exception() is not None]
            if failed:
                sub.cancel.set()  # the other branches stop at their next state
                wait(futures)
                raise _first_error(failed)
        return [fu.result() for fu in futures]


def _first_error(failed: list[Any]) -> BaseException:
    errors = [fu.exception() for fu in failed]
    for exc in errors:
        if not isinstance(exc, _Cancelled):
            return exc
    return errors[0]


def _child_run(run: Run) -> Run:
    """A Run for branches: same execution, own cancel flag (linked to the parent's)."""
    sub = Run(**{**run.__dict__, "cancel": threading.Event()})
    if run.cancel.is_set():
        sub.cancel.set()
    return sub


class MapState(_Worker):
    parameters_key = ""  # Map's Parameters is the legacy ItemSelector

    def __init__(self, name: str, f: Fields, where: str, language: str = JSONPATH) -> None:
        super().__init__(name, f, where, language)
        key = "ItemProcessor" if f.has("ItemProcessor") or not f.has("Iterator") else "Iterator"
        proc = f.require(key)
        if not isinstance(proc, Mapping):
            raise f.error(key, "must be an object (a state machine)")
        config = proc.get("ProcessorConfig") or {}
        if not isinstance(config, Mapping):
            raise f.error(f"{key}.ProcessorConfig", "must be an object")
        self.mode = config.get("Mode", "INLINE")
        if self.mode not in ("INLINE", "DISTRIBUTED"):
            raise f.error(f"{key}.ProcessorConfig.Mode", f"must be INLINE or DISTRIBUTED, got {self.mode!r}")
        extra = set(config) - {"Mode", "ExecutionType"}
        if extra:
            raise f.error(f"{key}.ProcessorConfig", f"unknown field {sorted(extra)[0]!r}")
        # AWS requires ExecutionType with Mode DISTRIBUTED; distmap defaults it to STANDARD
        self.execution_type = config.get("ExecutionType", "STANDARD")
        if self.execution_type not in EXECUTION_TYPES:
            raise f.error(
                f"{key}.ProcessorConfig.ExecutionType",
                f"must be STANDARD or EXPRESS, got {self.execution_type!r}",
            )
        processor = {k: v for k, v in proc.items() if k != "ProcessorConfig"}
        self.processor_definition = processor
        self.processor = StateMachine.parse(processor, where=f.sub(key), source=f.source, language=self.language)
        self.items_path = _path(f, "ItemsPath") if not self.jsonata else None
        self.items = template(f, "Items", name) if self.jsonata else None
        sel_key = "ItemSelector" if f.has("ItemSelector") or not f.has("Parameters") else "Parameters"
        if f.has("ItemSelector") and f.has("Parameters"):
            raise f.error("Parameters", "ItemSelector and Parameters (its legacy name) cannot both be set")
        self.item_selector_raw = f.get(sel_key)
        self.item_selector = template(f, sel_key, name) if self.jsonata else _template(f, sel_key)
        if f.has("MaxConcurrency") and f.has("MaxConcurrencyPath"):
            raise f.error("MaxConcurrency", "MaxConcurrency and MaxConcurrencyPath cannot both be set")
        self.max_concurrency = expression_or(
            f, "MaxConcurrency", name, lambda: f.integer("MaxConcurrency", 0, minimum=0) or 0
        )
        self.max_concurrency_path = _path(f, "MaxConcurrencyPath", None)
        self.label = f.string("Label")
        if self.label is not None and (problem := name_problem(self.label)):
            raise f.error("Label", problem)  # it becomes part of the MapRunArn and result keys
        distributed_only = (
            "ItemReader",
            "ItemBatcher",
            "ResultWriter",
            "ToleratedFailurePercentage",
            "ToleratedFailurePercentagePath",
            "ToleratedFailureCount",
            "ToleratedFailureCountPath",
        )
        self.distributed: dict[str, Any] = {}
        for k in distributed_only:
            if f.has(k):
                if self.mode != "DISTRIBUTED":
                    raise f.error(
                        k, "is only allowed in a DISTRIBUTED Map (ItemProcessor.ProcessorConfig.Mode)"
                    )
                self.distributed[k] = f.get(k)
        if self.mode == "DISTRIBUTED":
            from distmap.asl.distributed import check_distributed_fields

            check_distributed_fields(self, f)
            if self.label is None and (problem := name_problem(self.name)):
                raise f.error(
                    "Label",
                    "is needed: without it the state's name is the Map's label (it goes into the "
                    f"MapRunArn and result keys), and a label {problem}",
                )

    def resources(self) -> list[str]:
        return self.processor.resources()

    def max_concurrency_for(self, effective: Any, ctx: Any) -> int:
        if isinstance(self.max_concurrency, Expression):
            value = typed(self.max_concurrency, states_of(effective, ctx), variables_of(ctx), "integer")
            if value < 0:
                raise StatesError(
                    "States.QueryEvaluationError", f"MaxConcurrency must be a non-negative integer, got {value}"
                )
            return value
        if self.max_concurrency_path is None:
            return self.max_concurrency
        from distmap.asl import path_values

        return path_values.non_negative(self.max_concurrency_path, "MaxConcurrencyPath", self.name, effective, ctx)

    def work(self, params: Any, effective: Any, ctx: dict[str, Any], run: Run) -> Any:
        if self.mode == "DISTRIBUTED":
            from distmap.asl.distributed import run_distributed_map

            return run_distributed_map(self, params, ctx, run)
        return self._run_inline(params, ctx, run)

    def items_of(self, effective: Any, ctx: Any) -> list[Any]:
        if self.jsonata:
            items = self.items(states_of(effective, ctx), variables_of(ctx)) if self.items is not None else effective
            if not isinstance(items, list):
                raise StatesError(
                    "States.QueryEvaluationError",
                    f"Items of state {self.name!r} must evaluate to an array, got {type(items).__name__}",
                )
            return items
        items = self.items_path.evaluate(effective, ctx) if self.items_path is not None else effective
        if not isinstance(items, list):
            raise Runtime(
                cause=f"ItemsPath of state {self.name!r} must select an array, got {type(items).__name__}"
            )
        return items

    def select(self, effective: Any, ctx: dict[str, Any], index: int, value: Any) -> Any:
        if self.item_selector is None:
            return value
        item_ctx = ContextObject(ctx, variables=variables_of(ctx))
        item_ctx["Map"] = {"Item": {"Index": index, "Value": value}}
        if self.jsonata:
            return self.item_selector(states_of(effective, item_ctx), variables_of(ctx))
        return self.item_selector(effective, item_ctx)

    def _run_inline(self, effective: Any, ctx: dict[str, Any], run: Run) -> Any:
        items = self.items_of(effective, ctx)
        if not items:
            return []
        limit = self.max_concurrency_for(effective, ctx) or INLINE_MAP_CONCURRENCY
        limit = min(limit, INLINE_MAP_CONCURRENCY, len(items))
        inputs = [self.select(effective, ctx, i, v) for i, v in enumerate(items)]
        sub = _child_run(run)
        if limit == 1:
            return [self.processor.run(x, sub) for x in inputs]
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="distmap-map") as pool:
            futures = [pool.submit(self.processor.run, x, sub) for x in inputs]
            _, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [fu for fu in futures if fu.done() and fu.exception() is not None]
            if failed:
                sub.cancel.set()
                for fu in futures:
                    fu.cancel()
                wait(futures)
                raise _first_error(failed)
        return [fu.result() for fu in futures]


_STATE_CLASSES: dict[str, type[State]] = {
    "Pass": PassState,
    "Task": TaskState,
    "Choice": ChoiceState,
    "Wait": WaitState,
    "Succeed": SucceedState,
    "Fail": FailState,
    "Parallel": ParallelState,
    "Map": MapState,
}


# --------------------------------------------------------------------------- machines


class StateMachine:
    """A validated state machine (the top level, a Parallel branch or a Map's ItemProcessor)."""

    def __init__(self, start_at: str, states: dict[str, State], timeout: float | None, where: str) -> None:
        self.start_at = start_at
        self.states = states
        self.timeout = timeout
        self.where = where

    @classmethod
    def parse(
        cls, data: Any, *, where: str = "", source: str | None = None, language: str = JSONPATH
    ) -> StateMachine:
        f = Fields(data, where, source)
        f.get("Comment")
        f.get("Version")
        language = language_of(f, language)
        start_at = f.string("StartAt", required=True)
        timeout = f.integer("TimeoutSeconds", None, minimum=1)
        raw_states = f.require("States")
        if not isinstance(raw_states, Mapping) or not raw_states:
            raise f.error("States", "must be a non-empty object of named states")
        f.finish()
        states: dict[str, State] = {}
        for name, body in raw_states.items():
            if not isinstance(name, str) or not name or len(name) > 80:
                raise f.error("States", f"state names must be 1-80 characters, got {name!r}")
            sf = Fields(body, f.sub(f"States.{name}") if where else f"States.{name}", source)
            kind = sf.get("Type")
            cls_ = _STATE_CLASSES.get(kind) if isinstance(kind, str) else None
            if cls_ is None:
                raise sf.error("Type", f"must be one of {', '.join(STATE_TYPES)}, got {kind!r}")
            state = cls_(name, sf, sf.path, language)
            sf.finish()
            states[name] = state
        if start_at not in states:
            raise f.error("StartAt", f"names no state: {start_at!r} (states: {', '.join(states)})")
        for state in states.values():
            for fld, target in state.targets():
                if target not in states:
                    raise ConfigError(f"{state.where}.{fld}", f"names no state: {target!r}", source=source)
        reachable = {start_at}
        todo = [start_at]
        while todo:
            for _, target in states[todo.pop()].targets():
                if target not in reachable:
                    reachable.add(target)
                    todo.append(target)
        unreachable = [n for n in states if n not in reachable]
        if unreachable:
            raise ConfigError(
                f"{f.sub('States')}.{unreachable[0]}", "is unreachable from StartAt", source=source
            )
        return cls(start_at, states, float(timeout) if timeout else None, where)

    def resources(self) -> list[str]:
        return [r for s in self.states.values() for r in s.resources()]

    def run(self, data: Any, run: Run) -> Any:
        run = run.scoped()  # what this machine (branch, iteration) assigns stays in it
        name = self.start_at
        while True:
            run.check_alive()
            out, nxt = self.states[name].execute(data, run)
            if nxt is None:
                return out
            data, name = out, nxt
