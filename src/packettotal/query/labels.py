"""Fields held with the captures, not in the events: labels (`tag:`, `family:`, `campaign:`,
`actor:`) and YARA matches of carved files (`yara:`). Before a backend sees the tree, each such
leaf becomes the set of captures carrying it."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ..errors import QueryError
from . import fields as catalog
from .nodes import ANY, And, Captures, Exists, Node, Not, Or, Phrase, Range, Term, Wildcard

# (kinds or None for any, value, like) -> capture ids; like: value is a LIKE pattern, `\` escapes
Lookup = Callable[[tuple[str, ...] | None, str, bool], set[str]]
# (value, like) -> capture ids, for one field
Find = Callable[[str, bool], set[str]]


def like_pattern(parts: tuple) -> str:
    """A wildcard's parts as a LIKE pattern: literals escaped, `*` -> `%`, `?` -> `_`."""
    return "".join("%" if p is ANY else "_" if not isinstance(p, str) else
                   p.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for p in parts)


def resolve(node: Node, lookup: Lookup, *, yara: Find) -> Node:
    """`yara`: the captures holding a carved file that matched a YARA rule of that name."""
    if isinstance(node, And):
        return And(tuple(resolve(c, lookup, yara=yara) for c in node.children))
    if isinstance(node, Or):
        return Or(tuple(resolve(c, lookup, yara=yara) for c in node.children))
    if isinstance(node, Not):
        return Not(resolve(node.child, lookup, yara=yara))
    field = getattr(node, "field", None)
    find: Find
    if field == catalog.YARA:
        find, what = yara, "a YARA rule name"
    elif field in catalog.LABELS:
        find, what = partial(lookup, catalog.LABELS[field]), "a label"
    else:
        return node
    if isinstance(node, (Term, Phrase)):
        return Captures(frozenset(find(node.value, False)))
    if isinstance(node, Wildcard):
        return Captures(frozenset(find(like_pattern(node.parts), True)))
    if isinstance(node, Exists):
        return Captures(frozenset(find("%", True)))
    if isinstance(node, Range):
        example = f"{field}:EICAR*" if field == catalog.YARA else f"{field}:emotet"
        raise QueryError(f"{field} is {what}: give a value such as {example}, not a range")
    return Captures(frozenset())  # a CIDR on a label or a rule name: nothing can match
