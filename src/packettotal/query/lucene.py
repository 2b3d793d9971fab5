"""Lucene query text -> the typed node tree (nodes.py), parsed once with luqum.

Defaults: juxtaposed terms mean AND (`a b` = `a AND b`); mixing AND and OR at one level needs
parentheses. IPv6 values and CIDRs may be written bare after an IP field (`ip:2001:db8::/32`).
"""

from __future__ import annotations

import ipaddress
import re

from luqum import tree as lt
from luqum.exceptions import IllegalCharacterError, ParseError
from luqum.parser import parser

from ..errors import QueryError
from . import fields as catalog
from .nodes import ANY, ONE, And, Cidr, Exists, MatchAll, Node, Not, Or, Phrase, Range, Term, Wildcard

MAX_QUERY = 4096
_IP_FIELDS = "|".join(re.escape(n) for n in
                      sorted({f.name for f in catalog.CATALOG if f.kind == "ip"} | {"ip"}, key=len, reverse=True))
_BARE_IP = re.compile(rf"(?<![\w.])({_IP_FIELDS})\s*:\s*(?![\"(\[{{])([0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?:/\d{{1,3}})?)")
_POSITION = re.compile(r"position (\d+)")


def parse(text: str) -> Node:
    text = (text or "").strip()
    if not text or text == "*":
        return MatchAll()
    if len(text) > MAX_QUERY:
        raise QueryError(f"the query is longer than {MAX_QUERY} characters", position=MAX_QUERY)
    quoted = _BARE_IP.sub(lambda m: f'{m.group(1)}:"{m.group(2)}"', text)
    try:
        tree = parser.parse(quoted)
    except IllegalCharacterError as exc:
        raise QueryError(f"illegal character in the query: {exc}", position=_pos(exc, len(text)),
                         expected="a term, a quoted phrase, a field:value or a parenthesis") from None
    except ParseError as exc:
        msg = str(exc)
        pos = _pos(exc, len(text))
        expected = ("a closing parenthesis or a term" if "end" in msg
                    else "a term, field:value, quoted phrase, or AND/OR/NOT")
        raise QueryError(f"cannot parse the query at position {pos}: {msg}", position=pos,
                         expected=expected) from None
    try:
        return _convert(tree, None)
    except QueryError as exc:
        if exc.position is not None and quoted == text:  # point at the token, not the space before it
            while exc.position < len(text) and text[exc.position].isspace():
                exc.position += 1
        raise


def _pos(exc: Exception, end: int) -> int:
    m = _POSITION.search(str(exc))
    return int(m.group(1)) if m else end


def _convert(node: lt.Item, field: str | None) -> Node:
    if isinstance(node, lt.SearchField):
        if field is not None:
            raise QueryError(f"field {node.name!r} is nested inside field {field!r}",
                             position=node.pos, expected="a value after the field name")
        return _convert(node.expr, node.name)
    if isinstance(node, (lt.Group, lt.FieldGroup)):
        return _convert(node.expr, field)
    if isinstance(node, (lt.AndOperation, lt.UnknownOperation)):
        _no_mix(node, lt.OrOperation)
        return And(tuple(_convert(c, field) for c in node.children))
    if isinstance(node, lt.OrOperation):
        _no_mix(node, lt.AndOperation)
        return Or(tuple(_convert(c, field) for c in node.children))
    if isinstance(node, (lt.Not, lt.Prohibit)):
        return Not(_convert(node.a, field))
    if isinstance(node, lt.Plus):
        return _convert(node.a, field)
    if isinstance(node, lt.Phrase):
        value = _unescape(node.value[1:-1])
        if field is not None and _is_ip_field(field):
            return _cidr(field, value, node.pos) if "/" in value else Term(field, value)
        return Phrase(field, value)
    if isinstance(node, lt.Word):
        return _word(node.value, field, node.pos)
    if isinstance(node, lt.Range):
        return _range(field, node.low, node.high, node.include_low, node.include_high, node.pos)
    if isinstance(node, lt.From):
        return _range(field, node.a, None, node.include, True, node.pos)
    if isinstance(node, lt.To):
        return _range(field, None, node.a, True, node.include, node.pos)
    if isinstance(node, lt.Boost):
        return _convert(node.expr, field)
    kind = type(node).__name__.lower()
    raise QueryError(f"{kind} queries are not supported", position=getattr(node, "pos", None),
                     expected="a term, wildcard, phrase, range or CIDR")


def _no_mix(node: lt.Item, other: type) -> None:
    for child in node.children:
        if isinstance(child, other):
            raise QueryError("the query mixes AND and OR at one level: add parentheses to say which binds first",
                             position=child.pos + child.size,
                             expected="parentheses around the AND or the OR part")


def _range(field, low, high, inc_low, inc_high, pos) -> Node:
    if field is None:
        raise QueryError("a range needs a field, as in flow.bytes_toserver:[1000 TO *]",
                         position=pos, expected="field:[low TO high]")

    def bound(v):
        if v is None:
            return None
        s = _unescape(v.value[1:-1] if isinstance(v, lt.Phrase) else v.value)
        return None if s == "*" else s

    return Range(field, bound(low), bound(high), bool(inc_low), bool(inc_high))


def _word(raw: str, field: str | None, pos: int | None) -> Node:
    if raw == "*":
        return Exists(field) if field else MatchAll()
    parts: list = []
    literal = ""
    escaped = False
    for ch in raw:
        if escaped:
            literal += ch
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in "*?":
            if literal:
                parts.append(literal)
                literal = ""
            parts.append(ANY if ch == "*" else ONE)
        else:
            literal += ch
    if literal:
        parts.append(literal)
    if any(p is ANY or p is ONE for p in parts):
        return Wildcard(field, tuple(parts))
    value = "".join(parts)
    if field is not None and "/" in value and _is_ip_field(field):
        return _cidr(field, value, pos)
    return Term(field, value)


def _is_ip_field(name: str) -> bool:
    fs = catalog.resolve(name)
    return bool(fs) and all(f.kind == "ip" for f in fs)


def _cidr(field: str, value: str, pos: int | None) -> Node:
    try:
        return Cidr(field, ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise QueryError(f"{value!r} is not a network in CIDR notation", position=pos,
                         expected="an address/prefix such as 10.0.0.0/8 or 2001:db8::/32") from None


def _unescape(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s)
