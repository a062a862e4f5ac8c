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

import threading
import time
from collections.abc import Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

from distmap.asl.choice import parse_timestamp
from distmap.asl.execution_types import ExecutionTimedOut  # noqa: F401  (execution imports it from here)
from distmap.asl.query_language import (
    JSONATA,
    JSONPATH,
    expression_or,
    language_of,
    states_of,
    template,
    typed,
    variables_of,
)
from distmap.asl.state_base import (
    Run,
    State,
    _Cancelled,
    _path,
    _reference_path,
    _template,
    _Worker,
)
from distmap.asl.task_state import TaskState
from distmap.config.fields import Fields
from distmap.dataflow.jsonata import Expression
from distmap.dataflow.jsonpath import (
    copy_json,
    set_result_path,
)
from distmap.dataflow.variables import ContextObject
from distmap.errors import ConfigError, Runtime, StatesError
from distmap.names import name_problem
from distmap.records import EXECUTION_TYPES

STATE_TYPES = ("Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map")
INLINE_MAP_CONCURRENCY = 40  # AWS runs at most 40 inline Map iterations at once


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


class ChoiceState(State):
    has_next = False
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

    def __init__(self, name: str, f: Fields, where: str, language: str = JSONPATH) -> None:
        super().__init__(name, f, where, language)
        if f.has("Assign"):
            raise f.error("Assign", "a Succeed state has no Assign (it ends the execution or branch)")

    def execute(self, raw: Any, run: Run) -> tuple[Any, str | None]:
        ctx = run.context(self.name)
        effective = self.effective_input(raw, ctx)
        return self.complete(raw, ctx, run, effective, effective), None


class FailState(State):
    terminal = True
    has_io = False

    def __init__(self, name: str, f: Fields, where: str, language: str = JSONPATH) -> None:
        super().__init__(name, f, where, language)
        for key in ("Assign", "Output"):
            if f.has(key):
                raise f.error(key, "a Fail state has no Assign or Output (it ends the execution)")
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
        if self.jsonata and "QueryLanguage" not in processor:  # a DISTRIBUTED child parses it alone
            processor["QueryLanguage"] = JSONATA
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
