"""JSONPath as the Amazon States Language uses it (the JSONPath query language).

A path starts with ``$`` (the state's data) or ``$$`` (the context object: the first ``$`` is
stripped and the rest is applied to the context object). Supported syntax::

    $  $$                       the root
    .name  ['name']  ["name"]   a field (dot names may escape any character with a backslash,
                                 e.g. ``$.store\\.book``; use brackets for names with blanks)
    [N]  [-N]                   an array element (negative counts from the end)
    .*  [*]                     every field value of an object / every element of an array
    [start:end:step]            a slice (Python semantics; every part optional, step != 0)
    [0,2]  ['a','b']            a union of indexes or of names
    ..name  ..*  ..[0]  ..[?()] recursive descent
    [?(<filter>)]               a filter over the elements of an array

Filters: ``@`` is the element under test, ``$`` the root of the queried document. Operands are
relative or root paths, numbers, 'strings' / "strings", true, false and null. ``@.x`` alone
tests that the path exists (even when its value is false or null); ``!`` negates; ``&&``,
``||`` and parentheses combine. Comparisons: ``== != < <= > >=`` and ``=~ /regex/flags``
(the whole string must match; flags i, m, s, x).

Results follow Jayway JSONPath, the library behind Step Functions:

* A definite path (only ``.name``, ``['name']`` and ``[N]`` steps: a *reference path*) yields
  the single value it selects, or raises :class:`distmap.errors.Runtime` (States.Runtime) whose
  cause reads ``The JSONPath '$.a.b' could not be found in the input '...'``.
* Any other path is indefinite and yields a list of every match, in document order. A list may
  be empty: once a wildcard, slice, union, filter or descent has been applied, missing fields
  and elements of the wrong type are skipped. A failure *before* the first indefinite step
  (``$.missing[*]``) still raises States.Runtime, as Jayway does.

Choices made where AWS is silent or Jayway is quirky:

* Comparisons are typed: numbers compare with numbers (``1 == 1.0``), strings with strings
  (lexicographically), booleans and null only for (in)equality. No string/number coercion:
  ``'10' == 10`` is false (Jayway coerces). A comparison with a missing path is false, except
  ``!=`` which is the negation of ``==`` (as in Jayway). Objects and arrays compare
  structurally; key order does not matter.
* A union of names returns a list like every other union (Jayway returns an object for a union
  of names in the last step).
* A filter applied to an object tests the object itself (Jayway); to a scalar it yields nothing.
  Under recursive descent a filter tests every node once, scalars included.
* Functions (``length()`` ...) and ``$`` inside ``$$`` filters are not supported: they are
  syntax errors, reported at compile time as :class:`PathSyntaxError` naming the offending part.
* The input quoted in a not-found cause is cut after 2,000 characters.

``set_result_path`` applies a ResultPath: ``$`` replaces, ``None`` (JSON null) discards the
result, a reference path creates missing intermediate objects; a path that cannot be applied
(into a string, past the end of an array ...) raises ``States.ResultPathMatchFailure``. The input
document is never mutated: containers along the path are copied, everything else is shared.

Queries are compiled once (and cached by path), so evaluating one costs a walk, not a parse.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from distmap.errors import Runtime, StatesError

__all__ = [
    "PathSyntaxError",
    "Query",
    "compile_query",
    "compile_result_path",
    "copy_json",
    "is_reference_path",
    "json_equal",
    "render_json",
    "set_result_path",
]

_CAUSE_INPUT_LIMIT = 2000


class PathSyntaxError(ValueError):
    """A path, template or expression that cannot work, found when it is compiled."""


def copy_json(val: Any) -> Any:
    """A deep copy of a JSON value (objects and arrays are copied, scalars shared)."""
    if isinstance(val, dict):
        return {k: copy_json(v) for k, v in val.items()}
    if isinstance(val, list):
        return [copy_json(x) for x in val]
    return val


class _NotFound(Exception):
    """A strict (definite-prefix) step did not apply. Internal; becomes States.Runtime."""


# --------------------------------------------------------------------------- JSON helpers


def _is_number(value: Any) -> bool:
    return type(value) is int or type(value) is float


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: numbers by value (``1 == 1.0``), booleans distinct from numbers,
    objects regardless of key order, arrays element by element."""
    if _is_number(a):
        return _is_number(b) and a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return len(a) == len(b) and all(k in b and json_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def render_json(value: Any, limit: int = _CAUSE_INPUT_LIMIT) -> str:
    """Compact JSON text of ``value`` for error causes, cut after ``limit`` characters."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if _is_number(value):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# --------------------------------------------------------------------------- steps


class _Step:
    """One selector. ``apply`` appends what it selects from ``node`` to ``out``; when
    ``strict`` (every earlier step was definite) a selector that does not apply raises."""

    __slots__ = ()
    definite = False

    def apply(self, node: Any, out: list[Any], root: Any, strict: bool) -> None:
        raise NotImplementedError

    def descend(self, node: Any, out: list[Any], root: Any) -> None:
        """What the step selects at one node visited by a recursive descent."""
        self.apply(node, out, root, False)


class _Name(_Step):
    __slots__ = ("key",)
    definite = True

    def __init__(self, key: str) -> None:
        self.key = key

    def apply(self, node: Any, out: list[Any], root: Any, strict: bool) -> None:
        if isinstance(node, dict) and self.key in node:
            out.append(node[self.key])
        elif strict:
            raise _NotFound


class _Index(_Step):
    __slots__ = ("index",)
    definite = True

    def __init__(self, index: int) -> None:
        self.index = index

    def apply(self, node: Any, out: list[Any], root: Any, strict: bool) -> None:
        if isinstance(node, list) and -len(node) <= self.index < len(node):
            out.append(node[self.index])
        elif strict:
            raise _NotFound


class _Wildcard(_Step):
    __slots__ = ()

    def apply(self, node: Any, out: list[Any], root: Any, strict: bool) -> None:
        if isinstance(node, dict):
            out.extend(node.values())
        elif isinstance(node, list):
            out.extend(node)


class _Slice(_Step):
    __slots__ = ("slice",)

    def __init__(self, start: int | None, stop: int | None, step: int | None) -> None:
        self.slice = slice(start, stop, step)

    def apply(self, node: Any, out: list[Any], root: Any, strict: bool) -> None:
        if isinstance(node, list):
            out.extend(node[self.slice])
        elif strict:
            raise _NotFound


class _Union(_Step):
    __slots__ = ("keys", "of_names")

    def __init__(self, keys: tuple[str, ...] | tuple[int, ...]) -> None:
        self.keys = keys
        self.of_names = isinstance(keys[0], str)

    def apply(self, node: Any, out: list[Any], root: Any, strict: bool) -> None:
        if self.of_names and isinstance(node, dict):
            out.extend(node[k] for k in self.keys if k in node)
        elif not self.of_names and isinstance(node, list):
            n = len(node)
            out.extend(node[i] for i in self.keys if -n <= i < n)  # type: ignore[operator]
        elif strict:
            raise _NotFound


Predicate = Callable[[Any, Any], bool]


class _Filter(_Step):
    __slots__ = ("predicate",)

    def __init__(self, predicate: Predicate) -> None:
        self.predicate = predicate

    def apply(self, node: Any, out: list[Any], root: Any, strict: bool) -> None:
        test = self.predicate
        if isinstance(node, list):
            out.extend(x for x in node if test(x, root))
        elif isinstance(node, dict):
            if test(node, root):
                out.append(node)
        elif strict:
            raise _NotFound

    def descend(self, node: Any, out: list[Any], root: Any) -> None:
        if self.predicate(node, root):
            out.append(node)


class _Descent(_Step):
    __slots__ = ("inner",)

    def __init__(self, inner: _Step) -> None:
        self.inner = inner

    def apply(self, node: Any, out: list[Any], root: Any, strict: bool) -> None:
        for visited in _preorder(node):
            self.inner.descend(visited, out, root)


def _preorder(node: Any) -> Iterator[Any]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, dict):
            stack.extend(reversed(list(current.values())))
        elif isinstance(current, list):
            stack.extend(reversed(current))


def _run(steps: tuple[_Step, ...], root: Any, doc_root: Any, strict: bool = True) -> list[Any]:
    """Every match of ``steps`` applied to ``root``; ``doc_root`` is what ``$`` means in filters."""
    nodes = [root]
    for step in steps:
        out: list[Any] = []
        for node in nodes:
            step.apply(node, out, doc_root, strict)
        nodes = out
        if not step.definite:
            strict = False
    return nodes


def _walk(keys: tuple[str | int, ...], node: Any) -> Any:
    """Follow definite steps; raises _NotFound."""
    for key in keys:
        if type(key) is str:
            if not isinstance(node, dict):
                raise _NotFound
            try:
                node = node[key]
            except KeyError:
                raise _NotFound from None
        else:
            if not isinstance(node, list):
                raise _NotFound
            try:
                node = node[key]
            except IndexError:
                raise _NotFound from None
    return node


# --------------------------------------------------------------------------- filters

Operand = Callable[[Any, Any], tuple[bool, Any]]


def _path_operand(relative: bool, steps: tuple[_Step, ...]) -> Operand:
    if all(s.definite for s in steps):
        keys = tuple(s.key if isinstance(s, _Name) else s.index for s in steps)  # type: ignore[attr-defined]

        def definite(current: Any, root: Any) -> tuple[bool, Any]:
            try:
                return True, _walk(keys, current if relative else root)
            except _NotFound:
                return False, None

        return definite

    def indefinite(current: Any, root: Any) -> tuple[bool, Any]:
        return True, _run(steps, current if relative else root, root, strict=False)

    return indefinite


def _literal_operand(value: Any) -> Operand:
    result = (True, value)
    return lambda _c, _r: result


def _ordered(a: Any, b: Any) -> bool:
    return (_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str))


_ORDER_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _comparison(left: Operand, op: str, right: Operand | re.Pattern[str]) -> Predicate:
    if isinstance(right, re.Pattern):
        pattern = right

        def regex(current: Any, root: Any) -> bool:
            found, value = left(current, root)
            return found and isinstance(value, str) and pattern.fullmatch(value) is not None

        return regex
    rhs = right
    if op in ("==", "!="):
        want = op == "=="

        def equality(current: Any, root: Any) -> bool:
            lf, lv = left(current, root)
            rf, rv = rhs(current, root)
            return (lf and rf and json_equal(lv, rv)) is want

        return equality
    compare = _ORDER_OPS[op]

    def order(current: Any, root: Any) -> bool:
        lf, lv = left(current, root)
        rf, rv = rhs(current, root)
        return lf and rf and _ordered(lv, rv) and compare(lv, rv)

    return order


def _either(a: Predicate, b: Predicate) -> Predicate:
    return lambda current, root: a(current, root) or b(current, root)


def _both(a: Predicate, b: Predicate) -> Predicate:
    return lambda current, root: a(current, root) and b(current, root)


# --------------------------------------------------------------------------- parser

_INT = re.compile(r"-?\d+")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_KEYWORD = re.compile(r"(true|false|null)(?![A-Za-z0-9_])")
_OPERATORS = ("==", "!=", "<=", ">=", "=~", "<", ">")
_FILTER_STOP = frozenset(" \t\r\n)=!<>&|,]")
_REGEX_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}


class _FilterSyntaxError(PathSyntaxError):
    """A filter Jayway cannot parse either. AWS accepts such a definition (it does not parse
    filters when a state machine is created); the path then fails when it is evaluated, with
    Jayway's message."""

    def __init__(self, path: str, open_at: int, at: int, detail: str) -> None:
        end = path.find(")]", open_at)
        text = path[open_at : end + 2] if end != -1 else path[open_at:]
        char = path[at] if at < len(path) else ""
        self.jayway = (
            f"Invalid path '{path}' : Failed to parse filter: {text}, error on position: {at - open_at}, "
            f"char: {char}"
        )
        super().__init__(detail)


class _Parser:
    """Recursive-descent parser over the whole path text (positions refer to ``path``)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.i = 0

    # -- helpers

    def fail(self, reason: str, at: int | None = None) -> PathSyntaxError:
        pos = self.i if at is None else at
        part = self.path[pos:] or "<end of path>"
        return PathSyntaxError(f"invalid JSONPath {self.path!r}: {reason} (at {part!r})")

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.path[j] if j < len(self.path) else ""

    def skip_ws(self) -> None:
        while self.peek() in (" ", "\t", "\r", "\n") and self.peek():
            self.i += 1

    def expect(self, text: str) -> None:
        if not self.path.startswith(text, self.i):
            raise self.fail(f"expected {text!r}")
        self.i += len(text)

    # -- steps

    def steps(self, in_filter: bool = False) -> list[_Step]:
        out: list[_Step] = []
        while self.i < len(self.path):
            c = self.peek()
            if c == ".":
                if self.peek(1) == ".":
                    self.i += 2
                    out.append(_Descent(self.selector(in_filter)))
                else:
                    self.i += 1
                    out.append(self.selector(in_filter))
            elif c == "[":
                out.append(self.bracket())
            elif in_filter and c in _FILTER_STOP:
                break
            else:
                raise self.fail(f"unexpected {c!r}; a step starts with '.' or '['")
        return out

    def selector(self, in_filter: bool) -> _Step:
        """What follows '.' or '..': a name, '*' or a bracket step."""
        if self.peek() == "[":
            return self.bracket()
        if self.peek() == "*":
            self.i += 1
            return _Wildcard()
        return _Name(self.name(in_filter))

    def name(self, in_filter: bool) -> str:
        start = self.i
        chars: list[str] = []
        while self.i < len(self.path):
            c = self.path[self.i]
            if c == "\\":
                if self.i + 1 >= len(self.path):
                    raise self.fail("a backslash must escape a character")
                chars.append(self.path[self.i + 1])
                self.i += 2
                continue
            if c in ".[" or (in_filter and c in _FILTER_STOP):
                break
            if c in " \t\r\n":
                raise self.fail("use bracket notation ['my name'] for names with blanks")
            if c == "(":
                raise self.fail("functions such as length() are not supported")
            if c in ")]":
                raise self.fail(f"unexpected {c!r}")
            chars.append(c)
            self.i += 1
        if not chars:
            raise self.fail("a path must not end with '.' or '..' (a field name is missing)", start)
        return "".join(chars)

    def bracket(self) -> _Step:
        open_at = self.i
        self.i += 1
        self.skip_ws()
        c = self.peek()
        if not c:
            raise self.fail("unterminated '['", open_at)
        if c == "*":
            self.i += 1
            step: _Step = _Wildcard()
        elif c == "?":
            self.i += 1
            try:
                self.skip_ws()
                self.expect("(")
                predicate = self.or_expr()
                self.skip_ws()
                self.expect(")")
            except PathSyntaxError as exc:
                raise _FilterSyntaxError(self.path, open_at, self.i, str(exc)) from None
            step = _Filter(predicate)
        elif c in "'\"":
            names = [self.quoted()]
            self.skip_ws()
            while self.peek() == ",":
                self.i += 1
                self.skip_ws()
                if self.peek() not in ("'", '"') or not self.peek():
                    raise self.fail("expected a quoted name after ','")
                names.append(self.quoted())
                self.skip_ws()
            step = _Name(names[0]) if len(names) == 1 else _Union(tuple(names))
        elif c == "-" or c == ":" or c.isdigit():
            step = self.indexes()
        else:
            raise self.fail("expected *, a quoted name, an index, a slice or ?(filter) inside '[ ]'")
        self.skip_ws()
        if self.peek() != "]":
            raise self.fail("expected ']'" if self.peek() else "unterminated '['")
        self.i += 1
        return step

    def quoted(self) -> str:
        quote = self.peek()
        start = self.i
        self.i += 1
        chars: list[str] = []
        while True:
            c = self.peek()
            if not c:
                raise self.fail(f"unterminated string {quote}...{quote}", start)
            if c == "\\":
                if self.i + 1 >= len(self.path):
                    raise self.fail(f"unterminated string {quote}...{quote}", start)
                chars.append(self.path[self.i + 1])
                self.i += 2
                continue
            self.i += 1
            if c == quote:
                return "".join(chars)
            chars.append(c)

    def integer(self) -> int | None:
        m = _INT.match(self.path, self.i)
        if not m:
            return None
        self.i = m.end()
        return int(m.group())

    def indexes(self) -> _Step:
        first = self.integer()
        self.skip_ws()
        if self.peek() == ":":
            parts: list[int | None] = [first]
            while self.peek() == ":" and len(parts) < 3:
                self.i += 1
                self.skip_ws()
                parts.append(self.integer())
                self.skip_ws()
            parts += [None] * (3 - len(parts))
            if parts[2] == 0:
                raise self.fail("a slice step must not be 0")
            return _Slice(parts[0], parts[1], parts[2])
        if first is None:
            raise self.fail("expected an index")
        indexes = [first]
        while self.peek() == ",":
            self.i += 1
            self.skip_ws()
            n = self.integer()
            if n is None:
                raise self.fail("expected an index after ','")
            indexes.append(n)
            self.skip_ws()
        return _Index(first) if len(indexes) == 1 else _Union(tuple(indexes))

    # -- filter expressions

    def or_expr(self) -> Predicate:
        left = self.and_expr()
        while True:
            self.skip_ws()
            if not self.path.startswith("||", self.i):
                return left
            self.i += 2
            right = self.and_expr()
            left = _either(left, right)

    def and_expr(self) -> Predicate:
        left = self.unary()
        while True:
            self.skip_ws()
            if not self.path.startswith("&&", self.i):
                return left
            self.i += 2
            right = self.unary()
            left = _both(left, right)

    def unary(self) -> Predicate:
        self.skip_ws()
        if self.peek() == "!" and self.peek(1) != "=":
            self.i += 1
            inner = self.unary()
            return lambda c, r: not inner(c, r)
        if self.peek() == "(":
            self.i += 1
            inner = self.or_expr()
            self.skip_ws()
            self.expect(")")
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        start = self.i
        left, is_path = self.operand()
        self.skip_ws()
        op = next((o for o in _OPERATORS if self.path.startswith(o, self.i)), None)
        if op is None:
            if not is_path:
                raise self.fail("a literal alone is not a condition; compare it with '==' ...", start)
            return lambda c, r: left(c, r)[0]
        self.i += len(op)
        self.skip_ws()
        if op == "=~":
            return _comparison(left, op, self.regex())
        right, _ = self.operand()
        return _comparison(left, op, right)

    def operand(self) -> tuple[Operand, bool]:
        c = self.peek()
        if c in ("@", "$"):
            if c == "$" and self.peek(1) == "$":
                raise self.fail("'$$' is not supported inside a filter")
            self.i += 1
            return _path_operand(c == "@", tuple(self.steps(in_filter=True))), True
        if c in ("'", '"'):
            return _literal_operand(self.quoted()), False
        m = _NUMBER.match(self.path, self.i)
        if m:
            self.i = m.end()
            text = m.group()
            value: Any = float(text) if any(ch in text for ch in ".eE") else int(text)
            return _literal_operand(value), False
        m = _KEYWORD.match(self.path, self.i)
        if m:
            self.i = m.end()
            return _literal_operand({"true": True, "false": False, "null": None}[m.group()]), False
        raise self.fail("expected @, $, a number, a quoted string, true, false or null")

    def regex(self) -> re.Pattern[str]:
        start = self.i
        if self.peek() != "/":
            raise self.fail("expected /regex/ after '=~'")
        self.i += 1
        chars: list[str] = []
        while True:
            c = self.peek()
            if not c:
                raise self.fail("unterminated /regex/", start)
            self.i += 1
            if c == "\\" and self.peek() == "/":
                chars.append("/")
                self.i += 1
                continue
            if c == "/":
                break
            chars.append(c)
        flags = 0
        while self.peek() in _REGEX_FLAGS and self.peek():
            flags |= _REGEX_FLAGS[self.peek()]
            self.i += 1
        try:
            return re.compile("".join(chars), flags)
        except re.error as exc:
            raise self.fail(f"bad regular expression: {exc}", start) from None


# --------------------------------------------------------------------------- queries


class Query:
    """A compiled path. ``evaluate`` / ``find`` apply it to a state's data (``$``) or, for a
    ``$$`` path, to the context object."""

    __slots__ = ("_keys", "_steps", "field", "is_context", "is_definite", "path")

    def __init__(self, path: str, steps: tuple[_Step, ...], is_context: bool, field: str | None) -> None:
        self.path = path
        self.field = field
        self.is_context = is_context
        self._steps = steps
        self.is_definite = all(s.definite for s in steps)
        self._keys: tuple[str | int, ...] = (
            tuple(s.key if isinstance(s, _Name) else s.index for s in steps)  # type: ignore[attr-defined]
            if self.is_definite
            else ()
        )

    def __repr__(self) -> str:
        return f"Query({self.path!r})"

    def evaluate(self, value: Any, context: Any = None) -> Any:
        """The selected value (definite path) or the list of matches (indefinite path).

        Raises :class:`distmap.errors.Runtime` (States.Runtime) when a definite path, or the
        definite part before the first wildcard / filter / slice / union / descent, does not apply.
        """
        root = context if self.is_context else value
        try:
            if self.is_definite:
                return _walk(self._keys, root)
            return _run(self._steps, root, root)
        except _NotFound:
            raise self.not_found(root) from None

    def getter(self) -> Callable[[Any, Any], Any]:
        """``evaluate`` specialised for the hot path of per-item templates: ``$``, ``$$`` and a
        one-field ``$.name`` are a direct lookup (same results and errors as ``evaluate``)."""
        if self.is_definite and not self._keys:
            return (lambda _v, ctx: ctx) if self.is_context else (lambda v, _ctx: v)
        if self.is_definite and not self.is_context and len(self._keys) == 1 and isinstance(self._keys[0], str):
            key = self._keys[0]
            evaluate = self.evaluate

            def one(value: Any, context: Any = None) -> Any:
                if type(value) is dict and key in value:
                    return value[key]
                return evaluate(value, context)

            return one
        return self.evaluate

    def find(self, value: Any, context: Any = None) -> tuple[bool, Any]:
        """``(True, value)`` when the path selects something, else ``(False, None)``; never raises.
        An indefinite path is found when it has at least one match; the value is then the list."""
        root = context if self.is_context else value
        try:
            if self.is_definite:
                return True, _walk(self._keys, root)
            matches = _run(self._steps, root, root)
        except _NotFound:
            return False, None
        return (True, matches) if matches else (False, None)

    def not_found(self, root: Any) -> Runtime:
        """The States.Runtime error for this path not matching ``root``."""
        field = f" specified for the field '{self.field}'" if self.field else ""
        where = "context object" if self.is_context else "input"
        return Runtime(
            cause=f"The JSONPath '{self.path}'{field} could not be found in the {where} '{render_json(root)}'"
        )


class _Unparsable(Query):
    """A path whose filter cannot be parsed: accepted, and States.Runtime when evaluated."""

    __slots__ = ("cause",)

    def __init__(self, path: str, is_context: bool, field: str | None, cause: str) -> None:
        super().__init__(path, (), is_context, field)
        self.is_definite = False
        self.cause = cause

    def evaluate(self, value: Any, context: Any = None) -> Any:
        raise Runtime(cause=self.cause)

    def find(self, value: Any, context: Any = None) -> tuple[bool, Any]:
        raise Runtime(cause=self.cause)

    def getter(self) -> Callable[[Any, Any], Any]:
        return self.evaluate


class _VariableQuery(Query):
    """``$name...``: a path on the workflow variable ``name`` (``Assign``), read from the context
    object's ``variables`` (see :mod:`distmap.dataflow.variables`)."""

    __slots__ = ("variable",)

    def __init__(self, path: str, variable: str, steps: tuple[_Step, ...], field: str | None) -> None:
        super().__init__(path, steps, False, field)
        self.variable = variable

    def _root(self, context: Any) -> Any:
        scope = getattr(context, "variables", None)
        if scope is None or self.variable not in scope:
            field = f" specified for the field '{self.field}'" if self.field else ""
            raise Runtime(cause=f"The variable '${self.variable}'{field} is not defined (no state assigned it)")
        return scope[self.variable]

    def evaluate(self, value: Any, context: Any = None) -> Any:
        return super().evaluate(self._root(context), context)

    def find(self, value: Any, context: Any = None) -> tuple[bool, Any]:
        try:
            root = self._root(context)
        except Runtime:
            return False, None
        return super().find(root, context)

    def getter(self) -> Callable[[Any, Any], Any]:
        return self.evaluate

    def not_found(self, root: Any) -> Runtime:
        field = f" specified for the field '{self.field}'" if self.field else ""
        return Runtime(
            cause=f"The JSONPath '{self.path}'{field} could not be found in the variable "
            f"'${self.variable}' '{render_json(root)}'"
        )


_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def compile_query(path: str, *, field: str | None = None) -> Query:
    """Compile a JSONPath (``$...`` or ``$$...``); compiled queries are cached by path.

    ``field`` (e.g. ``'Parameters.id.$'``) is named in the States.Runtime cause when the path
    is not found. Raises :class:`PathSyntaxError` (a ValueError) naming the offending part.
    """
    if not isinstance(path, str):
        raise PathSyntaxError(f"a JSONPath must be a string, got {_type_name(path)}")
    return _compile_query(path, field)


@functools.lru_cache(maxsize=4096)
def _compile_query(path: str, field: str | None) -> Query:
    if not path.startswith("$"):
        raise PathSyntaxError(f"invalid JSONPath {path!r}: a path must start with '$'")
    is_context = path.startswith("$$")
    variable = None if is_context else _VARIABLE.match(path)
    parser = _Parser(path)
    if variable is not None:
        parser.i = variable.end()
        return _VariableQuery(path, variable.group(1), tuple(parser.steps()), field)
    parser.i = 2 if is_context else 1
    try:
        steps = tuple(parser.steps())
    except _FilterSyntaxError as exc:
        return _Unparsable(path, is_context, field, exc.jayway)
    return Query(path, steps, is_context, field)


def is_reference_path(path: Any) -> bool:
    """Whether ``path`` is a valid reference path: ``$`` / ``$$`` followed only by
    ``.name``, ``['name']`` and ``[N]`` steps (one node, never a list of matches)."""
    try:
        query = compile_query(path)
    except PathSyntaxError:
        return False
    return query.is_definite and not isinstance(query, _VariableQuery)


# --------------------------------------------------------------------------- ResultPath

Setter = Callable[[Any, Any], Any]
"""``setter(document, result) -> new document``."""


def _describe_prefix(keys: tuple[str | int, ...]) -> str:
    out = ["$"]
    for key in keys:
        if isinstance(key, int):
            out.append(f"[{key}]")
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            out.append(f".{key}")
        else:
            out.append("['" + key.replace("\\", "\\\\").replace("'", "\\'") + "']")
    return "".join(out)


def _match_failure(path: str, reason: str) -> StatesError:
    return StatesError(
        "States.ResultPathMatchFailure", f"Unable to apply ResultPath '{path}' to the state input: {reason}"
    )


def _put(node: Any, keys: tuple[str | int, ...], i: int, value: Any, path: str) -> Any:
    key = keys[i]
    last = i == len(keys) - 1
    if isinstance(key, str):
        if not isinstance(node, dict):
            where = _describe_prefix(keys[:i])
            raise _match_failure(path, f"'{where}' is {_type_name(node)}, not an object")
        out = dict(node)
        if last:
            out[key] = value
            return out
        if key in node:
            child = node[key]
        elif isinstance(keys[i + 1], str):
            child = {}
        else:
            where = _describe_prefix(keys[: i + 1])
            raise _match_failure(
                path, f"'{where}' does not exist, so index [{keys[i + 1]}] cannot be applied"
            )
        out[key] = _put(child, keys, i + 1, value, path)
        return out
    if not isinstance(node, list):
        where = _describe_prefix(keys[:i])
        raise _match_failure(path, f"'{where}' is {_type_name(node)}, not an array")
    if not -len(node) <= key < len(node):
        where = _describe_prefix(keys[:i])
        raise _match_failure(path, f"index [{key}] is out of range for '{where}' (length {len(node)})")
    out_list = list(node)
    out_list[key] = value if last else _put(node[key], keys, i + 1, value, path)
    return out_list


def compile_result_path(path: str | None) -> Setter:
    """Compile a ResultPath into ``setter(document, result) -> output`` (cached by path).

    Raises :class:`PathSyntaxError` unless ``path`` is None or a reference path on ``$``.
    """
    if path is not None and not isinstance(path, str):
        raise PathSyntaxError(f"a ResultPath must be a string or null, got {_type_name(path)}")
    return _compile_result_path(path)


@functools.lru_cache(maxsize=1024)
def _compile_result_path(path: str | None) -> Setter:
    if path is None:
        return lambda document, _result: document
    query = compile_query(path)
    if query.is_context:
        raise PathSyntaxError(f"invalid ResultPath {path!r}: it cannot point into the context object ($$)")
    if not query.is_definite:
        raise PathSyntaxError(
            f"invalid ResultPath {path!r}: it must be a reference path ($, $.a.b, $['a'][0]) without "
            "wildcards, filters, slices, unions or '..'"
        )
    keys = query._keys
    if not keys:
        return lambda _document, result: result

    def setter(document: Any, result: Any) -> Any:
        return _put(document, keys, 0, result, path)

    return setter


def set_result_path(document: Any, path: str | None, value: Any) -> Any:
    """Apply a ResultPath: return ``document`` with ``value`` placed at ``path``.

    ``$`` replaces the document, ``None`` keeps the document and discards ``value``, a reference
    path creates missing intermediate objects. Raises ``StatesError('States.ResultPathMatchFailure')``
    when the path cannot be applied, :class:`PathSyntaxError` when it is not a reference path.
    ``document`` is not mutated.
    """
    return compile_result_path(path)(document, value)
