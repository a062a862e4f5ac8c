"""JSONata expressions (``"{% ... %}"``) as Step Functions evaluates them, compiled once.

* The library is ``jlens`` (a Rust JSONata engine; chosen by measurement, see
  ``benchmarks/jsonata_libraries.py``: the best conformance of the candidates on the JSONata
  test suite, and a compiled expression can be evaluated from any thread, which distmap's Map
  and Parallel thread pools need). Every expression is parsed once, when the definition or job
  is loaded; a syntax error is a :class:`JsonataSyntaxError` naming the field.
* ``$states`` is bound to ``{"input", "context"}`` and, where the state has them, ``"result"`` and
  ``"errorOutput"``; workflow variables are bound by name (``$name``).
* AWS's extension functions: ``$partition``, ``$range``, ``$hash``, ``$random`` (with an optional
  seed), ``$uuid`` and ``$parse``. ``$eval`` is refused, as AWS does.
* A field whose expression returns nothing (JSONata's *undefined*) fails with
  States.QueryEvaluationError ("The JSONata expression '...' specified for the field 'Output'
  returned nothing (undefined)."); so does an expression that throws.
* Fast path: the forms people write in per-item fields (a path on ``$states`` or on a variable,
  an object constructor of such paths and literals) are evaluated by plain dict lookups, with the
  library's results; anything else, or a path that meets an array, goes to the library.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import jlens

from distmap.dataflow.jsonpath import PathSyntaxError, copy_json
from distmap.errors import QueryEvaluationError

__all__ = [
    "Expression",
    "JsonataSyntaxError",
    "Template",
    "compile_expression",
    "compile_template",
    "expression_text",
    "is_expression",
]

Template = Callable[[Mapping[str, Any], Mapping[str, Any]], Any]
"""``template(states, variables) -> value``: a compiled JSONata field value."""

_UNDEFINED = object()
_FALLBACK = object()
_WRAP = '($__distmap_v := ({expr}\n); $exists($__distmap_v) ? {{"v": $__distmap_v}} : {{}})'


class JsonataSyntaxError(PathSyntaxError):
    """A ``{% %}`` value that JSONata cannot parse (or that calls ``$eval``)."""


def is_expression(value: Any) -> bool:
    """Whether ``value`` is a JSONata expression string (``"{% ... %}"``)."""
    return isinstance(value, str) and value.startswith("{%") and value.endswith("%}") and len(value) >= 4


def expression_text(value: str) -> str:
    return value[2:-2].strip()


# --------------------------------------------------------------------------- extension functions


def _partition(array: Any, size: Any) -> list[Any]:
    if not isinstance(array, list) or isinstance(size, bool) or not isinstance(size, int | float) or size <= 0:
        raise ValueError("$partition expects an array and a positive chunk size")
    n = int(size)
    return [array[i : i + n] for i in range(0, len(array), n)]


def _range(start: Any, end: Any, step: Any) -> list[Any]:
    for v in (start, end, step):
        if isinstance(v, bool) or not isinstance(v, int | float) or int(v) != v:
            raise ValueError("$range expects integer start, end and step")
    if step == 0:
        raise ValueError("$range step must not be 0")
    out = list(range(int(start), int(end) + (1 if step > 0 else -1), int(step)))
    if len(out) > 1000:
        raise ValueError("$range can produce at most 1000 values")
    return out


_HASHES = {"MD5": hashlib.md5, "SHA-1": hashlib.sha1, "SHA-256": hashlib.sha256,
           "SHA-384": hashlib.sha384, "SHA-512": hashlib.sha512}


def _hash(data: Any, algorithm: Any = "SHA-256") -> str:
    if not isinstance(data, str):
        raise ValueError("$hash expects a string to hash")
    if algorithm not in _HASHES:
        raise ValueError(f"$hash algorithm must be one of {', '.join(_HASHES)}, got {algorithm!r}")
    return _HASHES[algorithm](data.encode()).hexdigest()


def _random(seed: Any = None) -> float:
    if seed is None:
        return random.random()
    if isinstance(seed, bool) or not isinstance(seed, int | float):
        raise ValueError("$random seed must be a number")
    return random.Random(seed).random()


def _uuid() -> str:
    return str(uuid.uuid4())


def _parse(text: Any) -> Any:
    if not isinstance(text, str):
        raise ValueError("$parse expects a string holding JSON")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"$parse: not valid JSON: {exc}") from None


def _eval(*_args: Any) -> Any:
    raise ValueError("$eval is not supported in Step Functions; use $parse")


_EXTENSIONS = {"partition": _partition, "range": _range, "hash": _hash, "uuid": _uuid, "parse": _parse}
_OVERRIDES = {"random": _random, "eval": _eval}
_EVAL_CALL = re.compile(r"\$eval\s*\(")


# --------------------------------------------------------------------------- fast path


class _Tokens:
    _TOKEN = re.compile(
        r'\s*(?:(?P<var>\$[A-Za-z_][A-Za-z0-9_]*)|(?P<name>[A-Za-z_][A-Za-z0-9_]*|`[^`]*`)|(?P<str>"(?:[^"\\]|\\.)*")'
        r"|(?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<punct>[.{}:,]))"
    )

    def __init__(self, text: str) -> None:
        self.items: list[tuple[str, str]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = self._TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                raise ValueError("not a simple form")
            self.items.append((m.lastgroup or "", m.group(m.lastgroup or 0)))
            pos = m.end()
        self.i = 0

    def peek(self) -> tuple[str, str]:
        return self.items[self.i] if self.i < len(self.items) else ("", "")

    def take(self, kind: str, text: str | None = None) -> str:
        k, t = self.peek()
        if k != kind or (text is not None and t != text):
            raise ValueError("not a simple form")
        self.i += 1
        return t


def _fast(tokens: _Tokens) -> Callable[[Mapping[str, Any], Mapping[str, Any]], Any]:
    kind, text = tokens.peek()
    if kind == "var":
        tokens.take("var")
        root = text[1:]
        keys: list[str] = []
        while tokens.peek() == ("punct", "."):
            tokens.take("punct")
            name = tokens.take("name")
            keys.append(name[1:-1] if name.startswith("`") else name)
        path = tuple(keys)

        is_states = root == "states"

        def careful(node: Any) -> Any:
            for key in path:
                if isinstance(node, dict):
                    node = node.get(key, _UNDEFINED)
                elif isinstance(node, list):
                    return _FALLBACK
                else:
                    return _UNDEFINED
            return _FALLBACK if isinstance(node, list) else node

        def lookup(states: Mapping[str, Any], variables: Mapping[str, Any]) -> Any:
            start = states if is_states else variables.get(root, _UNDEFINED)
            node = start
            try:
                for key in path:
                    node = node[key]
            except (KeyError, TypeError):  # a missing key, or a step into a non-object
                return careful(start)
            return _FALLBACK if type(node) is list else node

        if root == "states" and not path:
            raise ValueError("bare $states")
        return lookup
    if kind == "punct" and text == "{":
        tokens.take("punct", "{")
        fields: list[tuple[str, Callable[..., Any]]] = []
        while tokens.peek() != ("punct", "}"):
            if fields:
                tokens.take("punct", ",")
            key = json.loads(tokens.take("str"))
            tokens.take("punct", ":")
            fields.append((key, _fast(tokens)))
        tokens.take("punct", "}")
        if len({k for k, _ in fields}) != len(fields):
            raise ValueError("duplicate keys")
        parts = tuple(fields)

        def construct(states: Mapping[str, Any], variables: Mapping[str, Any]) -> Any:
            out = {}
            for key, part in parts:
                v = part(states, variables)
                if v is _FALLBACK:
                    return _FALLBACK
                if v is not _UNDEFINED:
                    out[key] = v
            return out

        return construct
    if kind in ("str", "num") or (kind == "name" and text in ("true", "false", "null")):
        tokens.take(kind)
        literal = json.loads(text)
        if isinstance(literal, float) and literal.is_integer():
            raise ValueError("leave number normalisation to the library")
        return lambda _s, _v: literal
    raise ValueError("not a simple form")


def _fast_path(text: str) -> Callable[[Mapping[str, Any], Mapping[str, Any]], Any] | None:
    try:
        tokens = _Tokens(text)
        fn = _fast(tokens)
        if tokens.i != len(tokens.items):
            return None
        return fn
    except (ValueError, IndexError):
        return None


# --------------------------------------------------------------------------- expressions


class Expression:
    """One compiled ``{% %}`` expression of a field (``field`` as AWS names it: ``Arguments/id``)."""

    __slots__ = ("_compiled", "_fast", "field", "state", "text")

    def __init__(self, text: str, field: str, state: str | None = None) -> None:
        self.text = text
        self.field = field
        self.state = state
        if not text:
            raise JsonataSyntaxError(f"{field}: the JSONata expression is empty")
        if _EVAL_CALL.search(text):
            raise JsonataSyntaxError(f"{field}: $eval is not supported in Step Functions; use $parse")
        try:
            jlens.Expression(text)
            compiled = jlens.Expression(_WRAP.format(expr=text))
        except jlens.JlensError as exc:
            raise JsonataSyntaxError(f"{field}: the JSONata expression {text!r} is invalid: {exc}") from None
        for name, fn in {**_EXTENSIONS, **_OVERRIDES}.items():
            compiled.register_function(name, fn)
        self._compiled = compiled
        self._fast = _fast_path(text)

    def _prefix(self) -> str:
        return f"An error occurred while executing the state '{self.state}'. " if self.state else ""

    def evaluate(self, states: Mapping[str, Any], variables: Mapping[str, Any]) -> Any:
        """The expression's value, or ``UNDEFINED`` when it returns nothing."""
        if self._fast is not None:
            value = self._fast(states, variables)
            if value is not _FALLBACK:
                return value
        bindings = dict(variables)
        bindings["states"] = states
        try:
            box = self._compiled.evaluate(None, bindings)
        except (jlens.JlensError, ValueError, TypeError) as exc:
            code = getattr(exc, "code", None)
            raise QueryEvaluationError(
                cause=f"{self._prefix()}The JSONata expression '{self.text}' specified for the field "
                f"'{self.field}' threw an error during evaluation. {code + ': ' if code else ''}{exc}"
            ) from None
        return box.get("v", _UNDEFINED)

    def value(self, states: Mapping[str, Any], variables: Mapping[str, Any]) -> Any:
        """The expression's value; States.QueryEvaluationError when it returns nothing."""
        value = self.evaluate(states, variables)
        if value is _UNDEFINED:
            raise QueryEvaluationError(
                cause=f"{self._prefix()}The JSONata expression '{self.text}' specified for the field "
                f"'{self.field}' returned nothing (undefined)."
            )
        return value


def compile_expression(value: str, field: str, state: str | None = None) -> Expression:
    """Compile a ``"{% ... %}"`` string."""
    return Expression(expression_text(value), field, state)


def _constant(value: Any) -> Template:
    if isinstance(value, Mapping | list):
        frozen = copy_json(value)
        return lambda _s, _v: copy_json(frozen)
    return lambda _s, _v: value


def _compile(value: Any, field: str, state: str | None) -> Template | None:
    if is_expression(value):
        expression = compile_expression(value, field, state)
        fast, slow = expression._fast, expression.value
        if fast is None:
            return slow

        def quick(states: Mapping[str, Any], variables: Mapping[str, Any]) -> Any:
            found = fast(states, variables)
            if found is _FALLBACK or found is _UNDEFINED:
                return slow(states, variables)  # the library, or the undefined error
            return found

        return quick
    if isinstance(value, Mapping):
        parts = [(k, _compile(v, f"{field}/{k}", state), v) for k, v in value.items()]
        if all(p is None for _, p, _ in parts):
            return None
        built = tuple((k, p if p is not None else _constant(v)) for k, p, v in parts)
        return lambda s, v: {k: p(s, v) for k, p in built}
    if isinstance(value, list):
        items = [(_compile(x, f"{field}/{i}", state), x) for i, x in enumerate(value)]
        if all(p is None for p, _ in items):
            return None
        seq = tuple(p if p is not None else _constant(x) for p, x in items)
        return lambda s, v: [p(s, v) for p in seq]
    return None


def compile_template(value: Any, field: str, state: str | None = None) -> Template:
    """A JSONata field value (``Arguments``, ``Output``, ``ItemSelector`` ...): any JSON in which
    every ``"{% %}"`` string is an expression, evaluated per call; everything else is copied."""
    compiled = _compile(value, field, state)
    return compiled if compiled is not None else _constant(value)


UNDEFINED = _UNDEFINED
