"""Lucene query text -> the typed node tree (nodes.py), parsed once with luqum.

Defaults: juxtaposed terms mean AND (`a b` = `a AND b`); mixing AND and OR at one level needs
parentheses. IPv6 values and CIDRs may be written bare after an IP field (`ip:2001:db8::/32`).
Values of number, time and IP fields are checked here, where they were typed, so that an error
names its position; the work one query may ask for is bounded (length, nesting, clauses, wildcards).
"""

from __future__ import annotations

import re

from luqum import tree as lt
from luqum.exceptions import IllegalCharacterError, ParseError
from luqum.thread import parse as luqum_parse  # a lexer per thread: luqum's module parser is not thread-safe

from ..errors import QueryError
from . import fields as catalog, values
from .nodes import ANY, ONE, And, Cidr, Exists, MatchAll, Node, Not, Or, Phrase, Range, Term, Wildcard

MAX_QUERY = 4096
QUERY_BYTES = 16 * MAX_QUERY  # what a request may carry: longer queries are refused by the parser, with a reason
MAX_DEPTH = 32       # nested groups and negations
MAX_CLAUSES = 256    # terms, phrases, ranges... in one query
MAX_WILDCARDS = 8    # wildcard terms in one query: each one walks a term dictionary
MAX_WILDCARD_SIGNS = 8  # '*' and '?' in one wildcard term
_IP_FIELDS = "|".join(re.escape(n) for n in
                      sorted({f.name for f in catalog.CATALOG if f.kind == "ip"} | {"ip"}, key=len, reverse=True))
# a bare IPv6 value (or CIDR) after an IP field: luqum would read its colons as fields
_BARE_IP = re.compile(rf"(?<![\w.])(?:{_IP_FIELDS})\s*:\s*(?![\"(\[{{])"
                      r"([0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?:%[\w.-]*)?(?:/\d{1,3})?)")
_POSITION = re.compile(r"position (\d+)")
_BAD_BOOST = re.compile(r"\^(?!\d+(?:\.\d*)?(?![\d.]))")


def parse(text: str) -> Node:
    text = (text or "").strip()
    if not text or text == "*":
        return MatchAll()
    if len(text) > MAX_QUERY:
        raise QueryError(f"the query is longer than {MAX_QUERY} characters", position=MAX_QUERY)
    masked, bare = _mask_bare_ips(text)
    try:
        tree = luqum_parse(masked)
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
    except ArithmeticError:  # luqum reads a boost with Decimal: `a^.`
        m = _BAD_BOOST.search(masked)
        raise QueryError("a boost (^) needs a number after it, as in a^2", position=m.start() if m else len(text),
                         expected="a number after ^") from None
    try:
        return _Converter(bare).convert(tree, None, 0)
    except QueryError as exc:
        if exc.position is not None:  # point at the token, not the space before it
            while exc.position < len(text) and text[exc.position].isspace():
                exc.position += 1
        raise


def _mask_bare_ips(text: str) -> tuple[str, dict[int, str]]:
    """Each bare IP value is replaced by a placeholder word of the same length, so that every
    position luqum reports is a position in the text as typed; returns {position: value}."""
    bare: dict[int, str] = {}
    out = []
    last = 0
    for m in _BARE_IP.finditer(text):
        start, end = m.span(1)
        bare[start] = m.group(1)
        out += [text[last:start], "x" * (end - start)]
        last = end
    out.append(text[last:])
    return "".join(out), bare


def _pos(exc: Exception, end: int) -> int:
    m = _POSITION.search(str(exc))
    return int(m.group(1)) if m else end


class _Converter:
    """luqum tree -> node tree, counting what the query asks for as it goes."""

    def __init__(self, bare: dict[int, str]):
        self.bare = bare
        self.clauses = 0
        self.wildcards = 0

    def convert(self, node: lt.Item, field: str | None, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise QueryError(f"the query nests groups or negations more than {MAX_DEPTH} deep",
                             position=node.pos, expected="fewer parentheses or NOTs")
        if isinstance(node, lt.SearchField):
            if field is not None:
                raise QueryError(f"field {node.name!r} is nested inside field {field!r}",
                                 position=node.pos, expected="a value after the field name")
            return self.convert(node.expr, node.name, depth)
        if isinstance(node, (lt.Group, lt.FieldGroup)):
            return self.convert(node.expr, field, depth + 1)
        if isinstance(node, (lt.AndOperation, lt.UnknownOperation)):
            _no_mix(node, lt.OrOperation)
            return And(tuple(self.convert(c, field, depth + 1) for c in node.children))
        if isinstance(node, lt.OrOperation):
            _no_mix(node, lt.AndOperation)
            return Or(tuple(self.convert(c, field, depth + 1) for c in node.children))
        if isinstance(node, (lt.Not, lt.Prohibit)):
            return Not(self.convert(node.a, field, depth + 1))
        if isinstance(node, lt.Plus):
            return self.convert(node.a, field, depth + 1)
        if isinstance(node, lt.Boost):
            return self.convert(node.expr, field, depth)
        self._count(node)
        if isinstance(node, lt.Phrase):
            value = _unescape(node.value[1:-1])
            if field is not None and _kind(field) == "ip":
                return self._ip(field, value, node.pos)
            if field is not None:
                self._check(field, value, node.pos)
            return Phrase(field, value)
        if isinstance(node, lt.Word):
            return self._word(node, field)
        if isinstance(node, lt.Range):
            return self._range(field, node.low, node.high, node.include_low, node.include_high, node.pos)
        if isinstance(node, lt.From):
            return self._range(field, node.a, None, node.include, True, node.pos)
        if isinstance(node, lt.To):
            return self._range(field, None, node.a, True, node.include, node.pos)
        kind = type(node).__name__.lower()
        raise QueryError(f"{kind} queries are not supported", position=getattr(node, "pos", None),
                         expected="a term, wildcard, phrase, range or CIDR")

    def _count(self, node: lt.Item) -> None:
        self.clauses += 1
        if self.clauses > MAX_CLAUSES:
            raise QueryError(f"the query has more than {MAX_CLAUSES} terms", position=node.pos,
                             expected="fewer terms (split the search, or use bulk IOC search)")

    def _word(self, node: lt.Word, field: str | None) -> Node:
        raw = self.bare.get(node.pos, node.value)
        pos = node.pos
        if raw == "*":
            return Exists(field) if field else MatchAll()
        parts = _wildcard_parts(raw)
        if any(p is ANY or p is ONE for p in parts):
            signs = sum(1 for p in parts if p is ANY or p is ONE)
            if signs > MAX_WILDCARD_SIGNS:
                raise QueryError(f"a wildcard term may hold at most {MAX_WILDCARD_SIGNS} '*' or '?'",
                                 position=pos, expected="a shorter pattern")
            self.wildcards += 1
            if self.wildcards > MAX_WILDCARDS:
                raise QueryError(f"the query has more than {MAX_WILDCARDS} wildcard terms", position=pos,
                                 expected="fewer wildcards, or exact values")
            if field is not None and (kind := _kind(field)) not in (None, "keyword"):
                raise QueryError(f"wildcards work on text fields; {field} is a {kind} field"
                                 + (" (use a CIDR such as 10.0.0.0/8)" if kind == "ip" else
                                    " (use a range such as [1 TO 100])"), position=pos,
                                 expected="an exact value or a range")
            return Wildcard(field, tuple(parts))
        value = "".join(parts)
        if field is not None and _kind(field) == "ip":
            return self._ip(field, value, pos)
        if field is not None:
            self._check(field, value, pos)
        return Term(field, value)

    def _ip(self, field: str, value: str, pos: int) -> Node:
        if "/" not in value:
            self._check(field, value, pos)
            return Term(field, value)
        try:
            return Cidr(field, values.network(value, field))
        except QueryError as exc:
            raise _at(exc, pos) from None

    def _check(self, field: str, value: str, pos: int) -> None:
        """A value of a number, time or IP field must be one, where it was typed."""
        kind = _kind(field)
        try:
            if kind == "int":
                values.whole_number(value, field)
            elif kind == "date":
                values.time_span(value, field)
            elif kind == "ip":
                values.ip_address(value, field)
        except QueryError as exc:
            raise _at(exc, pos) from None

    def _range(self, field, low, high, inc_low, inc_high, pos) -> Node:
        if field is None:
            raise QueryError("a range needs a field, as in flow.bytes_toserver:[1000 TO *]",
                             position=pos, expected="field:[low TO high]")
        kind = _kind(field)
        if kind == "keyword":
            raise QueryError(f"ranges work on number, time and IP fields; {field} is a text field",
                             position=pos, expected="an exact value or a wildcard")

        def bound(v: lt.Item | None) -> str | None:
            if v is None:
                return None
            if isinstance(v, lt.Prohibit) and isinstance(v.a, lt.Word):  # a negative number: -5
                s = "-" + _unescape(v.a.value)
            elif isinstance(v, (lt.Word, lt.Phrase)):
                s = _unescape(v.value[1:-1] if isinstance(v, lt.Phrase) else self.bare.get(v.pos, v.value))
            else:
                raise QueryError("a range's ends are values or *", position=v.pos, expected="[low TO high]")
            if s == "*":
                return None
            self._check(field, s, v.pos)
            return s

        return Range(field, bound(low), bound(high), bool(inc_low), bool(inc_high))


def _wildcard_parts(raw: str) -> list:
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
    return parts


def _no_mix(node: lt.Item, other: type[lt.Item]) -> None:
    for child in node.children:
        if isinstance(child, other):
            raise QueryError("the query mixes AND and OR at one level: add parentheses to say which binds first",
                             position=child.pos + child.size,
                             expected="parentheses around the AND or the OR part")


def _kind(name: str) -> str | None:
    """The kind of a catalogue field or alias (aliases group fields of one kind); None outside it."""
    fs = catalog.resolve(name)
    return fs[0].kind if fs and all(f.kind == fs[0].kind for f in fs) else None


def _at(exc: QueryError, pos: int | None) -> QueryError:
    exc.position = pos
    return exc


def _unescape(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s)
