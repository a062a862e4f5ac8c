"""Workflow variables: ``Assign`` compiled once, evaluated per state, stored with AWS's limits.

Rules (AWS, "Passing data between states with variables"):

* ``Assign`` is an object of ``name: value``. In a JSONata state every value may hold ``{% %}``
  expressions (bound to ``$states`` and the variables); in a JSONPath state a name ending in
  ``.$`` takes a path (``$.x``, ``$$.x``, ``$other``) or an intrinsic function, as in Parameters.
* Every value of one Assign is evaluated against the variables as they were when the state was
  entered (assignments are simultaneous; ``Output`` does not see them either), then all are stored.
* Names: a letter or ``_`` then letters, digits or ``_``, at most 80 characters; ``states`` is
  reserved (``$states``). A bad name is a definition error.
* Limits: one variable at most 256 KiB, one Assign at most 256 KiB, all variables of an execution
  at most 10 MiB (serialized JSON). Going over fails the state with States.DataLimitExceeded.
* Scope: a Map iteration or Parallel branch starts with a copy of the variables it can see; what
  it assigns stays in it (the caller's variables never change).

:class:`ContextObject` is the context object (``$$``) with the current variables attached, which
is how JSONPath ``$name`` paths (:mod:`distmap.dataflow.jsonpath`) reach them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from distmap.dataflow.jsonata import compile_template
from distmap.dataflow.jsonpath import PathSyntaxError
from distmap.dataflow.templates import compile_payload
from distmap.dataflow.values import NotJson, dumps_json
from distmap.errors import DataLimitExceeded

__all__ = [
    "MAX_ASSIGN_BYTES",
    "MAX_TOTAL_BYTES",
    "MAX_VARIABLE_BYTES",
    "Assigner",
    "ContextObject",
    "compile_assign",
    "store",
    "variable_name_problem",
]

MAX_VARIABLE_BYTES = 256 * 1024
MAX_ASSIGN_BYTES = 256 * 1024
MAX_TOTAL_BYTES = 10 * 1024 * 1024
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Assigner = Callable[[Any, Any, Mapping[str, Any]], dict[str, Any]]
"""``assign(value, context, variables) -> {name: value}``: ``value`` is ``$states`` (JSONata) or
the JSONPath ``$`` of the state's Assign."""


class ContextObject(dict):  # type: ignore[type-arg]
    """The context object (``$$`` / ``$states.context``), carrying the variables in scope."""

    __slots__ = ("variables",)

    def __init__(self, *args: Any, variables: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.variables: Mapping[str, Any] = variables if variables is not None else {}


def variable_name_problem(name: Any) -> str | None:
    """Why ``name`` cannot name a variable, or None."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        return (
            f"variable names start with a letter or '_' and hold only letters, digits and '_', got {name!r}"
        )
    if len(name) > 80:
        return f"variable names are at most 80 characters, got {len(name)}"
    if name == "states":
        return "'states' is reserved ($states holds the state's input, result and context)"
    return None


def compile_assign(raw: Any, *, jsonata: bool, where: str, state: str | None = None) -> Assigner:
    """Compile an ``Assign`` field. Raises :class:`PathSyntaxError` (a ValueError) naming the
    field for a definition that cannot work."""
    if not isinstance(raw, Mapping):
        raise PathSyntaxError(f"{where}: must be an object of variable names to values, got {type(raw).__name__}")
    for key in raw:
        name = key[:-2] if (not jsonata and isinstance(key, str) and key.endswith(".$")) else key
        problem = variable_name_problem(name)
        if problem:
            raise PathSyntaxError(f"{where}.{key}: {problem}")
    if jsonata:
        template = compile_template(dict(raw), "Assign", state)
        return lambda states, _ctx, variables: template(states, variables)
    builder = compile_payload(dict(raw), where=where)
    return lambda value, ctx, _variables: builder(value, ctx)


def store(variables: dict[str, Any], assigned: Mapping[str, Any], state: str) -> None:
    """Store ``assigned`` in ``variables``, enforcing AWS's size limits."""
    total_assign = 0
    sizes: dict[str, int] = {}
    for name, value in assigned.items():
        try:
            size = len(dumps_json(value))
        except NotJson as exc:
            raise DataLimitExceeded(cause=f"the variable '{name}' assigned in state '{state}': {exc}") from None
        if size > MAX_VARIABLE_BYTES:
            raise DataLimitExceeded(
                cause=f"The variable '{name}' assigned in state '{state}' is {size} bytes, over the "
                f"limit of {MAX_VARIABLE_BYTES} bytes (256 KiB) for one variable"
            )
        sizes[name] = size
        total_assign += size
    if total_assign > MAX_ASSIGN_BYTES:
        raise DataLimitExceeded(
            cause=f"The Assign of state '{state}' is {total_assign} bytes, over the limit of "
            f"{MAX_ASSIGN_BYTES} bytes (256 KiB) for one Assign"
        )
    merged = {**variables, **assigned}
    total = sum(sizes.get(k) or len(dumps_json(v)) for k, v in merged.items())
    if total > MAX_TOTAL_BYTES:
        raise DataLimitExceeded(
            cause=f"After state '{state}' the variables would total {total} bytes, over the limit of "
            f"{MAX_TOTAL_BYTES} bytes (10 MiB) for one execution"
        )
    variables.update(assigned)
