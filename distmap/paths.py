"""A compiled subset of ASL JSONPath: reference paths and payload templates.

Reference paths (``$``, ``$$`` for the context object, ``.name``, ``['name']``, ``["name"]``,
``[N]``) are compiled here into direct lookups; in templates, any other JSONPath (wildcards,
slices, filters) and intrinsic functions (``States.Format(...)``) are handed to
``distmap.asl.jsonpath`` / ``distmap.asl.intrinsics``.

Templates (ItemSelector, Parameters) are compiled once per job into closures, so a million
items cost one closure call each rather than a re-parse of the template.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from distmap.errors import Runtime

_STEP = re.compile(r"""\.([^.\[\]'"]+)|\[\s*'([^']*)'\s*\]|\[\s*"([^"]*)"\s*\]|\[\s*(-?\d+)\s*\]""")

Getter = Callable[[Any, Any], Any]
"""``getter(value_root, context_root) -> value``."""


class PathSyntaxError(ValueError):
    """A reference path is outside the supported subset."""


def parse_path(path: str) -> tuple[bool, tuple[str | int, ...]]:
    """Split a reference path into ``(is_context, steps)``.

    >>> parse_path("$.a['b'][0]")
    (False, ('a', 'b', 0))
    """
    if not isinstance(path, str) or not path.startswith("$"):
        raise PathSyntaxError(f"{path!r} is not a JSONPath (it must start with '$')")
    is_context = path.startswith("$$")
    rest = path[2:] if is_context else path[1:]
    steps: list[str | int] = []
    pos = 0
    while pos < len(rest):
        m = _STEP.match(rest, pos)
        if not m:
            raise PathSyntaxError(
                f"{path!r}: unsupported JSONPath syntax at {rest[pos:]!r} "
                "(supported: $, $$, .name, ['name'], [N])"
            )
        name, sq, dq, idx = m.groups()
        if name is not None:
            if name == "*":
                raise PathSyntaxError(f"{path!r}: wildcards are not supported")
            steps.append(name)
        elif sq is not None:
            steps.append(sq)
        elif dq is not None:
            steps.append(dq)
        else:
            steps.append(int(idx))
        pos = m.end()
    return is_context, tuple(steps)


def _walk(root: Any, steps: tuple[str | int, ...], path: str) -> Any:
    cur = root
    for step in steps:
        try:
            if isinstance(step, int):
                if not isinstance(cur, list):
                    raise KeyError(step)
                cur = cur[step]
            else:
                if not isinstance(cur, dict):
                    raise KeyError(step)
                cur = cur[step]
        except (KeyError, IndexError):
            raise Runtime(cause=f"The JSONPath '{path}' could not be found in the input") from None
    return cur


def compile_path(path: str) -> Getter:
    """Compile a reference path into ``getter(value_root, context_root)``."""
    is_context, steps = parse_path(path)
    if is_context:
        if not steps:
            return lambda _v, ctx: ctx
        return lambda _v, ctx: _walk(ctx, steps, path)
    if not steps:
        return lambda v, _ctx: v
    if len(steps) == 1 and isinstance(steps[0], str):
        key = steps[0]

        def one(v: Any, _ctx: Any) -> Any:
            try:
                return v[key]
            except (KeyError, TypeError, IndexError):
                return _walk(v, steps, path)

        return one
    return lambda v, _ctx: _walk(v, steps, path)


def compile_template(template: Any, *, where: str = "") -> Callable[[Any, Any], Any]:
    """Compile an ASL payload template (keys ending in ``.$`` take paths) into a builder.

    Raises PathSyntaxError naming the offending key when a path is unsupported.
    """
    if isinstance(template, Mapping):
        static: list[tuple[str, Any]] = []
        dynamic: list[tuple[str, Callable[[Any, Any], Any]]] = []
        for key, val in template.items():
            sub = f"{where}.{key}" if where else str(key)
            if isinstance(key, str) and key.endswith(".$"):
                if not isinstance(val, str):
                    raise PathSyntaxError(f"{sub}: a '.$' field must hold a JSONPath string")
                dynamic.append((key[:-2], _compile_value(val, sub)))
            else:
                inner = compile_template(val, where=sub)
                if _is_static(val):
                    static.append((key, val))
                else:
                    dynamic.append((key, inner))
        static_items = tuple(static)
        dynamic_items = tuple(dynamic)

        def build_obj(v: Any, ctx: Any) -> Any:
            out = dict(static_items)
            for k, getter in dynamic_items:
                out[k] = getter(v, ctx)
            return out

        return build_obj
    if isinstance(template, list):
        parts = [compile_template(x, where=f"{where}[{i}]") for i, x in enumerate(template)]
        if _is_static(template):
            return lambda _v, _c: copy_json(template)
        return lambda v, ctx: [p(v, ctx) for p in parts]
    return lambda _v, _c: template


def _compile_value(val: str, where: str) -> Getter:
    """A ``.$`` value: a reference path (fast), any other JSONPath, or an intrinsic function."""
    if val.startswith("States."):
        from distmap.asl.intrinsics import compile_intrinsic

        try:
            return compile_intrinsic(val, field=where)
        except ValueError as exc:
            raise PathSyntaxError(f"{where}: {exc}") from None
    try:
        return compile_path(val)
    except PathSyntaxError as exc:
        if not val.startswith("$"):
            raise PathSyntaxError(f"{where}: {exc}") from None
    from distmap.asl.jsonpath import compile_query  # wildcards, slices, filters...

    try:
        query = compile_query(val, field=where)
    except ValueError as exc:
        raise PathSyntaxError(f"{where}: {exc}") from None
    return query.evaluate


def _is_static(val: Any) -> bool:
    if isinstance(val, Mapping):
        return all(not (isinstance(k, str) and k.endswith(".$")) and _is_static(v) for k, v in val.items())
    if isinstance(val, list):
        return all(_is_static(x) for x in val)
    return True


def copy_json(val: Any) -> Any:
    """A deep copy of a JSON value (objects and arrays are copied, scalars shared)."""
    if isinstance(val, dict):
        return {k: copy_json(v) for k, v in val.items()}
    if isinstance(val, list):
        return [copy_json(x) for x in val]
    return val


def set_path(document: Any, path: str | None, value: Any) -> Any:
    """Apply an ASL ResultPath: return ``document`` with ``value`` placed at ``path``.

    ``$`` replaces the whole document, ``None`` (JSON null) discards the value.
    """
    if path is None:
        return document
    is_context, steps = parse_path(path)
    if is_context:
        raise PathSyntaxError("ResultPath cannot point into the context object ($$)")
    if not steps:
        return value
    root = copy_json(document) if isinstance(document, dict) else {}
    cur = root
    for step in steps[:-1]:
        if isinstance(step, int):
            raise PathSyntaxError(f"ResultPath {path!r}: array indexes are not supported")
        nxt = cur.get(step)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[step] = nxt
        cur = nxt
    last = steps[-1]
    if isinstance(last, int):
        raise PathSyntaxError(f"ResultPath {path!r}: array indexes are not supported")
    cur[last] = value
    return root
