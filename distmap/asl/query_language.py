"""``QueryLanguage``: which fields a state may have, and the data flow of JSONata states.

A state's language is its own ``QueryLanguage``, else its state machine's (Parallel branches and
Map processors inherit the enclosing one), else JSONPath. A JSONata machine cannot hold JSONPath
states; a JSONPath machine may hold JSONata states (AWS's rule).

Field rules (definition errors, reported as ConfigError naming the state and field):

* JSONata states have no ``InputPath``, ``Parameters``, ``ResultSelector``, ``ResultPath``,
  ``OutputPath``, ``ItemsPath``, ``Result`` (Pass) nor any ``...Path`` field (``TimeoutSecondsPath``,
  ``SecondsPath``, ``ErrorPath`` ...): they use ``Arguments``, ``Output``, ``Assign``, ``Items`` and
  ``{% %}`` values in the plain fields (``TimeoutSeconds``, ``Seconds``, ``Error`` ...).
* JSONPath states have no ``Arguments``, ``Output``, ``Items`` nor Choice ``Condition``.

Data flow of a JSONata state (``$states``: ``input``, ``context``, and ``result`` after the work,
``errorOutput`` in a Catch)::

    raw input -> Arguments (default: the input) -> the work -> Output (default: the result)
                                                           \\-> Assign (sees the old variables)
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from distmap.config.fields import Fields, type_name
from distmap.dataflow.jsonata import Expression, compile_expression, compile_template, is_expression
from distmap.dataflow.jsonpath import PathSyntaxError, render_json
from distmap.dataflow.variables import ContextObject, compile_assign, store
from distmap.errors import ConfigError, QueryEvaluationError

JSONPATH = "JSONPath"
JSONATA = "JSONata"
LANGUAGES = (JSONPATH, JSONATA)

JSONPATH_ONLY = (
    "InputPath",
    "Parameters",
    "ResultSelector",
    "ResultPath",
    "OutputPath",
    "ItemsPath",
    "TimeoutSecondsPath",
    "HeartbeatSecondsPath",
    "MaxConcurrencyPath",
    "SecondsPath",
    "TimestampPath",
    "ErrorPath",
    "CausePath",
    "ToleratedFailurePercentagePath",
    "ToleratedFailureCountPath",
)
JSONATA_ONLY = ("Arguments", "Output", "Items")
JSONATA_INSTEAD = {
    "InputPath": "Arguments",
    "Parameters": "Arguments",
    "ResultSelector": "Output",
    "ResultPath": "Output",
    "OutputPath": "Output",
    "ItemsPath": "Items",
    "Result": "Output",
}


def language_of(f: Fields, inherited: str) -> str:
    """The state's (or machine's) query language; checks the value and AWS's nesting rule."""
    raw = f.get("QueryLanguage")
    if raw is None:
        return inherited
    if raw not in LANGUAGES:
        raise f.error("QueryLanguage", f"must be JSONPath or JSONata, got {raw!r}")
    if inherited == JSONATA and raw == JSONPATH:
        raise f.error(
            "QueryLanguage",
            "cannot be JSONPath inside a JSONata state machine (a JSONPath machine may hold JSONata "
            "states, not the reverse)",
        )
    return raw


def check_fields(f: Fields, language: str, kind: str) -> None:
    """AWS's per-language field rules for one state."""
    if language == JSONATA:
        forbidden = JSONPATH_ONLY + (("Result",) if kind == "Pass" else ())
        for key in forbidden:
            if f.has(key):
                instead = JSONATA_INSTEAD.get(key, key.removesuffix("Path") + " with a {% %} expression")
                raise f.error(
                    key, f"is a JSONPath field and is not allowed in a JSONata state; use {instead}"
                )
    else:
        for key in JSONATA_ONLY:
            if f.has(key):
                raise f.error(
                    key, 'is a JSONata field; set "QueryLanguage": "JSONata" on the state or its state machine'
                )


def template(f: Fields, key: str, state: str) -> Any:
    """A JSONata field value (any JSON with ``{% %}`` strings) compiled, or None when absent."""
    if not f.has(key):
        return None
    try:
        return compile_template(f.get(key), key, state)
    except PathSyntaxError as exc:
        raise ConfigError(f.sub(key), str(exc).removeprefix(f"{key}: "), source=f.source) from None


def assigner(f: Fields, language: str, state: str) -> Any:
    if not f.has("Assign"):
        return None
    try:
        return compile_assign(f.get("Assign"), jsonata=language == JSONATA, where=f.sub("Assign"), state=state)
    except PathSyntaxError as exc:
        raise ConfigError(f.sub("Assign"), str(exc).removeprefix(f"{f.sub('Assign')}"), source=f.source) from None


def expression_or(f: Fields, key: str, state: str, static: Any) -> Expression | Any:
    """``key`` as a compiled ``{% %}`` expression when it is one, else ``static()`` (the usual
    parse of the field)."""
    raw = f.get(key)
    if is_expression(raw):
        try:
            return compile_expression(raw, key, state)
        except PathSyntaxError as exc:
            raise ConfigError(f.sub(key), str(exc).removeprefix(f"{key}: "), source=f.source) from None
    return static()


def _type_of(value: Any) -> str:
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array",
            dict: "object", type(None): "null"}.get(type(value), type_name(value))


def typed(expression: Expression, states: Any, variables: Any, expected: str) -> Any:
    """The expression's value, which must be of JSON type ``expected`` ('number', 'integer',
    'string', 'boolean', 'array', 'object'); numeric strings count as numbers."""
    value = expression.value(states, variables)
    if expected in ("number", "integer") and isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value) if "." in value or "e" in value.lower() else int(value)
    actual = _type_of(value)
    ok = actual == expected or (expected == "integer" and actual == "number" and float(value).is_integer())
    if not ok:
        raise QueryEvaluationError(
            cause=f"The JSONata expression '{expression.text}' specified for the field '{expression.field}' "
            f"returned an unexpected result type. Expected '{expected}', but was '{actual}' for value: "
            f"{render_json(value)}"
        )
    return int(value) if expected == "integer" else value


def states_of(raw: Any, ctx: Any, **more: Any) -> dict[str, Any]:
    """The ``$states`` variable."""
    out = {"input": raw, "context": ctx}
    out.update(more)
    return out


def variables_of(ctx: Any) -> Mapping[str, Any]:
    return ctx.variables if isinstance(ctx, ContextObject) else {}


class Flow:
    """A state's ``Output`` (JSONata) and ``Assign`` (both languages), applied at its end."""

    def __init__(self, f: Fields, language: str, state: str) -> None:
        self.state = state
        self.jsonata = language == JSONATA
        self.output = template(f, "Output", state) if self.jsonata else None
        self.assign = assigner(f, language, state)

    def finish(self, run_variables: dict[str, Any], states: dict[str, Any], assign_input: Any, default: Any) -> Any:
        """Evaluate Assign and Output against the variables as they were, then store Assign.
        ``assign_input`` is the JSONPath ``$`` of Assign (unused in JSONata, which reads ``$states``)."""
        ctx = states["context"]
        variables = variables_of(ctx)
        assigned = None
        if self.assign is not None:
            assigned = self.assign(states if self.jsonata else assign_input, ctx, variables)
        output = self.output(states, variables) if self.output is not None else default
        if assigned:
            store(run_variables, assigned, self.state)
        return output


def catcher_flow(raw: Any, where: str, language: str, state: str, source: str | None) -> Flow | None:
    """The Output / Assign of one catcher (``Catch[i]``), or None when it has neither."""
    if not isinstance(raw, Mapping) or ("Output" not in raw and "Assign" not in raw):
        return None
    f = Fields({k: raw[k] for k in ("Output", "Assign") if k in raw}, where, source)
    if language != JSONATA and "Output" in raw:
        raise f.error("Output", 'is a JSONata field; set "QueryLanguage": "JSONata" on the state or its state machine')
    return Flow(f, language, state)
