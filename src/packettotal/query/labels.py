"""Capture fields live with the captures, not in the events: labels (`tag:`, `family:`,
`campaign:`, `actor:`), findings (`finding:`), hunts (`hunt:<id>`), YARA matches of carved
files (`yara:`), IOC feeds' hits (`intel:`) and the capture's name (`name:`). Before a backend
sees the tree, each such leaf becomes the set of captures it matches, from that field's lookup."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..errors import QueryError
from . import fields as catalog
from .nodes import ANY, And, Captures, Exists, Node, Not, Or, Phrase, Range, Term, Wildcard

# (value, like) -> capture ids; like: value is a LIKE pattern (lower-case, `\` escapes)
Lookup = Callable[[str, bool], set[str]]


def like_pattern(parts: tuple) -> str:
    """A wildcard's parts as a LIKE pattern: literals escaped, `*` -> `%`, `?` -> `_`."""
    return "".join("%" if p is ANY else "_" if not isinstance(p, str) else
                   p.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for p in parts)


def resolve(node: Node, lookups: Mapping[str, Lookup]) -> Node:
    """`lookups`: capture field (catalog.CAPTURE_FIELDS) -> its lookup."""
    if isinstance(node, And):
        return And(tuple(resolve(c, lookups) for c in node.children))
    if isinstance(node, Or):
        return Or(tuple(resolve(c, lookups) for c in node.children))
    if isinstance(node, Not):
        return Not(resolve(node.child, lookups))
    field = getattr(node, "field", None)
    if not isinstance(field, str) or field not in lookups:
        return node
    lookup = lookups[field]
    if isinstance(node, (Term, Phrase)):
        return Captures(frozenset(lookup(node.value, False)))
    if isinstance(node, Wildcard):
        return Captures(frozenset(lookup(like_pattern(node.parts), True)))
    if isinstance(node, Exists):
        return Captures(frozenset(lookup("%", True)))
    if isinstance(node, Range):
        example = catalog.CAPTURE_FIELDS[field][1]
        raise QueryError(f"{field} is a {catalog.CAPTURE_FIELDS[field][0]}: give a value such as "
                         f"{field}:{example}, not a range")
    return Captures(frozenset())  # a CIDR on a label: nothing can match
