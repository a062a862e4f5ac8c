"""A YAML loader with bounded alias expansion.

YAML aliases share nodes, so a few hundred bytes (``a: &a [x, x, x]``, ``b: &b [*a, *a, *a]``,
...) can describe billions of values. PyYAML builds them as shared Python objects, and the
blow-up comes later, when the job's ``Input`` is copied or serialised (an observed 637-byte file
reached 11.7 GiB). ``load`` measures the document as if every alias were written out, right after
composing it and before building any object, and refuses one that aliases grow by more than
``MAX_ALIAS_EXPANSION`` values, or that refers to itself.
"""

from __future__ import annotations

from typing import Any

import yaml

#: Values that aliases may add to a document once expanded (plenty for anchors used as templates).
MAX_ALIAS_EXPANSION = 100_000


class AliasExpansionError(yaml.YAMLError):
    """The document's aliases expand beyond the limit, or an alias refers to its own anchor."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def check_expansion(root: yaml.Node, limit: int = MAX_ALIAS_EXPANSION) -> None:
    """Raise ``AliasExpansionError`` when expanding the aliases under ``root`` would add more than
    ``limit`` values. Linear in the number of distinct nodes."""
    sizes: dict[int, int] = {}
    started: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            sizes[key] = 1 + sum(sizes[id(c)] for c in _children(node))
            started.discard(key)
            continue
        if key in sizes:
            continue
        if key in started:  # reached again before it was finished: it contains itself
            anchor = f" (&{node.anchor})" if getattr(node, "anchor", None) else ""
            raise AliasExpansionError(f"an alias refers to the value it is part of{anchor}")
        started.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)
    expanded, distinct = sizes[id(root)], len(sizes)
    if expanded - distinct > limit:
        raise AliasExpansionError(
            f"aliases expand the document to {expanded:,} values, more than {limit:,} beyond the "
            f"{distinct:,} written (an alias bomb?); write the values out, or use fewer aliases"
        )


class BoundedSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that checks alias expansion before constructing anything."""

    def get_single_node(self) -> Any:
        node = super().get_single_node()
        if node is not None:
            check_expansion(node)
        return node


def load(text: str) -> Any:
    """``yaml.safe_load`` with bounded alias expansion."""
    return yaml.load(text, Loader=BoundedSafeLoader)
