"""Label fields (`tag:`, `family:`, `campaign:`, `actor:`) live with the captures, not in the
events: before a backend sees the tree, each label leaf becomes the set of captures carrying it."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import QueryError
from . import fields as catalog
from .nodes import ANY, And, Captures, Exists, Node, Not, Or, Phrase, Range, Term, Wildcard

# (kinds or None for any, value, like) -> capture ids; like: value is a LIKE pattern, `\` escapes
Lookup = Callable[[tuple[str, ...] | None, str, bool], set[str]]


def like_pattern(parts: tuple) -> str:
    """A wildcard's parts as a LIKE pattern: literals escaped, `*` -> `%`, `?` -> `_`."""
    return "".join("%" if p is ANY else "_" if not isinstance(p, str) else
                   p.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for p in parts)


def resolve(node: Node, lookup: Lookup) -> Node:
    if isinstance(node, And):
        return And(tuple(resolve(c, lookup) for c in node.children))
    if isinstance(node, Or):
        return Or(tuple(resolve(c, lookup) for c in node.children))
    if isinstance(node, Not):
        return Not(resolve(node.child, lookup))
    field = getattr(node, "field", None)
    if field not in catalog.LABELS:
        return node
    kinds = catalog.LABELS[field]
    if isinstance(node, (Term, Phrase)):
        return Captures(frozenset(lookup(kinds, node.value, False)))
    if isinstance(node, Wildcard):
        return Captures(frozenset(lookup(kinds, like_pattern(node.parts), True)))
    if isinstance(node, Exists):
        return Captures(frozenset(lookup(kinds, "%", True)))
    if isinstance(node, Range):
        raise QueryError(f"{field} is a label: give a value such as {field}:emotet, not a range")
    return Captures(frozenset())  # a CIDR on a label: nothing can match
