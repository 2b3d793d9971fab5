"""Node tree -> tantivy.Query. One method per node kind; values escaped here, nowhere else."""

from __future__ import annotations

import datetime as dt
import re

import tantivy
from tantivy import FieldType, Occur, Query

from ...errors import QueryError
from .. import fields as catalog, values
from ..nodes import And, Captures, Cidr, Exists, MatchAll, Not, Or, Phrase, Range, Term, Wildcard
from .base import OutsideCatalogue, Translator

TEXT_FIELD = "text"
JSON_FIELD = "f"
CAPTURE_FIELD = "capture"
_TOKEN = re.compile(r"[^\W_]+")  # tantivy's default tokenizer: alphanumeric runs, lowercased
_RANGE_TYPES = {"int": FieldType.Integer, "date": FieldType.Date, "ip": FieldType.IpAddr}
_FULL_RANGE: dict[str, tuple[int, int] | tuple[dt.datetime, dt.datetime] | tuple[str, str]] = {
    "int": (values.INT_MIN, values.INT_MAX), "date": (values.TIME_MIN, values.TIME_MAX),
    "ip": (values.IP_MIN, values.IP_MAX)}


def tokens(text: str) -> list[str]:
    return [t for t in (m.group(0).lower() for m in _TOKEN.finditer(text)) if len(t) <= 40]


class TantivyTranslator(Translator[Query]):
    def __init__(self, schema: tantivy.Schema):
        self.schema = schema

    def any_of(self, queries: list[Query]) -> Query:
        return Query.boolean_query([(Occur.Should, q) for q in queries])

    # composite nodes
    def convert_matchall(self, node: MatchAll) -> Query:
        return Query.all_query()

    def convert_captures(self, node: Captures) -> Query:
        if not node.ids:
            return Query.boolean_query([(Occur.MustNot, Query.all_query())])  # matches nothing
        return Query.term_set_query(self.schema, CAPTURE_FIELD, sorted(node.ids))

    def convert_and(self, node: And) -> Query:
        clauses = [(Occur.Must, self.translate(c)) if not isinstance(c, Not)
                   else (Occur.MustNot, self.translate(c.child)) for c in node.children]
        if all(occur == Occur.MustNot for occur, _ in clauses):
            clauses.append((Occur.Must, Query.all_query()))
        return Query.boolean_query(clauses)

    def convert_or(self, node: Or) -> Query:
        return self.any_of([self.translate(c) for c in node.children])

    def convert_not(self, node: Not) -> Query:
        return Query.boolean_query([(Occur.Must, Query.all_query()), (Occur.MustNot, self.translate(node.child))])

    # leaves: each expands aliases, then builds one query per catalogue field
    def convert_term(self, node: Term) -> Query:
        if node.field is None:
            return self._free_text(node.value)
        if node.field == CAPTURE_FIELD:
            return Query.term_query(self.schema, CAPTURE_FIELD, node.value.strip().lower())
        try:
            return self.each_field(node.field, lambda f: self._exact(f, node.value))
        except OutsideCatalogue:
            return self._json_term(node.field, node.value)

    def convert_phrase(self, node: Phrase) -> Query:
        if node.field is None:
            toks = tokens(node.value)
            if not toks:
                raise QueryError(f"the phrase {node.value!r} has no words to search for")
            # [*toks]: a list of the stub's element type, str | tuple[int, str] (lists are invariant)
            return Query.phrase_query(self.schema, TEXT_FIELD, [*toks]) if len(toks) > 1 else \
                Query.term_query(self.schema, TEXT_FIELD, toks[0])
        return self.convert_term(Term(node.field, node.value))

    def convert_wildcard(self, node: Wildcard) -> Query:
        regex = node.regex().lower()
        if node.field is None:
            return Query.regex_query(self.schema, TEXT_FIELD, regex)

        def build(f: catalog.Field) -> Query:
            if f.kind != "keyword":
                raise QueryError(f"wildcards work on text fields; {f.name} is a {f.kind} field"
                                 + (" (use a CIDR such as 10.0.0.0/8)" if f.kind == "ip" else
                                    " (use a range such as [1 TO 100])"))
            return Query.regex_query(self.schema, f.name, regex)

        try:
            return self.each_field(node.field, build)
        except OutsideCatalogue:
            raise QueryError(f"wildcards need a field from the catalogue; {node.field!r} is not in it "
                             "(see the field list, or search it with an exact value)") from None

    def convert_range(self, node: Range) -> Query:
        def build(f: catalog.Field) -> Query:
            if f.kind == "int":
                lo = values.whole_number(node.low, f.name) if node.low is not None else values.INT_MIN
                hi = values.whole_number(node.high, f.name) if node.high is not None else values.INT_MAX
                return Query.range_query(self.schema, f.name, FieldType.Integer, lo, hi,
                                         include_lower=node.include_low, include_upper=node.include_high)
            if f.kind == "date":
                since = values.time_span(node.low, f.name)[0] if node.low else values.TIME_MIN
                hi_span = values.time_span(node.high, f.name) if node.high else None
                until = (hi_span[1] if node.include_high else hi_span[0]) if hi_span else values.TIME_MAX
                return Query.range_query(self.schema, f.name, FieldType.Date, since, until,
                                         include_lower=node.include_low, include_upper=False)
            if f.kind == "ip":
                first = values.ip_address(node.low, f.name) if node.low else values.IP_MIN
                last = values.ip_address(node.high, f.name) if node.high else values.IP_MAX
                return Query.range_query(self.schema, f.name, FieldType.IpAddr, first, last,
                                         include_lower=node.include_low, include_upper=node.include_high,
                                         use_inverted_index=True)
            raise QueryError(f"ranges work on number, time and IP fields; {f.name} is a text field")

        try:
            return self.each_field(node.field, build)
        except OutsideCatalogue:
            raise QueryError(f"ranges need a field from the catalogue; {node.field!r} is not in it") from None

    def convert_cidr(self, node: Cidr) -> Query:
        net = node.network
        # the inverted index answers a network range ~10x faster than scanning the column
        return self.each_field(node.field, lambda f: Query.range_query(
            self.schema, f.name, FieldType.IpAddr, str(net.network_address), str(net.broadcast_address),
            use_inverted_index=True))

    def convert_exists(self, node: Exists) -> Query:
        def build(f: catalog.Field) -> Query:
            if f.fast:
                return Query.exists_query(f.name)
            if f.kind == "keyword":
                return Query.regex_query(self.schema, f.name, ".*")
            return Query.range_query(self.schema, f.name, _RANGE_TYPES[f.kind], *_FULL_RANGE[f.kind])

        try:
            return self.each_field(node.field, build)
        except OutsideCatalogue:  # the generic JSON index keeps values, not which fields a record has
            raise QueryError(f"{node.field}:* needs a field from the catalogue; {node.field!r} is not in it "
                             "(fields outside it match exact values)") from None

    # helpers
    def _exact(self, f: catalog.Field, value: str) -> Query:
        if f.kind == "keyword":
            return Query.term_query(self.schema, f.name, value.lower())
        if f.kind == "int":
            return Query.term_query(self.schema, f.name, values.whole_number(value, f.name))
        if f.kind == "ip":
            return Query.term_query(self.schema, f.name, values.ip_address(value, f.name))
        start, end = values.time_span(value, f.name)
        return Query.range_query(self.schema, f.name, FieldType.Date, start, end, include_upper=False)

    def _json_term(self, field: str, value: str) -> Query:
        path = f"{JSON_FIELD}.{field}"
        qs = [Query.term_query(self.schema, path, value.lower())]
        if re.fullmatch(r"-?\d{1,18}", value):
            qs.append(Query.term_query(self.schema, path, int(value)))
        elif value.lower() in ("true", "false"):
            qs.append(Query.term_query(self.schema, path, value.lower() == "true"))
        return qs[0] if len(qs) == 1 else self.any_of(qs)

    def _free_text(self, value: str) -> Query:
        toks = tokens(value)
        if not toks:
            raise QueryError(f"{value!r} has no letters or digits to search for")
        if len(toks) == 1:
            return Query.term_query(self.schema, TEXT_FIELD, toks[0])
        return Query.phrase_query(self.schema, TEXT_FIELD, [*toks])

