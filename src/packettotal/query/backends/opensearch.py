"""Node tree -> OpenSearch query DSL (plain dicts, as opensearch-py sends them). One method per
node kind; values escaped here, nowhere else. Field paths follow store/events/opensearch_mapping.py:
catalogue fields under `c.`, the free text in `text`, the other EVE members in the flat object `f`."""

from __future__ import annotations

import datetime as dt

from ...errors import QueryError
from .. import fields as catalog, values
from ..nodes import ANY, And, Captures, Cidr, Exists, MatchAll, Not, Or, Phrase, Range, Term, Wildcard
from .base import OutsideCatalogue, Translator
from .tantivy import tokens  # the same words as the index's analyzer keeps (opensearch_mapping.WORDS)

Dsl = dict
TEXT_FIELD = "text"
FLAT_FIELD = "f"
CAPTURE_FIELD = "capture"
MATCH_NONE: Dsl = {"bool": {"must_not": [{"match_all": {}}]}}


def path(f: catalog.Field) -> str:
    return "c." + f.name


def iso(t: dt.datetime, up: bool = False) -> str:
    """To the millisecond, as the index keeps times: down, or `up` for an excluded upper bound (so
    that the span of one instant still holds the millisecond it falls in)."""
    if up and t.microsecond % 1000:
        t += dt.timedelta(microseconds=1000 - t.microsecond % 1000)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def wildcard_pattern(node: Wildcard) -> str:
    """The wildcard query's own syntax: literal `*`, `?` and `\\` escaped, lower-cased as the index is."""
    out = []
    for p in node.parts:
        if isinstance(p, str):
            out.append(p.lower().replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?"))
        else:
            out.append("*" if p is ANY else "?")
    return "".join(out)


def _bounds(low: object, high: object, include_low: bool, include_high: bool) -> dict:
    out = {}
    if low is not None:
        out["gte" if include_low else "gt"] = low
    if high is not None:
        out["lte" if include_high else "lt"] = high
    return out


class OpenSearchTranslator(Translator[Dsl]):
    def any_of(self, queries: list[Dsl]) -> Dsl:
        return {"bool": {"should": queries, "minimum_should_match": 1}}

    # composite nodes
    def convert_matchall(self, node: MatchAll) -> Dsl:
        return {"match_all": {}}

    def convert_captures(self, node: Captures) -> Dsl:
        return {"terms": {CAPTURE_FIELD: sorted(node.ids)}} if node.ids else MATCH_NONE

    def convert_and(self, node: And) -> Dsl:
        must = [self.translate(c) for c in node.children if not isinstance(c, Not)]
        must_not = [self.translate(c.child) for c in node.children if isinstance(c, Not)]
        return {"bool": {k: v for k, v in (("must", must), ("must_not", must_not)) if v}}

    def convert_or(self, node: Or) -> Dsl:
        return self.any_of([self.translate(c) for c in node.children])

    def convert_not(self, node: Not) -> Dsl:
        return {"bool": {"must_not": [self.translate(node.child)]}}

    # leaves: each expands aliases, then builds one query per catalogue field
    def convert_term(self, node: Term) -> Dsl:
        if node.field is None:
            return self._free_text(node.value, f"{node.value!r} has no letters or digits to search for")
        if node.field == CAPTURE_FIELD:
            return {"term": {CAPTURE_FIELD: node.value.strip().lower()}}
        try:
            return self.each_field(node.field, lambda f: self._exact(f, node.value))
        except OutsideCatalogue:
            return {"term": {f"{FLAT_FIELD}.{node.field}": node.value.lower()}}

    def convert_phrase(self, node: Phrase) -> Dsl:
        if node.field is None:
            return self._free_text(node.value, f"the phrase {node.value!r} has no words to search for")
        return self.convert_term(Term(node.field, node.value))

    def convert_wildcard(self, node: Wildcard) -> Dsl:
        pattern = wildcard_pattern(node)
        if node.field is None:
            return {"wildcard": {TEXT_FIELD: {"value": pattern}}}

        def build(f: catalog.Field) -> Dsl:
            if f.kind != "keyword":
                raise QueryError(f"wildcards work on text fields; {f.name} is a {f.kind} field"
                                 + (" (use a CIDR such as 10.0.0.0/8)" if f.kind == "ip" else
                                    " (use a range such as [1 TO 100])"))
            return {"wildcard": {path(f): {"value": pattern}}}

        try:
            return self.each_field(node.field, build)
        except OutsideCatalogue:
            raise QueryError(f"wildcards need a field from the catalogue; {node.field!r} is not in it "
                             "(see the field list, or search it with an exact value)") from None

    def convert_range(self, node: Range) -> Dsl:
        def build(f: catalog.Field) -> Dsl:
            if f.kind == "int":
                lo = values.whole_number(node.low, f.name) if node.low is not None else None
                hi = values.whole_number(node.high, f.name) if node.high is not None else None
                return {"range": {path(f): _bounds(lo, hi, node.include_low, node.include_high)}}
            if f.kind == "date":
                since = values.time_span(node.low, f.name)[0] if node.low else None
                hi_span = values.time_span(node.high, f.name) if node.high else None
                until = (hi_span[1] if node.include_high else hi_span[0]) if hi_span else None
                return {"range": {path(f): {**_bounds(since and iso(since), until and iso(until, up=True),
                                                      node.include_low, False),
                                            "format": "strict_date_optional_time"}}}
            if f.kind == "ip":
                first = values.ip_address(node.low, f.name) if node.low else None
                last = values.ip_address(node.high, f.name) if node.high else None
                return {"range": {path(f): _bounds(first, last, node.include_low, node.include_high)}}
            raise QueryError(f"ranges work on number, time and IP fields; {f.name} is a text field")

        try:
            return self.each_field(node.field, build)
        except OutsideCatalogue:
            raise QueryError(f"ranges need a field from the catalogue; {node.field!r} is not in it") from None

    def convert_cidr(self, node: Cidr) -> Dsl:
        return self.each_field(node.field, lambda f: {"term": {path(f): str(node.network)}})  # ip fields take CIDRs

    def convert_exists(self, node: Exists) -> Dsl:
        try:
            return self.each_field(node.field, lambda f: {"exists": {"field": path(f)}})
        except OutsideCatalogue:  # as the embedded index: fields outside the catalogue match values only
            raise QueryError(f"{node.field}:* needs a field from the catalogue; {node.field!r} is not in it "
                             "(fields outside it match exact values)") from None

    # helpers
    def _exact(self, f: catalog.Field, value: str) -> Dsl:
        if f.kind == "keyword":
            return {"term": {path(f): value.lower()}}
        if f.kind == "int":
            return {"term": {path(f): values.whole_number(value, f.name)}}
        if f.kind == "ip":
            return {"term": {path(f): values.ip_address(value, f.name)}}
        start, end = values.time_span(value, f.name)
        return {"range": {path(f): {"gte": iso(start), "lt": iso(end, up=True), "format": "strict_date_optional_time"}}}

    def _free_text(self, value: str, empty: str) -> Dsl:
        toks = tokens(value)
        if not toks:
            raise QueryError(empty)
        if len(toks) == 1:
            return {"term": {TEXT_FIELD: toks[0]}}
        return {"match_phrase": {TEXT_FIELD: " ".join(toks)}}
