"""ASL payload templates (Parameters, ItemSelector, ResultSelector, ItemReader / ResultWriter
Parameters in JSONPath states), compiled once into a builder called for every evaluation.

Rules (Amazon States Language, "Payload Template"):

* A field whose name ends in ``.$`` is renamed without the suffix and its value, a string, is
  replaced: ``$...`` is a path on the template's input, ``$$...`` a path on the context object,
  anything else must be an intrinsic function (``States.Format(...)``, see
  :mod:`distmap.dataflow.intrinsics`). A path selects a value (a reference path) or a list of matches
  (any other JSONPath); see :mod:`distmap.dataflow.jsonpath`.
* Objects and arrays are processed recursively, however deeply nested; other fields are copied
  as they are. Strings in ordinary fields are never interpreted, even when they start with ``$``.
* After renaming, an object must not hold the same field twice (``"a"`` and ``"a.$"``).

Errors: a definition that cannot work (a ``.$`` value that is not a string, not a path and not
an intrinsic, a syntax error, a duplicate field) raises :class:`PathSyntaxError` naming the field
by its key path, e.g. ``Parameters.items[2].id.$``. At run time a path that matches nothing raises
States.Runtime ("The JSONPath '$.id' specified for the field 'Parameters.items[2].id.$' could not
be found in the input '...'") and a failing intrinsic raises States.IntrinsicFailure, both naming
the field.

The builder returns fresh objects: static parts of the template are copied on every call (never
shared between results). Values selected by paths are the input's own values, not copies, as
for every path in the engine. Field order follows the template.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from distmap.dataflow.intrinsics import compile_intrinsic, is_intrinsic
from distmap.dataflow.jsonpath import PathSyntaxError, compile_query, copy_json

__all__ = ["Builder", "compile_payload"]

Builder = Callable[[Any, Any], Any]
"""``builder(value, context) -> payload``."""


def _sub(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _plain(value: Any) -> Any:
    """A private deep copy in plain dicts and lists."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _constant(value: Any) -> Builder:
    """A static value; containers are copied for every payload, so results never share them."""
    if isinstance(value, Mapping | list):
        frozen = _plain(value)
        return lambda _v, _c: copy_json(frozen)
    return lambda _v, _c: value


def _dynamic_field(value: Any, where: str) -> Builder:
    """The builder of a ``.$`` field's value (``where`` is the field's key path)."""
    if not isinstance(value, str):
        raise PathSyntaxError(
            f"{where}: the value of a field ending in '.$' must be a string holding a path or an "
            f"intrinsic function, got {type(value).__name__} {value!r}"
        )
    try:
        if value.startswith("$"):
            return compile_query(value, field=where).getter()
        if is_intrinsic(value):
            return compile_intrinsic(value, field=where)
    except PathSyntaxError as exc:
        raise PathSyntaxError(f"{where}: {exc}") from None
    raise PathSyntaxError(
        f"{where}: {value!r} is neither a path (starting with '$' or '$$') nor an intrinsic function "
        "(such as States.Format(...))"
    )


def _compile_object(template: Mapping[Any, Any], where: str) -> Builder | None:
    base: dict[Any, Any] = {}
    dynamic: list[tuple[Any, Builder]] = []
    origin: dict[Any, str] = {}
    any_path = False
    for key, value in template.items():
        sub = _sub(where, str(key))
        if isinstance(key, str) and key.endswith(".$"):
            name: Any = key[:-2]
            builder: Builder | None = _dynamic_field(value, sub)
            any_path = True
        else:
            name = key
            builder = _compile(value, sub)
            if builder is not None:
                any_path = True
            elif isinstance(value, Mapping | list):
                builder = _constant(value)  # a static subtree, copied for every payload
        if name in origin:
            raise PathSyntaxError(f"{sub}: the field {name!r} is also defined by {origin[name]!r}")
        origin[name] = sub
        if builder is None:
            base[name] = value
        else:
            base[name] = None  # a placeholder keeps the template's field order
            dynamic.append((name, builder))
    if not any_path:
        return None
    fields = tuple(dynamic)

    def build(value: Any, context: Any) -> dict[Any, Any]:
        out = base.copy()
        for name, builder in fields:
            out[name] = builder(value, context)
        return out

    return build


def _compile_list(template: list[Any], where: str) -> Builder | None:
    builders = [_compile(item, f"{where}[{i}]") for i, item in enumerate(template)]
    if all(b is None for b in builders):
        return None
    parts = tuple(b if b is not None else _constant(item) for b, item in zip(builders, template, strict=True))
    return lambda value, context: [part(value, context) for part in parts]


def _compile(template: Any, where: str) -> Builder | None:
    """The builder of a subtree, or None when it holds no '.$' field (it is then copied as is)."""
    if isinstance(template, Mapping):
        return _compile_object(template, where)
    if isinstance(template, list):
        return _compile_list(template, where)
    return None


def compile_payload(template: Any, *, where: str = "") -> Builder:
    """Compile a payload template into ``builder(value, context) -> payload``.

    ``where`` prefixes the key paths in error messages (``"Parameters"`` gives
    ``Parameters.items[2].id.$``). Raises :class:`PathSyntaxError` (a ValueError) for an invalid
    template.
    """
    builder = _compile(template, where)
    return builder if builder is not None else _constant(template)
