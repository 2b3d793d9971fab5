"""Fields held with the captures, not in the events: labels (`tag:`, `family:`, `campaign:`,
`actor:`) and hunts (`hunt:<id>`). Before a backend sees the tree, each such leaf becomes the set
of captures carrying it."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ..errors import QueryError
from . import fields as catalog
from .nodes import ANY, And, Captures, Exists, Node, Not, Or, Phrase, Range, Term, Wildcard

# (kinds or None for any, value, like) -> capture ids; like: value is a LIKE pattern, `\` escapes
Lookup = Callable[[tuple[str, ...] | None, str, bool], set[str]]
# (hunt id, or a LIKE pattern of ids, like) -> the captures that hunt's rules fired on
HuntLookup = Callable[[str, bool], set[str]]


def like_pattern(parts: tuple) -> str:
    """A wildcard's parts as a LIKE pattern: literals escaped, `*` -> `%`, `?` -> `_`."""
    return "".join("%" if p is ANY else "_" if not isinstance(p, str) else
                   p.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for p in parts)


def resolve(node: Node, lookup: Lookup, hunted: HuntLookup) -> Node:
    if isinstance(node, And):
        return And(tuple(resolve(c, lookup, hunted) for c in node.children))
    if isinstance(node, Or):
        return Or(tuple(resolve(c, lookup, hunted) for c in node.children))
    if isinstance(node, Not):
        return Not(resolve(node.child, lookup, hunted))
    field = getattr(node, "field", None)
    find: HuntLookup
    if field == catalog.HUNT:
        find, example = hunted, f"{field}:1"
    elif field in catalog.LABELS:
        find, example = partial(lookup, catalog.LABELS[field]), f"{field}:emotet"
    else:
        return node
    if isinstance(node, (Term, Phrase)):
        return Captures(frozenset(find(node.value, False)))
    if isinstance(node, Wildcard):
        return Captures(frozenset(find(like_pattern(node.parts), True)))
    if isinstance(node, Exists):
        return Captures(frozenset(find("%", True)))
    if isinstance(node, Range):
        raise QueryError(f"{field} is {'a hunt' if field == catalog.HUNT else 'a label'}: give a value "
                         f"such as {example}, not a range")
    return Captures(frozenset())  # a CIDR on a label or a hunt: nothing can match
