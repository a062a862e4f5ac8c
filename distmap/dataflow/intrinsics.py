"""Intrinsic functions of the Amazon States Language (states that use JSONPath).

An intrinsic is the value of a payload-template field whose name ends in ``.$``::

    "greeting.$": "States.Format('Welcome to {} {}\\\\'s playlist.', $.firstName, $.lastName)"

Syntax: ``States.Name(arg, ...)``, the name followed immediately by ``(``; blanks are allowed
around arguments. An argument is a string in apostrophes, a JSON number (``-1``, ``2.5``,
``1e3``; not ``1.`` or ``.5``), ``true``, ``false``, ``null``, a path (``$``, ``$.a[0]``,
``$$.Execution.Id``, any JSONPath of :mod:`distmap.dataflow.jsonpath`) or a nested call. In a string
``\\'`` is ``'``, ``\\{`` is ``{``, ``\\}`` is ``}`` and ``\\\\`` is ``\\`` (in the JSON definition each
backslash is doubled); any other backslash is a definition error. A field holds at most 10
calls in all (AWS: "nest up to 10 intrinsic functions within a field", counting every call).

Functions (argument checks as AWS documents them; ``int`` arguments of the array functions are
truncated toward zero and those of MathAdd / MathRandom rounded half up, as AWS does)::

    States.Format(template, values...)       '{}' placeholders; values: string/number/bool/null
    States.StringToJson(string)               parse JSON text
    States.JsonToString(value)                compact JSON text ({"a":1,"b":[2]})
    States.Array(values...)                   [values...]
    States.ArrayPartition(array, size)        chunks of size >= 1; the last may be shorter
    States.ArrayContains(array, value)        structural equality
    States.ArrayRange(first, last, step)      first..last inclusive, step != 0, <= 1000 items
    States.ArrayGetItem(array, index)         0 <= index < length
    States.ArrayLength(array)
    States.ArrayUnique(array)                 first occurrences, in order
    States.Base64Encode(string)               <= 10,000 characters, UTF-8, RFC 4648 with padding
    States.Base64Decode(string)               <= 10,000 characters, decoded as UTF-8
    States.Hash(value, algorithm)             MD5 SHA-1 SHA-256 SHA-384 SHA-512, lowercase hex;
                                              a non-string value is hashed as its JSON text;
                                              that text is at most 10,000 characters
    States.JsonMerge(object, object, false)   shallow merge, the second wins; deep (true) is
                                              rejected: AWS supports only the shallow mode
    States.MathRandom(start, end[, seed])     start <= n < end; a seed makes it repeatable
    States.MathAdd(a, b)                      a + b; a, b within -2147483648..2147483647
    States.StringSplit(string, delimiters)    every character of delimiters splits; empty
                                              pieces are dropped
    States.UUID()                             a random version 4 UUID

Errors. A definition that cannot work raises :class:`IntrinsicSyntaxError` (a PathSyntaxError,
hence a ValueError) at compile time, naming the function: syntax, unknown function, wrong
number of arguments, a literal argument of the wrong type or value (``States.MathAdd('a', 1)``,
``States.JsonMerge($.a, $.b, true)``), a Format template whose ``{}`` count does not match its
values, and a call on literals only that fails (``States.ArrayRange(1, 2000, 1)``). At run time
a bad argument raises ``StatesError("States.IntrinsicFailure", cause)``; the cause starts with
``Invalid arguments in States.Name`` (the text AWS uses) and says which argument is wrong and
why. A path argument that matches nothing raises States.Runtime, like any path.

Choices where AWS is silent: a Format template taken from a path honours the same ``\\{ \\}
\\\\`` escapes as a literal and fails on a lone brace; numbers print as Python's ``repr`` (``2.5``,
``1e+20``); Base64Decode ignores characters outside the Base64 alphabet (MIME decoding) and
replaces byte sequences that are not UTF-8 with U+FFFD; Base64Encode inserts no line breaks;
MathRandom's seed may be any number (rounded); MathAdd's sum is not range-checked.
Note: real Step Functions executions report intrinsic failures as ``States.Runtime`` (the ASL
specification names ``States.IntrinsicFailure``); change :data:`INTRINSIC_FAILURE` to follow it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from distmap.dataflow.jsonpath import PathSyntaxError, compile_query, copy_json, json_equal, render_json
from distmap.errors import StatesError

__all__ = [
    "FUNCTIONS",
    "INTRINSIC_FAILURE",
    "IntrinsicSyntaxError",
    "compile_intrinsic",
    "is_intrinsic",
]

INTRINSIC_FAILURE = "States.IntrinsicFailure"
MAX_CALLS_PER_FIELD = 10
MAX_STRING_CHARS = 10_000
MAX_RANGE_ITEMS = 1000
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
HASH_ALGORITHMS: dict[str, Callable[[bytes], Any]] = {
    "MD5": hashlib.md5,
    "SHA-1": hashlib.sha1,
    "SHA-256": hashlib.sha256,
    "SHA-384": hashlib.sha384,
    "SHA-512": hashlib.sha512,
}

Evaluator = Callable[[Any, Any], Any]
"""``evaluator(value, context) -> result``."""


class IntrinsicSyntaxError(PathSyntaxError):
    """An intrinsic function that can never be evaluated (a definition error)."""


class _Invalid(Exception):
    """An argument (or combination) a function rejects; the message says why."""


# --------------------------------------------------------------------------- argument checks

Check = Callable[[Any], Any]
"""``check(value) -> value`` (possibly converted); raises _Invalid with a ``must ...`` phrase."""


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if type(value) in (int, float):
        return f"the number {render_json(value, 40)}"
    if isinstance(value, str):
        return f"the string {render_json(value, 40)}"
    if isinstance(value, list):
        return f"an array ({render_json(value, 40)})"
    if isinstance(value, dict):
        return f"an object ({render_json(value, 40)})"
    return type(value).__name__


def _any(value: Any) -> Any:
    return value


def _array(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise _Invalid(f"must be an array, got {_describe(value)}")
    return value


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(f"must be a JSON object, got {_describe(value)}")
    return value


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"must be a string, got {_describe(value)}")
    return value


def _limited_string(value: Any) -> str:
    text = _string(value)
    if len(text) > MAX_STRING_CHARS:
        raise _Invalid(f"must be at most {MAX_STRING_CHARS} characters long, got {len(text)}")
    return text


def _scalar(value: Any) -> Any:
    if isinstance(value, list | dict):
        raise _Invalid(f"must be a string, number, boolean or null, got {_describe(value)}")
    return value


def _number(value: Any) -> int | float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise _Invalid(f"must be a number, got {_describe(value)}")
    return value


def _truncated(value: Any) -> int:
    """An integer argument; a fraction is truncated toward zero (AWS, array functions)."""
    if type(value) not in (int, float) or not math.isfinite(value):
        raise _Invalid(f"must be an integer, got {_describe(value)}")
    return int(value)


def _rounded(value: Any) -> int:
    """An integer argument; a fraction is rounded half up, like Java's Math.round (AWS: MathAdd,
    MathRandom "round it off to the nearest integer")."""
    if type(value) not in (int, float) or not math.isfinite(value):
        raise _Invalid(f"must be an integer, got {_describe(value)}")
    if type(value) is int:
        return value
    low = math.floor(value)
    return low + 1 if value - low >= 0.5 else low


def _int32(value: Any) -> int:
    n = _rounded(value)
    if not INT32_MIN <= n <= INT32_MAX:
        raise _Invalid(f"must be an integer between {INT32_MIN} and {INT32_MAX}, got {_describe(value)}")
    return n


def _chunk_size(value: Any) -> int:
    n = _truncated(value)
    if n < 1:
        raise _Invalid(f"must be a positive integer, got {_describe(value)}")
    return n


def _step(value: Any) -> int:
    n = _truncated(value)
    if n == 0:
        raise _Invalid(f"must be a non-zero integer, got {_describe(value)}")
    return n


def _index(value: Any) -> int:
    n = _truncated(value)
    if n < 0:
        raise _Invalid(f"must be a non-negative integer, got {_describe(value)}")
    return n


def _hash_data(value: Any) -> str:
    text = value if isinstance(value, str) else _json_text(value)
    if len(text) > MAX_STRING_CHARS:
        raise _Invalid(
            f"must be at most {MAX_STRING_CHARS} characters long once stringified, got {len(text)}"
        )
    return text


def _hash_algorithm(value: Any) -> Callable[[bytes], Any]:
    if isinstance(value, str) and value in HASH_ALGORITHMS:
        return HASH_ALGORITHMS[value]
    raise _Invalid(f"must be one of {', '.join(HASH_ALGORITHMS)}, got {_describe(value)}")


def _shallow_flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"must be a boolean, got {_describe(value)}")
    if value:
        raise _Invalid("must be false: Step Functions supports only the shallow merge mode")
    return value


# --------------------------------------------------------------------------- Format templates


@dataclass(frozen=True, slots=True)
class _Template:
    """A Format template split at its ``{}`` placeholders (len(parts) == placeholders + 1)."""

    parts: tuple[str, ...]


def _split_template(chars: list[tuple[str, bool]]) -> _Template:
    """Split ``(character, escaped)`` pairs at unescaped ``{}``; a lone brace is an error."""
    parts: list[str] = []
    buf: list[str] = []
    k = 0
    while k < len(chars):
        c, escaped = chars[k]
        if not escaped and c == "{":
            if k + 1 < len(chars) and chars[k + 1] == ("}", False):
                parts.append("".join(buf))
                buf = []
                k += 2
                continue
            raise _Invalid("has a '{' that does not open a '{}' placeholder (escape it as \\{)")
        if not escaped and c == "}":
            raise _Invalid("has a '}' that does not close a '{}' placeholder (escape it as \\})")
        buf.append(c)
        k += 1
    parts.append("".join(buf))
    return _Template(tuple(parts))


@functools.lru_cache(maxsize=256)
def _runtime_template(text: str) -> _Template:
    chars: list[tuple[str, bool]] = []
    k = 0
    while k < len(text):
        if text[k] == "\\" and k + 1 < len(text) and text[k + 1] in "{}\\'":
            chars.append((text[k + 1], True))
            k += 2
        else:
            chars.append((text[k], False))
            k += 1
    return _split_template(chars)


def _template(value: Any) -> _Template:
    if isinstance(value, _Template):
        return value
    return _runtime_template(_string(value))


def _format_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


# --------------------------------------------------------------------------- implementations


def _json_text(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # integers beyond 64 bits
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _format(template: _Template, *values: Any) -> str:
    holes = len(template.parts) - 1
    if holes != len(values):
        raise _Invalid(
            f"the template has {holes} '{{}}' placeholder(s) but {len(values)} value(s) were given"
        )
    out = [template.parts[0]]
    for value, part in zip(values, template.parts[1:], strict=True):
        out.append(_format_value(value))
        out.append(part)
    return "".join(out)


def _string_to_json(text: str) -> Any:
    try:  # the standard library keeps big integers exact (orjson turns them into floats)
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise _Invalid(f"the argument is not valid JSON text ({exc}): {render_json(text, 80)}") from None


def _array_partition(array: list[Any], size: int) -> list[list[Any]]:
    return [array[i : i + size] for i in range(0, len(array), size)]


def _array_contains(array: list[Any], value: Any) -> bool:
    return any(json_equal(item, value) for item in array)


def _array_range(first: int, last: int, step: int) -> list[int]:
    count = max(0, (last - first) // step + 1)
    if count > MAX_RANGE_ITEMS:
        raise _Invalid(f"the range would hold {count} items; at most {MAX_RANGE_ITEMS} are allowed")
    return [first + i * step for i in range(count)]


def _array_get_item(array: list[Any], index: int) -> Any:
    if index >= len(array):
        raise _Invalid(f"the index {index} is out of bounds for an array of {len(array)} item(s)")
    return array[index]


def _canonical(value: Any) -> Any:
    """A hashable key equal for JSON-equal values (1 and 1.0 collide, as they should)."""
    if isinstance(value, dict):
        return ("o", frozenset((k, _canonical(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("a", tuple(_canonical(v) for v in value))
    if isinstance(value, bool):
        return ("b", value)
    return ("v", value)


def _array_unique(array: list[Any]) -> list[Any]:
    seen: set[Any] = set()
    out = []
    for item in array:
        key = _canonical(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _base64_encode(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/]")


def _base64_decode(text: str) -> str:
    cleaned = _NOT_BASE64.sub("", text)
    if len(cleaned) % 4 == 1:
        raise _Invalid(f"the argument is not Base64 text (a dangling character): {render_json(text, 80)}")
    data = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4))
    return data.decode("utf-8", errors="replace")


def _hash(text: str, algorithm: Callable[[bytes], Any]) -> str:
    return algorithm(text.encode("utf-8")).hexdigest()


def _json_merge(first: dict[str, Any], second: dict[str, Any], _deep: bool) -> dict[str, Any]:
    return {**first, **second}


def _math_random(start: int, end: int, seed: int | float | None = None) -> int:
    if start >= end:
        raise _Invalid(f"the start ({start}) must be less than the end ({end}), which is exclusive")
    rng: Any = random if seed is None else random.Random(_rounded(seed))
    return rng.randrange(start, end)


def _math_add(a: int, b: int) -> int:
    return a + b


def _string_split(text: str, delimiters: str) -> list[str]:
    if not delimiters:
        return [text] if text else []
    pattern = "[" + "".join(re.escape(c) for c in delimiters) + "]"
    return [piece for piece in re.split(pattern, text) if piece]


def _uuid() -> str:
    return str(uuid.uuid4())


# --------------------------------------------------------------------------- the function table


@dataclass(frozen=True, slots=True)
class _Function:
    name: str
    params: tuple[tuple[str, Check], ...]
    impl: Callable[..., Any]
    optional: int = 0
    variadic: tuple[str, Check] | None = None
    pure: bool = True

    @property
    def min_args(self) -> int:
        return len(self.params) - self.optional

    @property
    def max_args(self) -> int | None:
        return None if self.variadic else len(self.params)

    def arity(self) -> str:
        low, high = self.min_args, self.max_args
        if high is None:
            return f"at least {low} argument{'s' * (low != 1)}"
        if low == high:
            return f"exactly {low} argument{'s' * (low != 1)}"
        return f"{low} to {high} arguments"

    def checks(self, count: int) -> list[tuple[str, Check]]:
        named = list(self.params[:count])
        if self.variadic is not None:
            named += [self.variadic] * (count - len(named))
        return [(f"{_ordinal(i)} argument ({label})", check) for i, (label, check) in enumerate(named)]


def _ordinal(i: int) -> str:
    words = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")
    return words[i] if i < len(words) else f"{i + 1}th"


_FUNCTION_LIST = (
    _Function("States.Format", (("template", _template),), _format, variadic=("value", _scalar)),
    _Function("States.StringToJson", (("string", _string),), _string_to_json),
    _Function("States.JsonToString", (("value", _any),), _json_text),
    _Function("States.Array", (), lambda *values: list(values), variadic=("value", _any)),
    _Function("States.ArrayPartition", (("array", _array), ("chunk size", _chunk_size)), _array_partition),
    _Function("States.ArrayContains", (("array", _array), ("value", _any)), _array_contains),
    _Function(
        "States.ArrayRange", (("first", _truncated), ("last", _truncated), ("step", _step)), _array_range
    ),
    _Function("States.ArrayGetItem", (("array", _array), ("index", _index)), _array_get_item),
    _Function("States.ArrayLength", (("array", _array),), len),
    _Function("States.ArrayUnique", (("array", _array),), _array_unique),
    _Function("States.Base64Encode", (("string", _limited_string),), _base64_encode),
    _Function("States.Base64Decode", (("string", _limited_string),), _base64_decode),
    _Function("States.Hash", (("data", _hash_data), ("algorithm", _hash_algorithm)), _hash),
    _Function(
        "States.JsonMerge", (("object", _object), ("object", _object), ("deep", _shallow_flag)), _json_merge
    ),
    _Function(
        "States.MathRandom",
        (("start", _int32), ("end", _int32), ("seed", _number)),
        _math_random,
        optional=1,
        pure=False,
    ),
    _Function("States.MathAdd", (("number", _int32), ("number", _int32)), _math_add),
    _Function("States.StringSplit", (("string", _string), ("delimiters", _string)), _string_split),
    _Function("States.UUID", (), _uuid, pure=False),
)

FUNCTIONS: dict[str, _Function] = {f.name: f for f in _FUNCTION_LIST}
"""Every supported intrinsic function by name."""


# --------------------------------------------------------------------------- parser

_NAME = re.compile(r"[A-Za-z0-9_.]+")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_KEYWORD = re.compile(r"(true|false|null)(?![A-Za-z0-9_.])")
_CALL_START = re.compile(r"States\.[A-Za-z0-9_.]+\(")
_ESCAPABLE = "'{}\\"


@dataclass(slots=True)
class _Literal:
    value: Any
    chars: list[tuple[str, bool]] | None = None  # a string's characters, with "was escaped" flags


@dataclass(slots=True)
class _PathArg:
    text: str


@dataclass(slots=True)
class _Call:
    function: _Function
    args: list[_Literal | _PathArg | _Call]


class _Parser:
    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.i = 0
        self.calls = 0

    def fail(self, reason: str, at: int | None = None) -> IntrinsicSyntaxError:
        pos = self.i if at is None else at
        part = self.expr[pos:] or "<end>"
        return IntrinsicSyntaxError(f"invalid intrinsic function {self.expr!r}: {reason} (at {part!r})")

    def peek(self) -> str:
        return self.expr[self.i] if self.i < len(self.expr) else ""

    def skip_ws(self) -> None:
        while self.i < len(self.expr) and self.expr[self.i] in " \t\r\n":
            self.i += 1

    def parse(self) -> _Call:
        call = self.call()
        if self.i != len(self.expr):
            raise self.fail("unexpected text after the closing ')'")
        return call

    def call(self) -> _Call:
        start = self.i
        m = _NAME.match(self.expr, self.i)
        if not m:
            raise self.fail("expected a function name such as States.Format")
        name = m.group()
        function = FUNCTIONS.get(name)
        if function is None:
            raise self.fail(f"unknown intrinsic function {name!r}", start)
        self.i = m.end()
        if self.peek() != "(":
            raise self.fail(f"{name} must be followed immediately by '('")
        self.calls += 1
        if self.calls > MAX_CALLS_PER_FIELD:
            raise self.fail(f"a field may use at most {MAX_CALLS_PER_FIELD} intrinsic functions", start)
        self.i += 1
        args: list[_Literal | _PathArg | _Call] = []
        self.skip_ws()
        if self.peek() == ")":
            self.i += 1
            return _Call(function, args)
        while True:
            args.append(self.argument())
            self.skip_ws()
            c = self.peek()
            self.i += 1
            if c == ")":
                return _Call(function, args)
            if c != ",":
                self.i -= 1
                raise self.fail(f"missing ')' to close {name}(" if not c else "expected ',' or ')'")

    def argument(self) -> _Literal | _PathArg | _Call:
        self.skip_ws()
        c = self.peek()
        if c == "'":
            return self.string()
        if c == "$":
            return self.path()
        if c == "-" or c.isdigit():
            return self.number()
        m = _KEYWORD.match(self.expr, self.i)
        if m:
            self.i = m.end()
            return _Literal({"true": True, "false": False, "null": None}[m.group()])
        if c and (c.isalpha() or c == "_"):
            return self.call()
        if c in (",", ")"):
            raise self.fail("missing argument")
        if not c:
            raise self.fail("unexpected end; an argument and ')' are missing")
        raise self.fail(
            f"unexpected {c!r}; an argument is a 'string', a number, true, false, null, a path or a call"
        )

    def string(self) -> _Literal:
        start = self.i
        self.i += 1
        chars: list[tuple[str, bool]] = []
        while True:
            c = self.peek()
            if not c:
                raise self.fail("unterminated string (a closing ' is missing)", start)
            if c == "\\":
                nxt = self.expr[self.i + 1] if self.i + 1 < len(self.expr) else ""
                if not nxt or nxt not in _ESCAPABLE:
                    raise self.fail("a backslash may only escape ' { } or \\ (write \\\\ for a backslash)")
                chars.append((nxt, True))
                self.i += 2
                continue
            self.i += 1
            if c == "'":
                return _Literal("".join(ch for ch, _ in chars), chars)
            chars.append((c, False))

    def number(self) -> _Literal:
        m = _NUMBER.match(self.expr, self.i)
        end = m.end() if m else self.i
        if not m or (end < len(self.expr) and self.expr[end] not in " \t\r\n,)"):
            raise self.fail("invalid number (use JSON syntax such as -1, 2.5 or 1e3)")
        self.i = end
        text = m.group()
        return _Literal(float(text) if any(ch in text for ch in ".eE") else int(text))

    def path(self) -> _PathArg:
        """A path argument ends at ',' / ')' / a blank outside brackets and quotes."""
        start = self.i
        depth = 0
        quote = ""
        while self.i < len(self.expr):
            c = self.expr[self.i]
            if quote:
                if c == "\\":
                    self.i += 1
                elif c == quote:
                    quote = ""
            elif depth and c in "'\"":
                quote = c
            elif c in "[(":
                depth += 1
            elif c in "])" and depth:
                depth -= 1
            elif not depth and (c in ",)" or c in " \t\r\n"):
                break
            self.i += 1
        return _PathArg(self.expr[start : self.i])


# --------------------------------------------------------------------------- compiler


@dataclass(slots=True)
class _Compiled:
    evaluate: Evaluator
    constant: bool = False
    value: Any = None


def _copying(value: Any) -> Evaluator:
    """An evaluator returning ``value``; a container is copied on every call."""
    if isinstance(value, list | dict):
        return lambda _v, _c: copy_json(value)
    return lambda _v, _c: value


class _Compiler:
    def __init__(self, expr: str, field: str | None) -> None:
        self.expr = expr
        self.field = field

    def error(self, function: _Function, message: str) -> IntrinsicSyntaxError:
        return IntrinsicSyntaxError(f"{function.name}: {message} (in {self.expr!r})")

    def failure(self, function: _Function, message: str) -> StatesError:
        where = f" for the field '{self.field}'" if self.field else ""
        return StatesError(INTRINSIC_FAILURE, f"Invalid arguments in {function.name}{where}: {message}")

    def node(self, node: _Literal | _PathArg | _Call) -> _Compiled:
        if isinstance(node, _Literal):
            value = node.value
            return _Compiled(lambda _v, _c: value, True, value)
        if isinstance(node, _PathArg):
            try:
                query = compile_query(node.text, field=self.field)
            except PathSyntaxError as exc:
                raise IntrinsicSyntaxError(f"invalid intrinsic function {self.expr!r}: {exc}") from None
            return _Compiled(query.evaluate)
        return self.call(node)

    def call(self, call: _Call) -> _Compiled:
        function = call.function
        count = len(call.args)
        high = function.max_args
        if count < function.min_args or (high is not None and count > high):
            raise self.error(function, f"takes {function.arity()}, got {count}")
        checks = function.checks(count)
        args = [self.node(arg) for arg in call.args]
        if function.name == "States.Format" and isinstance(call.args[0], _Literal):
            args[0] = self.literal_template(function, call.args[0], count - 1)
        for (label, check), arg in zip(checks, args, strict=True):
            if arg.constant:
                try:
                    check(arg.value)
                except _Invalid as exc:
                    raise self.error(function, f"the {label} {exc}") from None
        evaluate = self.runner(function, [a.evaluate for a in args], checks)
        if function.pure and all(a.constant for a in args):
            return self.fold(function, evaluate)
        return _Compiled(evaluate)

    def literal_template(self, function: _Function, literal: _Literal, values: int) -> _Compiled:
        if literal.chars is None:
            raise self.error(
                function, f"the first argument (template) must be a string, got {_describe(literal.value)}"
            )
        try:
            template = _split_template(literal.chars)
        except _Invalid as exc:
            raise self.error(function, f"the template {exc}") from None
        holes = len(template.parts) - 1
        if holes != values:
            raise self.error(
                function, f"the template has {holes} '{{}}' placeholder(s) but {values} value(s) follow it"
            )
        return _Compiled(lambda _v, _c: template, True, template)

    def fold(self, function: _Function, evaluate: Evaluator) -> _Compiled:
        try:
            value = evaluate(None, None)
        except StatesError as exc:
            prefix = self.failure(function, "").cause
            raise self.error(function, exc.cause.removeprefix(prefix)) from None
        return _Compiled(_copying(value), True, value)

    def runner(
        self, function: _Function, evaluators: list[Evaluator], checks: list[tuple[str, Check]]
    ) -> Evaluator:
        impl = function.impl
        pairs = tuple(zip(evaluators, checks, strict=True))

        def run(value: Any, context: Any) -> Any:
            args = []
            for evaluate, (label, check) in pairs:
                raw = evaluate(value, context)
                try:
                    args.append(check(raw))
                except _Invalid as exc:
                    raise self.failure(function, f"the {label} {exc}") from None
            try:
                return impl(*args)
            except _Invalid as exc:
                raise self.failure(function, str(exc)) from None

        return run


def is_intrinsic(value: Any) -> bool:
    """Whether ``value`` looks like an intrinsic function call (``States.Name(``...)."""
    return isinstance(value, str) and _CALL_START.match(value) is not None


def compile_intrinsic(expr: str, *, field: str | None = None) -> Evaluator:
    """Parse and check an intrinsic function once; return ``evaluator(value, context)``.

    ``field`` (e.g. ``'Parameters.greeting.$'``) is named in runtime error causes. Raises
    :class:`IntrinsicSyntaxError` (a ValueError) for a definition that can never work.
    """
    if not isinstance(expr, str):
        raise IntrinsicSyntaxError(f"an intrinsic function must be a string, got {_describe(expr)}")
    call = _Parser(expr).parse()
    return _Compiler(expr, field).call(call).evaluate
