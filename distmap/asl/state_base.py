"""The base of every state: ``Run`` (what one execution's states share), ``State`` (the fields
every state has: QueryLanguage, InputPath / OutputPath or Output, Assign, Next / End) and
``_Worker`` (Task, Parallel and Map: Parameters or Arguments, ResultSelector, ResultPath, Retry
and Catch). The state types are in :mod:`distmap.asl.task_state` and :mod:`distmap.asl.machine`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from distmap.asl.execution_types import ExecutionTimedOut
from distmap.asl.query_language import (
    JSONATA,
    JSONPATH,
    Flow,
    catcher_flow,
    check_fields,
    language_of,
    states_of,
    template,
    variables_of,
)
from distmap.asl.resources import Resources
from distmap.config.fields import Fields
from distmap.config.parse import parse_catchers, parse_retriers
from distmap.dataflow.jsonpath import (
    PathSyntaxError,
    compile_query,
    is_reference_path,
    set_result_path,
)
from distmap.dataflow.templates import compile_payload
from distmap.dataflow.variables import ContextObject
from distmap.errors import ConfigError, as_states_error, error_matches
from distmap.records import iso_now
from distmap.retry import RetryPolicy


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
    has_next = True  # Next / End (a Choice has neither)

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
        if not self.terminal and self.has_next:
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


