"""Choice rules in both query languages, and the ``Assign`` / ``Output`` of the rule that matched.

* JSONPath: the rules of :mod:`distmap.asl.choice` (``Variable`` may be a ``$name`` variable
  path); a rule may carry ``Assign`` (its ``$`` is the state's effective input).
* JSONata: each rule is ``{"Condition": "{% ... %}", "Next": ..., "Output"?, "Assign"?}``; the
  Condition must evaluate to a boolean (else States.QueryEvaluationError). A literal ``true`` /
  ``false`` is accepted too.

The matched rule's ``Assign`` / ``Output`` apply; with no rule matched (``Default``) the state's own
apply. In JSONata a matched rule without ``Output`` falls back to the state's ``Output``, then to
the input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from distmap.asl.choice import compile_choice_state
from distmap.asl.query_language import Flow, catcher_flow, states_of, typed, variables_of
from distmap.config.fields import Fields
from distmap.dataflow.jsonata import compile_expression, is_expression
from distmap.dataflow.jsonpath import PathSyntaxError, compile_query
from distmap.errors import ConfigError

_JSONATA_RULE_FIELDS = ("Condition", "Next", "Output", "Assign", "Comment")


class _JsonataRules:
    def __init__(self, conditions: list[Any], nexts: list[str], default: str | None) -> None:
        self.conditions = conditions
        self.nexts = nexts
        self.default = default


def compile_rules(state: Any, raw: dict[str, Any], f: Fields) -> tuple[Any, list[Flow | None]]:
    """The compiled rules and, per rule, its Flow (None when it has no Assign / Output)."""
    choices = raw.get("Choices")
    flows: list[Flow | None] = []
    if not state.jsonata:
        rules = compile_choice_state({k: v for k, v in raw.items() if v is not None}, state.where)
        for i, rule in enumerate(rules.choices):
            flows.append(catcher_flow({"Assign": rule.assign}, f"{f.sub('Choices')}[{i}]", state.language,
                                      state.name, f.source) if rule.assign is not None else None)
        return rules, flows
    if not isinstance(choices, list) or not choices:
        raise f.error("Choices", "must be a non-empty array of choice rules")
    default = raw.get("Default")
    if default is not None and (not isinstance(default, str) or not default):
        raise f.error("Default", f"must be a state name, got {default!r}")
    conditions: list[Any] = []
    nexts: list[str] = []
    for i, rule in enumerate(choices):
        where = f"{f.sub('Choices')}[{i}]"
        if not isinstance(rule, Mapping):
            raise ConfigError(where, "a choice rule must be an object")
        for key in rule:
            if key not in _JSONATA_RULE_FIELDS:
                hint = " (JSONPath rule operators need QueryLanguage JSONPath; use Condition)" if key != "Next" else ""
                raise ConfigError(f"{where}.{key}", f"is not a field of a JSONata choice rule{hint}", source=f.source)
        condition = rule.get("Condition")
        if isinstance(condition, bool):
            conditions.append(condition)
        elif is_expression(condition):
            try:
                conditions.append(compile_expression(condition, "Condition", state.name))
            except PathSyntaxError as exc:
                raise ConfigError(f"{where}.Condition", str(exc).removeprefix("Condition: "), source=f.source) from None
        else:
            raise ConfigError(f"{where}.Condition", f"must be a {{% %}} JSONata expression or a boolean, got {condition!r}",
                              source=f.source)
        nxt = rule.get("Next")
        if not isinstance(nxt, str) or not nxt:
            raise ConfigError(f"{where}.Next", "is required (a state name)", source=f.source)
        nexts.append(nxt)
        flows.append(catcher_flow(rule, where, state.language, state.name, f.source))
    return _JsonataRules(conditions, nexts, default), flows


def choose(state: Any, raw: Any, effective: Any, ctx: Any) -> tuple[str | None, Flow | None]:
    """``(next state, flow of the matched rule)``; the flow is the state's own for Default."""
    rules = state.rules
    if isinstance(rules, _JsonataRules):
        states, variables = states_of(raw, ctx), variables_of(ctx)
        for condition, nxt, flow in zip(rules.conditions, rules.nexts, state.rule_flows, strict=True):
            holds = condition if isinstance(condition, bool) else typed(condition, states, variables, "boolean")
            if holds:
                return nxt, flow
        return rules.default, None

    def resolve(path: str) -> tuple[bool, Any]:
        return compile_query(path).find(effective, ctx)

    rule = rules.first_match(resolve)
    if rule is None:
        return rules.default, None
    return rule.next, state.rule_flows[rules.choices.index(rule)]
