"""Pure builders of what the OpenSearch event store sends: documents, search bodies and the
aggregations of the console, the grouped search, counts, pivots and top values (pinned by
tests/golden/opensearch.txt). The I/O is in opensearch.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from ...query import fields as catalog
from ...query.backends.opensearch import CAPTURE_FIELD, Dsl, OpenSearchTranslator, iso, path
from ...query.nodes import Node
from ...query.topvalues import canonical_ip
from .base import catalogue_values, searchable
from .opensearch_mapping import KEYWORD_CHARS

MAX_WINDOW = 10_000  # OpenSearch's index.max_result_window: offset + limit of one page
TRANSLATOR = OpenSearchTranslator()


def doc_id(capture_id: str, seq: int) -> str:
    return f"{capture_id}:{seq}"


def _lowered(value: Any) -> Any:
    """The flat object's copy: strings lower-cased (as the embedded index's JSON field keeps
    them), strings too long for a term left out."""
    if isinstance(value, dict):
        return {k: _lowered(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lowered(v) for v in value]
    if isinstance(value, str):
        return value.lower() if len(value) <= KEYWORD_CHARS else None
    return value


def _typed(f: catalog.Field, v: Any) -> Any:
    """A catalogue value as the mapping's type takes it; None: it does not fit (left out)."""
    if f.kind == "ip":
        try:
            return canonical_ip(v)
        except ValueError:
            return None
    if f.kind == "date":
        return iso(v) if isinstance(v, dt.datetime) else None
    return v


def document(capture_id: str, seq: int, rec: dict) -> dict:
    plain = searchable(rec)
    fields: dict[str, list] = {}
    for f, v in catalogue_values(rec):
        if (t := _typed(f, v)) is not None:
            fields.setdefault(f.name, []).append(t)
    return {"capture": capture_id, "seq": seq, "event": rec, "text": orjson.dumps(plain).decode(),
            "f": _lowered(plain), "c": fields}


def query(node: Node | None, hidden: frozenset[str] = frozenset(), capture_id: str | None = None,
          event_type: str | None = None) -> Dsl:
    """The node tree scoped to one capture, one event type, and never the hidden captures."""
    must = [TRANSLATOR.translate(node)] if node is not None else []
    if capture_id:
        must.append({"term": {CAPTURE_FIELD: capture_id}})
    if event_type:
        must.append({"term": {path(catalog.BY_NAME["event_type"]): event_type.lower()}})
    if hidden:
        return {"bool": {"must": must or [{"match_all": {}}], "must_not": [{"terms": {CAPTURE_FIELD: sorted(hidden)}}]}}
    if not must:
        return {"match_all": {}}
    return must[0] if len(must) == 1 else {"bool": {"must": must}}


def sort_key(name: str) -> str:
    return "seq" if name == "seq" else path(catalog.BY_NAME[name])


def page(q: Dsl, limit: int, offset: int, sort: str | None = None, descending: bool = False) -> dict:
    body: dict = {"query": q, "size": limit, "from": offset, "track_total_hits": True,
                  "_source": ["capture", "seq", "event"]}
    if sort is not None:
        order = "desc" if descending else "asc"
        body["sort"] = [{sort_key(sort): {"order": order}}] + ([{"seq": {"order": order}}] if sort != "seq" else [])
    return body


def after(q: Dsl, seq: int) -> Dsl:
    return {"bool": {"must": [q], "filter": [{"range": {"seq": {"gt": seq}}}]}}


def by_capture(q: Dsl, size: int, types: bool) -> dict:
    """Matching events per capture (most first), and per event type within each when `types`."""
    agg: dict = {"terms": {"field": CAPTURE_FIELD, "size": size}}
    if types:
        agg["aggs"] = {"t": {"terms": {"field": path(catalog.BY_NAME["event_type"]), "size": 50}}}
    return {"query": q, "size": 0, "track_total_hits": False, "aggs": {"c": agg}}


def count_by_type(q: Dsl) -> dict:
    return {"query": q, "size": 0, "track_total_hits": False,
            "aggs": {"t": {"terms": {"field": path(catalog.BY_NAME["event_type"]), "size": 100}}}}


def top_values(q: Dsl, fields: list[catalog.Field], limit: int) -> dict:
    """Every field's top values over every matching event in one request: all catalogue fields
    have doc values, so none is read record by record as in the embedded index."""
    aggs: dict = {}
    for i, f in enumerate(fields):
        aggs[f"t{i}"] = {"terms": {"field": path(f), "size": limit}}
        aggs[f"m{i}"] = {"missing": {"field": path(f)}}
    return {"query": q, "size": 0, "track_total_hits": True, "aggs": aggs}
