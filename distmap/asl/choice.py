"""Choice state rules in JSONPath mode, compiled once when the definition is read and then
evaluated once per state input.

Spec: AWS Step Functions Developer Guide, "Choice workflow state" (Choice Rules, JSONPath),
and the Amazon States Language spec it follows.

Operators
---------
Boolean expressions (no ``Variable``): ``And`` and ``Or`` (non-empty arrays of rules, evaluated in
order, stopping as soon as the result is known), ``Not`` (one rule).

Data-test expressions (``Variable`` plus exactly one operator). Every comparison also has a
``...Path`` form whose operand is a reference path resolved against the input:

* ``BooleanEquals``
* ``NumericEquals``, ``NumericGreaterThan``, ``NumericGreaterThanEquals``, ``NumericLessThan``,
  ``NumericLessThanEquals``
* ``StringEquals``, ``StringGreaterThan``, ``StringGreaterThanEquals``, ``StringLessThan``,
  ``StringLessThanEquals``
* ``TimestampEquals``, ``TimestampGreaterThan``, ``TimestampGreaterThanEquals``,
  ``TimestampLessThan``, ``TimestampLessThanEquals``
* ``StringMatches`` (no Path form): ``*`` matches any run of characters, including an empty one;
  ``\\*`` is a literal ``*`` and ``\\\\`` a literal backslash (as JSON text: ``"\\\\*"``,
  ``"\\\\\\\\"``). No other character is special.
* ``IsNull``, ``IsPresent``, ``IsNumeric``, ``IsString``, ``IsBoolean``, ``IsTimestamp``: the
  operand is ``true`` or ``false``; ``false`` inverts the test.

Behaviour the guide states
--------------------------
* The first top-level rule that holds gives the next state, else ``Default``;
  ``ChoiceState.next_state`` returns ``None`` when there is no ``Default`` (the interpreter then
  raises ``States.NoChoiceMatched``).
* ``Next`` only in top-level rules, never inside ``And`` / ``Or`` / ``Not``.
* A value of the wrong type for the operator (a string for ``NumericEquals``, ``true`` for a
  number, a non-timestamp for ``TimestampEquals``) makes the comparison false, not an error.
  Booleans are not numbers. Timestamps are strings too, so ``StringEquals`` can match them.
* A ``Variable`` path that selects nothing fails the execution with ``States.Runtime``
  ("Invalid path '$.x': The choice state's condition path references an invalid value.", the
  cause AWS reports), except for ``IsPresent``, which tests exactly that.
* String comparisons are case-sensitive and follow Java's ``String.compareTo``, which the guide
  names: UTF-16 code units, no normalisation.
* Timestamps are RFC 3339 with an uppercase ``T`` between date and time and an uppercase ``Z``
  when there is no numeric offset (``2016-08-18T17:33:00Z``, ``2016-08-18T19:33:00.25+02:00``).
  Comparisons compare instants: offsets are normalised, fractions compared exactly.

Choices made where AWS is silent
--------------------------------
* Is-tests other than ``IsPresent`` (``IsNull``, ``IsString``, ...) on a missing ``Variable``
  raise ``States.Runtime``, like comparisons: the spec exempts only ``IsPresent``.
* A ``...Path`` operand that selects nothing raises ``States.Runtime`` with the same cause naming
  that path. Both paths are resolved before types are checked, so a missing operand path is an
  error whatever the type of the ``Variable`` value. An operand value of the wrong type makes the
  comparison false, as for the ``Variable`` value.
* Numbers: ``int`` and ``float`` compare by value (``1 == 1.0``); integers compare exactly even
  beyond 2**53 (AWS only says not to rely on that range).
* Java's order differs from code-point order only between characters above U+FFFF and
  characters U+E000..U+FFFF (a surrogate pair sorts below U+E000).
* Timestamp grammar: ``YYYY-MM-DDThh:mm:ss[.fraction](Z|+hh:mm|-hh:mm)``, ASCII digits, any
  number of fraction digits, a real calendar date, year 0001-9999. Rejected: lowercase ``t``/``z``,
  a space separator, a missing offset or seconds, a comma fraction, and the leap second ``:60``
  (RFC 3339 allows it; we cannot place it on a timeline). ``-00:00`` is UTC.
* Definition-time checks (``ConfigError``): an operand of the wrong type (``StringEquals: 5``,
  ``NumericEquals: "5"``, ``BooleanEquals: 1``, ``IsNull: "yes"``, a literal that is not a valid
  timestamp), a ``...Path`` operand or ``Variable`` that is not a string starting with ``$``, and
  a ``StringMatches`` pattern with a backslash that escapes neither ``*`` nor ``\\``, or ends the
  pattern. The spec calls the latter a runtime error; a literal pattern can be checked once.
* ``Comment`` (a string) is allowed in any rule. ``Assign`` is allowed in top-level rules only and
  kept unevaluated in ``Rule.assign`` for the interpreter. ``Output`` and ``Condition`` (JSONata
  fields) are rejected as unknown.
* A Choice state with ``End`` or a state-level ``Next`` is rejected (the guide: Choice states do
  not support ``End`` and use ``Next`` only inside ``Choices``).

Paths are opaque here: the interpreter passes ``resolve(path) -> (found, value)``, which handles
``$...`` (state input) and ``$$...`` (context object).
"""

from __future__ import annotations

import difflib
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Final, NamedTuple

from distmap.errors import ConfigError, Runtime

__all__ = [
    "OPERATORS",
    "ChoiceState",
    "Instant",
    "Resolve",
    "Rule",
    "compile_choice_state",
    "compile_rule",
    "parse_timestamp",
]

#: ``resolve(path) -> (found, value)``: the interpreter's JSONPath lookup.
Resolve = Callable[[str], tuple[bool, Any]]

# ------------------------------------------------------------------ timestamps


class Instant(NamedTuple):
    """A point in time as UTC seconds since the epoch plus an exact fraction in ``[0, 1)``.
    Tuples order correctly: instants compare by time."""

    seconds: int
    fraction: Decimal


_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:Z|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_NO_FRACTION: Final = Decimal(0)


def parse_timestamp(text: str) -> Instant | None:
    """The instant an ASL timestamp denotes, or ``None`` when ``text`` is not one (see the module
    docstring for the accepted grammar)."""
    m = _TIMESTAMP.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    if hour > 23 or minute > 59 or second > 59:
        return None
    try:
        day_number = date(year, month, day).toordinal() - _EPOCH_ORDINAL
    except ValueError:  # month 13, February 30, year 0000
        return None
    offset = 0
    if m.group(8):
        off_hour, off_minute = int(m.group(9)), int(m.group(10))
        if off_hour > 23 or off_minute > 59:
            return None
        offset = (off_hour * 3600 + off_minute * 60) * (1 if m.group(8) == "+" else -1)
    seconds = day_number * 86400 + hour * 3600 + minute * 60 + second - offset
    digits = m.group(7)
    return Instant(seconds, Decimal("0." + digits) if digits else _NO_FRACTION)


# ------------------------------------------------------------------ operand kinds

_MISMATCH: Final = object()  # a value of the wrong type for the operator: the test is false


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _string(value: Any) -> Any:
    return value if isinstance(value, str) else _MISMATCH


def _string_order(value: Any) -> Any:
    # Java String.compareTo order = lexicographic UTF-16 code units = UTF-16BE byte order.
    return value.encode("utf-16-be", "surrogatepass") if isinstance(value, str) else _MISMATCH


def _number(value: Any) -> Any:
    return value if _is_number(value) else _MISMATCH


def _boolean(value: Any) -> Any:
    return value if isinstance(value, bool) else _MISMATCH


def _timestamp(value: Any) -> Any:
    instant = parse_timestamp(value) if isinstance(value, str) else None
    return _MISMATCH if instant is None else instant


_KIND_NOUN: Final = {
    "String": "a string",
    "Numeric": "a number",
    "Boolean": "a boolean (true or false)",
    "Timestamp": "an RFC 3339 timestamp string such as '2016-08-18T17:33:00Z'",
}

_RELATIONS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "Equals": operator.eq,
    "LessThan": operator.lt,
    "GreaterThan": operator.gt,
    "LessThanEquals": operator.le,
    "GreaterThanEquals": operator.ge,
}


@dataclass(frozen=True, slots=True)
class _Comparison:
    kind: str  # String / Numeric / Boolean / Timestamp
    relation: Callable[[Any, Any], bool]
    key: Callable[[Any], Any]  # value -> comparable key, or _MISMATCH
    is_path: bool


def _comparison_table() -> dict[str, _Comparison]:
    kinds: dict[str, tuple[tuple[str, ...], Callable[[Any], Any]]] = {
        "String": (tuple(_RELATIONS), _string_order),
        "Numeric": (tuple(_RELATIONS), _number),
        "Timestamp": (tuple(_RELATIONS), _timestamp),
        "Boolean": (("Equals",), _boolean),
    }
    table: dict[str, _Comparison] = {}
    for kind, (relations, key) in kinds.items():
        for rel in relations:
            # StringEquals compares str directly: same result as the UTF-16 key, no encoding.
            k = _string if (kind, rel) == ("String", "Equals") else key
            for suffix, is_path in (("", False), ("Path", True)):
                table[kind + rel + suffix] = _Comparison(kind, _RELATIONS[rel], k, is_path)
    return table


_COMPARISONS: Final = _comparison_table()

_TYPE_TESTS: Final[dict[str, Callable[[Any], bool]]] = {
    "IsNull": lambda v: v is None,
    "IsNumeric": _is_number,
    "IsString": lambda v: isinstance(v, str),
    "IsBoolean": lambda v: isinstance(v, bool),
    "IsTimestamp": lambda v: isinstance(v, str) and parse_timestamp(v) is not None,
}

_BOOLEAN_OPERATORS: Final = ("And", "Or", "Not")

#: Every operator a JSONPath Choice rule may use.
OPERATORS: Final[frozenset[str]] = frozenset(
    {*_BOOLEAN_OPERATORS, *_COMPARISONS, "StringMatches", "IsPresent", *_TYPE_TESTS}
)
_RULE_FIELDS: Final = frozenset({"Variable", "Next", "Comment", "Assign"})

# ------------------------------------------------------------------ compiled rules


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled Choice rule. ``evaluate(resolve)`` says whether it holds for one input.

    ``operator`` is the rule's operator (``And``, ``NumericEquals``, ...), ``where`` its position
    in the definition, ``next`` and ``assign`` the top-level rule's ``Next`` / raw ``Assign``
    (``None`` in nested rules).
    """

    operator: str
    where: str
    next: str | None
    assign: Any
    _test: Callable[[Resolve], bool] = field(repr=False, compare=False)

    def evaluate(self, resolve: Resolve) -> bool:
        """Whether the rule holds. Raises ``distmap.errors.Runtime`` (States.Runtime) when a path
        the rule needs selects nothing (see the module docstring)."""
        return self._test(resolve)


@dataclass(frozen=True, slots=True)
class ChoiceState:
    """A compiled Choice state: its top-level rules in order, and the optional ``Default``."""

    where: str
    choices: tuple[Rule, ...]
    default: str | None

    def first_match(self, resolve: Resolve) -> Rule | None:
        """The first top-level rule that holds, or ``None``."""
        for rule in self.choices:
            if rule.evaluate(resolve):
                return rule
        return None

    def next_state(self, resolve: Resolve) -> str | None:
        """The ``Next`` of the first rule that holds, else ``Default``; ``None`` when nothing
        matched and there is no ``Default`` (the interpreter raises States.NoChoiceMatched)."""
        rule = self.first_match(resolve)
        return rule.next if rule is not None else self.default


# ------------------------------------------------------------------ compilation


def compile_rule(rule: Any, where: str, *, top_level: bool = True) -> Rule:
    """Validate and compile one Choice rule found at ``where`` (``States.Check.Choices[1]``).

    A top-level rule must have ``Next``; with ``top_level=False`` the rule is checked as one nested
    in a boolean expression, where ``Next`` is not allowed. Raises ``ConfigError`` with ``field``
    set to ``where`` plus the offending key (``States.Check.Choices[1].NumericEquals``).
    """
    return _compile(rule, where, None if top_level else "a boolean expression")


def compile_choice_state(state: Any, where: str) -> ChoiceState:
    """Validate and compile a Choice state definition found at ``where`` (``States.Check``)."""
    if not isinstance(state, dict):
        raise ConfigError(where, f"a Choice state must be an object, got {_describe(state)}")
    if "Type" in state and state["Type"] != "Choice":
        raise ConfigError(f"{where}.Type", f"expected 'Choice', got {_describe(state['Type'])}")
    if "End" in state:
        raise ConfigError(f"{where}.End", "a Choice state cannot end the execution: it has no End field")
    if "Next" in state:
        raise ConfigError(
            f"{where}.Next", "a Choice state has no state-level Next: each rule in Choices has its own"
        )
    choices = state.get("Choices")
    if not isinstance(choices, list) or not choices:
        got = "nothing" if "Choices" not in state else _describe(choices)
        raise ConfigError(f"{where}.Choices", f"Choices must be a non-empty array of choice rules, got {got}")
    default = state.get("Default")
    if "Default" in state and (not isinstance(default, str) or not default):
        raise ConfigError(f"{where}.Default", f"Default must be a state name, got {_describe(default)}")
    rules = tuple(_compile(rule, f"{where}.Choices[{i}]", None) for i, rule in enumerate(choices))
    return ChoiceState(where, rules, default)


def _compile(rule: Any, where: str, parent: str | None) -> Rule:
    """Compile ``rule``; ``parent`` is the enclosing boolean operator, ``None`` at top level."""
    if not isinstance(rule, dict):
        raise ConfigError(where, f"a choice rule must be an object, got {_describe(rule)}")
    ops: list[str] = []
    for key in rule:
        if key in OPERATORS:
            ops.append(key)
        elif key not in _RULE_FIELDS:
            raise ConfigError(f"{where}.{key}", _unknown_field(key))
    if not ops:
        raise ConfigError(
            where,
            "a choice rule needs one operator (And, Or, Not, StringEquals, NumericEquals, IsPresent, ...)",
        )
    if len(ops) > 1:
        raise ConfigError(
            f"{where}.{ops[1]}",
            f"{ops[0]} and {ops[1]} in one choice rule: a rule takes exactly one operator "
            "(combine tests with And / Or)",
        )
    op = ops[0]
    if "Comment" in rule and not isinstance(rule["Comment"], str):
        raise ConfigError(f"{where}.Comment", f"the Comment of the {op} rule must be a string")

    nxt: str | None = None
    assign: Any = None
    if parent is None:
        if "Next" not in rule:
            raise ConfigError(
                f"{where}.Next", f"the top-level {op} rule needs a Next naming the state to go to"
            )
        nxt = rule["Next"]
        if not isinstance(nxt, str) or not nxt:
            raise ConfigError(
                f"{where}.Next", f"the Next of the {op} rule must be a state name, got {_describe(nxt)}"
            )
        assign = rule.get("Assign")
    else:
        for key in ("Next", "Assign"):
            if key in rule:
                raise ConfigError(
                    f"{where}.{key}",
                    f"{key} is not allowed in the {op} rule nested inside {parent}: "
                    "only top-level choice rules have one",
                )

    if op in _BOOLEAN_OPERATORS:
        if "Variable" in rule:
            raise ConfigError(f"{where}.Variable", f"{op} is a boolean expression and takes no Variable")
        test = _compile_boolean(op, rule[op], f"{where}.{op}")
    else:
        if "Variable" not in rule:
            raise ConfigError(f"{where}.Variable", f"{op} needs a Variable: the path of the value to test")
        variable = rule["Variable"]
        if not _is_path(variable):
            raise ConfigError(
                f"{where}.Variable",
                f"the Variable of {op} must be a path starting with '$', got {_describe(variable)}",
            )
        test = _compile_data_test(op, variable, rule[op], f"{where}.{op}")
    return Rule(op, where, nxt, assign, test)


def _compile_boolean(op: str, operand: Any, where: str) -> Callable[[Resolve], bool]:
    if op == "Not":
        if not isinstance(operand, dict):
            raise ConfigError(where, f"Not takes a single choice rule (an object), got {_describe(operand)}")
        inner = _compile(operand, where, "Not").evaluate
        return lambda resolve: not inner(resolve)
    if not isinstance(operand, list) or not operand:
        raise ConfigError(where, f"{op} takes a non-empty array of choice rules, got {_describe(operand)}")
    tests = tuple(_compile(r, f"{where}[{i}]", op).evaluate for i, r in enumerate(operand))
    if op == "And":
        return lambda resolve: all(t(resolve) for t in tests)
    return lambda resolve: any(t(resolve) for t in tests)


def _compile_data_test(op: str, variable: str, operand: Any, where: str) -> Callable[[Resolve], bool]:
    if op == "IsPresent":
        expected = _boolean_operand(op, operand, where)
        return lambda resolve: bool(resolve(variable)[0]) == expected

    if op in _TYPE_TESTS:
        expected = _boolean_operand(op, operand, where)
        check = _TYPE_TESTS[op]
        return lambda resolve: check(_lookup(resolve, variable)) == expected

    if op == "StringMatches":
        if not isinstance(operand, str):
            raise ConfigError(where, f"StringMatches needs a pattern string, got {_describe(operand)}")
        matches = _compile_pattern(operand, where)

        def string_matches(resolve: Resolve) -> bool:
            value = _lookup(resolve, variable)
            return isinstance(value, str) and matches(value)

        return string_matches

    spec = _COMPARISONS[op]
    relation, key = spec.relation, spec.key
    if spec.is_path:
        if not _is_path(operand):
            raise ConfigError(where, f"{op} needs a path starting with '$', got {_describe(operand)}")
        operand_path: str = operand

        def compare_paths(resolve: Resolve) -> bool:
            left = key(_lookup(resolve, variable))
            right = key(_lookup(resolve, operand_path))
            return left is not _MISMATCH and right is not _MISMATCH and relation(left, right)

        return compare_paths

    right = key(operand)
    if right is _MISMATCH:
        raise ConfigError(where, f"{op} needs {_KIND_NOUN[spec.kind]}, got {_describe(operand)}")

    def compare_literal(resolve: Resolve) -> bool:
        left = key(_lookup(resolve, variable))
        return left is not _MISMATCH and relation(left, right)

    return compare_literal


def _compile_pattern(pattern: str, where: str) -> Callable[[str], bool]:
    """A StringMatches pattern as a matcher. Split on unescaped ``*`` into literal segments, then
    match greedily left to right: linear in practice, no regex backtracking."""
    segments: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            nxt = pattern[i + 1] if i + 1 < len(pattern) else ""
            if nxt not in ("*", "\\"):
                what = f"'\\{nxt}'" if nxt else "a trailing backslash"
                raise ConfigError(
                    where,
                    f"StringMatches pattern {pattern!r} has {what} at position {i}: a backslash must "
                    "escape '*' or another backslash",
                )
            current.append(nxt)
            i += 2
        elif ch == "*":
            segments.append("".join(current))
            current = []
            i += 1
        else:
            current.append(ch)
            i += 1
    segments.append("".join(current))

    if len(segments) == 1:
        literal = segments[0]
        return lambda s: s == literal
    head, middle, tail = segments[0], tuple(segments[1:-1]), segments[-1]
    fixed = len(head) + len(tail)

    def matches(s: str) -> bool:
        if len(s) < fixed or not s.startswith(head) or not s.endswith(tail):
            return False
        pos, end = len(head), len(s) - len(tail)
        for seg in middle:
            found = s.find(seg, pos, end)
            if found < 0:
                return False
            pos = found + len(seg)
        return True

    return matches


def _boolean_operand(op: str, operand: Any, where: str) -> bool:
    if not isinstance(operand, bool):
        raise ConfigError(where, f"{op} takes true or false, got {_describe(operand)}")
    return operand


def _lookup(resolve: Resolve, path: str) -> Any:
    found, value = resolve(path)
    if not found:
        raise Runtime(
            cause=f"Invalid path '{path}': The choice state's condition path references an invalid value."
        )
    return value


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("$")


def _unknown_field(key: str) -> str:
    if key in ("Condition", "Output"):
        return f"{key} is a JSONata field; JSONPath choice rules use Variable and an operator"
    close = difflib.get_close_matches(key, sorted(OPERATORS | _RULE_FIELDS), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown choice rule operator or field {key!r}{hint}"


def _describe(value: Any) -> str:
    """A short description of a JSON value for error messages: ``number 5``, ``string 'x'``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {'true' if value else 'false'}"
    if _is_number(value):
        return f"number {value!r}"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return f"string {text!r}"
    if isinstance(value, list):
        return f"an array of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
