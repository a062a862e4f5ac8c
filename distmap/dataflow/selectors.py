"""The per-item payloads of a Map in either query language: ``ItemSelector`` and ``BatchInput``.

``compile_selector(template, query_language)`` gives the same callable for both languages,
``selector(state_input, context) -> payload``, compiled once and called per item (the context
object holds ``Map.Item.Index`` / ``Map.Item.Value``):

* JSONPath: a payload template (:mod:`distmap.dataflow.templates`), ``$`` the Map's input and
  ``$$`` the context object;
* JSONata: a JSONata field value (:mod:`distmap.dataflow.jsonata`), ``$states.input`` the Map's
  input, ``$states.context`` the context object, and the workflow variables the context carries.

``BatchInput`` compiles the same way (JSONPath: a static object, as ``distmap run`` has always
taken it; JSONata: ``{% %}`` expressions on ``$states.input`` / ``$states.context``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from distmap.dataflow.jsonata import compile_template
from distmap.dataflow.templates import compile_payload
from distmap.dataflow.variables import ContextObject

__all__ = ["JSONATA", "JSONPATH", "QUERY_LANGUAGES", "Selector", "compile_batch_input", "compile_selector"]

JSONPATH = "JSONPath"
JSONATA = "JSONata"
QUERY_LANGUAGES = (JSONPATH, JSONATA)

Selector = Callable[[Any, Any], Any]
"""``selector(state_input, context) -> payload``."""

_NO_VARIABLES: Mapping[str, Any] = {}


def _jsonata(template: Any, where: str, variables: Mapping[str, Any] | None = None) -> Selector:
    compiled = compile_template(template, where)
    if variables:
        bound = dict(variables)
        return lambda state_input, context: compiled({"input": state_input, "context": context}, bound)

    def select(state_input: Any, context: Any) -> Any:
        return compiled({"input": state_input, "context": context}, getattr(context, "variables", _NO_VARIABLES))

    return select


def compile_selector(
    template: Any,
    query_language: str = JSONPATH,
    *,
    where: str = "ItemSelector",
    variables: Mapping[str, Any] | None = None,
) -> Selector:
    """Compile an ItemSelector. ``variables`` are the workflow variables it may read (``$name``),
    when the context objects it is called with do not carry them. Raises
    :class:`~distmap.dataflow.jsonpath.PathSyntaxError` (a ValueError) naming the field for a
    template that cannot work."""
    if query_language == JSONATA:
        return _jsonata(template, where, variables)
    builder = compile_payload(template, where=where)
    if not variables:
        return builder
    bound = dict(variables)
    return lambda state_input, context: builder(state_input, ContextObject(context, variables=bound))


def compile_batch_input(value: Any, query_language: str = JSONPATH) -> Selector:
    """Compile a BatchInput: ``batch_input(state_input, context) -> value``."""
    if query_language == JSONATA:
        return _jsonata(value, "ItemBatcher/BatchInput")
    return lambda _input, _context: value
