"""The embedded event store: one tantivy index, queries built from the node tree (never tantivy's
own parser). One writer, serialised by a lock; readers reload after each commit. Captures the
caller hides are left out of every read until it reveals them (the service hides a capture
while it indexes, until it is recorded done: another capture's commit makes its events
durable, not visible)."""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson
import tantivy
from tantivy import Document, Filter, Index, Occur, Order, Query, SchemaBuilder, TextAnalyzerBuilder, Tokenizer

from ...errors import IndexBusy, QueryError
from ...query import fields as catalog
from ...query.backends.tantivy import CAPTURE_FIELD, JSON_FIELD, TEXT_FIELD, TantivyTranslator
from ...query.topvalues import MAX_SCAN, MAX_SCAN_SEARCH, Tally, TopValues, bucket, canonical_ip, countable
from .budget import Budget, costly
from .base import NOT_SEARCHED, CaptureHits, Page, catalogue_values, paged_export, searchable

KEYWORD = "kw"
# tantivy orders by numeric, date and text fast fields, not by IP addresses
SORTABLE = frozenset({"seq"} | {f.name for f in catalog.CATALOG if f.fast and f.kind != "ip"})


_BULKY_KEYS = re.compile(b"|".join(re.escape(f'"{k}":'.encode()) for k in sorted(NOT_SEARCHED)))


def _bulky(raw: bytes) -> bool:
    """May the record hold a bulky member? Looked for in its JSON: a key is always `"name":`,
    a string value never is (its quotes are escaped); a rare false alarm costs one copy."""
    return _BULKY_KEYS.search(raw) is not None


PAGE = 10_000
MAX_OFFSET = 1_000_000  # tantivy collects offset + limit hits: deep offsets cost memory
BATCH = 512  # documents added per writer-lock hold
SEGMENT_TERMS = 10_000  # values each segment ranks for a terms aggregation: beyond, a count may be short


def _column_key(kind: str, key: object) -> str | int:
    if kind == "int":
        return int(key)  # type: ignore[call-overload]  # tantivy answers numbers (as floats, sometimes)
    if kind == "ip":
        return canonical_ip(str(key))
    return str(key)


def build_schema() -> tantivy.Schema:
    sb = SchemaBuilder()
    sb.add_text_field(CAPTURE_FIELD, stored=True, tokenizer_name="raw", fast=True)
    sb.add_integer_field("seq", stored=True, indexed=True, fast=True)
    sb.add_bytes_field("doc", stored=True)
    sb.add_text_field(TEXT_FIELD, stored=False)
    sb.add_json_field(JSON_FIELD, stored=False, tokenizer_name=KEYWORD, fast=False)
    for f in catalog.CATALOG:
        if f.kind == "keyword":
            sb.add_text_field(f.name, stored=False, tokenizer_name=KEYWORD, fast=f.fast)
        elif f.kind == "int":
            sb.add_integer_field(f.name, stored=False, indexed=True, fast=f.fast)
        elif f.kind == "ip":
            sb.add_ip_addr_field(f.name, stored=False, indexed=True, fast=f.fast)
        elif f.kind == "date":
            sb.add_date_field(f.name, stored=False, indexed=True, fast=f.fast)
    return sb.build()


class TantivyEventStore:
    def __init__(self, path: Path, writer_heap: int = 128_000_000, query_seconds: float | None = None):
        """query_seconds: costly queries run in child processes stopped after that long (budget.py)."""
        path.mkdir(parents=True, exist_ok=True)
        self.schema = build_schema()
        self._path = path
        self.index = Index(self.schema, path=str(path))
        analyzer = TextAnalyzerBuilder(Tokenizer.raw()).filter(Filter.lowercase()).build()
        self.index.register_tokenizer(KEYWORD, analyzer)
        self.index.register_fast_field_tokenizer(KEYWORD, analyzer)
        self.translator = TantivyTranslator(self.schema)
        self._writer_heap = writer_heap
        self._writer: tantivy.IndexWriter | None = None
        self._lock = threading.Lock()         # the writer: one operation at a time
        self._commit_lock = threading.Lock()  # one commit at a time
        self._ops = self._committed = 0
        self._budget = Budget(path, query_seconds) if query_seconds else None
        self._hidden: frozenset[str] = frozenset()  # replaced, never changed: readers take it as is
        self._hidden_lock = threading.Lock()

    def one_budget(self) -> contextlib.AbstractContextManager:
        """Costly queries made inside share one time budget."""
        return self._budget.shared() if self._budget is not None else contextlib.nullcontext()

    def _costly(self, query) -> Budget | None:
        """The budget a query runs under, when it is costly and there is one."""
        return self._budget if self._budget is not None and costly(query) else None

    def _w(self) -> tantivy.IndexWriter:
        if self._writer is None:
            try:
                self._writer = self.index.writer(self._writer_heap, 1)
            except ValueError as exc:
                if "LockBusy" not in str(exc):
                    raise
                raise IndexBusy(f"another PacketTotal process (a `packettotal serve`?) is writing the event index "
                                f"in {self._path}: stop it, submit to it with `analyze --server URL`, or point "
                                "PACKETTOTAL_HOME elsewhere") from None
        return self._writer

    def _doc(self, capture_id: str, seq: int, rec: dict) -> Document:
        d = Document()
        d.add_text(CAPTURE_FIELD, capture_id)
        d.add_integer("seq", seq)
        raw = orjson.dumps(rec)
        d.add_bytes("doc", raw)
        text = orjson.dumps(searchable(rec)).decode() if _bulky(raw) else raw.decode()
        d.add_text(TEXT_FIELD, text)  # the default tokenizer drops the JSON punctuation
        d.add_json(JSON_FIELD, text)
        for f, v in catalogue_values(rec):
            kind = f.kind
            if kind == "keyword":
                d.add_text(f.name, v)
            elif kind == "int":
                d.add_integer(f.name, v)
            elif kind == "ip":
                try:
                    d.add_ip_addr(f.name, v)
                except ValueError:
                    pass
            else:
                d.add_date(f.name, v)
        return d

    def hide(self, capture_ids: Iterable[str]) -> None:
        """Leave these captures' events out of every read until `reveal`."""
        with self._hidden_lock:
            self._hidden = self._hidden | frozenset(capture_ids)

    def reveal(self, capture_ids: Iterable[str]) -> None:
        with self._hidden_lock:
            self._hidden = self._hidden - frozenset(capture_ids)

    def hide_only(self, capture_ids: frozenset[str]) -> None:
        """Hide exactly these captures (a query process takes its parent's set)."""
        with self._hidden_lock:
            self._hidden = capture_ids

    def index_capture(self, capture_id: str, records: Iterable[dict]) -> int:
        """Replace a capture's events (idempotent: a retried job never duplicates). Records are
        turned into documents outside the writer lock, so several captures index at once.
        Nothing is durable until `commit()`, which one call makes for all captures added."""
        self._write(lambda w: w.delete_documents_by_term(CAPTURE_FIELD, capture_id))
        n = 0
        batch: list[Document] = []
        try:
            for n, rec in enumerate(records, 1):
                batch.append(self._doc(capture_id, n, rec))
                if len(batch) >= BATCH:
                    self._add(batch)
                    batch = []
            self._add(batch)
        except BaseException:  # undo this capture only: others' pending documents stay
            self._write(lambda w: w.delete_documents_by_term(CAPTURE_FIELD, capture_id))
            raise
        return n

    def claim(self) -> None:
        """Take the writer now rather than at the first write (raises IndexBusy)."""
        with self._lock:
            self._w()

    def _write(self, op) -> None:
        with self._lock:
            op(self._w())
            self._ops += 1

    def _add(self, docs: list[Document]) -> None:
        if docs:
            def add(w):
                for d in docs:
                    w.add_document(d)
            self._write(add)

    def commit(self) -> None:
        """Make every operation made so far durable (at most one commit at a time). A failed
        commit (a full disk) loses every operation not committed yet: tantivy's writer is not
        usable after one, so it is dropped and the next operation opens a new one."""
        with self._lock:
            wanted = self._ops
        with self._commit_lock:
            if self._committed >= wanted:
                return
            with self._lock:
                target = self._ops
                try:
                    self._w().commit()
                except BaseException:
                    self._writer = None
                    raise
                finally:
                    self._committed = target
            self.index.reload()  # before another caller of commit() counts what it committed

    def delete_captures(self, capture_ids: Iterable[str]) -> None:
        """Delete captures' events with the next commit."""
        ids = list(capture_ids)

        def delete(w):
            for cid in ids:
                w.delete_documents_by_term(CAPTURE_FIELD, cid)
        self._write(delete)

    def documents(self, capture_ids: Iterable[str]) -> dict[str, int]:
        """How many committed documents each capture has, hidden or not (captures without any
        are left out)."""
        ids = sorted(set(capture_ids))
        if not ids:
            return {}
        result = self.index.searcher().aggregate(
            Query.term_set_query(self.schema, CAPTURE_FIELD, ids),
            {"c": {"terms": {"field": CAPTURE_FIELD, "size": len(ids)}}})
        return {b["key"]: b["doc_count"] for b in result["c"]["buckets"]}

    def _query(self, query, capture_id: str | None = None, event_type: str | None = None) -> Query:
        clauses = []
        if query is not None:
            clauses.append((Occur.Must, self.translator.translate(query)))
        if capture_id:
            clauses.append((Occur.Must, Query.term_query(self.schema, CAPTURE_FIELD, capture_id)))
        if event_type:
            clauses.append((Occur.Must, Query.term_query(self.schema, "event_type", event_type.lower())))
        if hidden := self._hidden:
            if not clauses:
                clauses.append((Occur.Must, Query.all_query()))
            clauses.append((Occur.MustNot, Query.term_set_query(self.schema, CAPTURE_FIELD, sorted(hidden))))
        if not clauses:
            return Query.all_query()
        return clauses[0][1] if len(clauses) == 1 else Query.boolean_query(clauses)

    def _page(self, q: Query, limit: int, offset: int, order_by: str | None,
              descending: bool = False) -> Page:
        if offset > MAX_OFFSET or limit > MAX_OFFSET:  # tantivy allocates offset + limit up front
            raise QueryError(f"pages deeper than {MAX_OFFSET:,} events are not served: narrow the query, "
                             "or page a capture's events with a cursor in capture order")
        searcher = self.index.searcher()
        order = Order.Desc if descending else Order.Asc
        result = (searcher.search(q, limit, count=True, offset=offset, order_by_field=order_by, order=order)
                  if order_by else searcher.search(q, limit, count=True, offset=offset))
        events = []
        for _score, addr in result.hits:
            doc = searcher.doc(addr)
            rec = orjson.loads(doc["doc"][0])
            events.append({"capture": doc[CAPTURE_FIELD][0], "seq": doc["seq"][0], "event": rec})
        return Page(result.count, events)  # type: ignore[attr-defined]  # the stub lacks SearchResult.count

    def events(self, capture_id: str, event_type: str | None = None, query=None,
               limit: int = 50, offset: int = 0, sort: str | None = None, descending: bool = False,
               after: int | None = None) -> Page:
        """A capture's events in capture order, or sorted by a fast field; `after` is a cursor:
        only events after that sequence number (cheap at any depth, unlike offsets)."""
        if sort is not None and sort not in SORTABLE:
            raise QueryError(f"cannot sort by {sort!r}; sortable fields: {', '.join(sorted(SORTABLE))}")
        if budget := self._costly(query):
            return budget.call(self._hidden, "events", capture_id, event_type, query, limit, offset, sort, descending,
                               after)
        q = self._query(query, capture_id, event_type)
        if after is None:
            return self._page(q, limit, offset, sort or "seq", descending)
        seq = Query.range_query(self.schema, "seq", tantivy.FieldType.Integer, after, None, include_lower=False)
        page = self._page(Query.boolean_query([(Occur.Must, q), (Occur.Must, seq)]), limit, offset,
                          sort or "seq", descending)
        # all matches, not those left (the stub lacks SearchResult.count)
        page.total = self.index.searcher().search(q, 1, count=True).count  # type: ignore[attr-defined]
        return page

    def search(self, query, limit: int = 50, offset: int = 0) -> Page:
        if budget := self._costly(query):
            return budget.call(self._hidden, "search", query, limit, offset)
        return self._page(self._query(query), limit, offset, None)

    def search_by_capture(self, query, size: int = 100) -> list[CaptureHits]:
        if budget := self._costly(query):
            return budget.call(self._hidden, "search_by_capture", query, size)
        aggs = {"c": {"terms": {"field": CAPTURE_FIELD, "size": size},
                      "aggs": {"t": {"terms": {"field": "event_type", "size": 50}}}}}
        result = self.index.searcher().aggregate(self._query(query), aggs)
        return [CaptureHits(b["key"], b["doc_count"], {t["key"]: t["doc_count"] for t in b["t"]["buckets"]})
                for b in result["c"]["buckets"]]

    def hits_by_capture(self, query, size: int = 100) -> list[tuple[str, int]]:
        """(capture, matching events), most first: the cheap half of a grouped search."""
        if budget := self._costly(query):
            return budget.call(self._hidden, "hits_by_capture", query, size)
        result = self.index.searcher().aggregate(
            self._query(query), {"c": {"terms": {"field": CAPTURE_FIELD, "size": size}}})
        return [(b["key"], b["doc_count"]) for b in result["c"]["buckets"]]

    def count_by_type(self, capture_id: str) -> dict[str, int]:
        aggs = {"t": {"terms": {"field": "event_type", "size": 100}}}
        result = self.index.searcher().aggregate(self._query(None, capture_id), aggs)
        return {b["key"]: b["doc_count"] for b in result["t"]["buckets"]}

    def top_values(self, query, fields: tuple[str, ...], capture_id: str | None = None,
                   event_type: str | None = None, limit: int = 10, scan: int | None = None) -> list[TopValues]:
        """The most frequent values of each field over the matching events (topvalues.py); `scan`:
        the most events read for a field without a column (default MAX_SCAN for a capture, else
        MAX_SCAN_SEARCH)."""
        if budget := self._costly(query):
            return budget.call(self._hidden, "top_values", query, fields, capture_id, event_type, limit, scan)
        searcher = self.index.searcher()
        q = self._query(query, capture_id, event_type)
        matched = searcher.search(q, 1, count=True).count  # type: ignore[attr-defined]  # the stub lacks it
        wanted = [f for f in (countable(n) for n in fields) if f is not None]
        out = self._column_tops(searcher, q, [f for f in wanted if f.fast], matched, limit)
        if slow := [f for f in wanted if not f.fast]:
            tally = Tally(slow)
            scan = scan or (MAX_SCAN if capture_id else MAX_SCAN_SEARCH)
            if matched:
                # a capture's first events in capture order; across captures, the newest
                hits = (searcher.search(q, min(scan, matched), order_by_field="seq") if capture_id else
                        searcher.search(q, min(scan, matched), order_by_field="timestamp", order=Order.Desc))
                for _score, addr in hits.hits:
                    tally.add(orjson.loads(searcher.doc(addr)["doc"][0]))
            out |= {f.name: tally.top(f.name, matched, limit) for f in slow}
        return [out[f.name] for f in wanted]

    def _column_tops(self, searcher: tantivy.Searcher, q: Query, fields: list[catalog.Field], matched: int,
                     limit: int) -> dict[str, TopValues]:
        """Fast fields' top values, by tantivy's terms aggregation over every matching event (one
        pass for all of them; a value count each for the events without one: the columns are
        single-valued)."""
        aggs: dict = {}
        for i, f in enumerate(fields):
            aggs[f"t{i}"] = {"terms": {"field": f.name, "size": limit, "segment_size": SEGMENT_TERMS}}
            aggs[f"n{i}"] = {"value_count": {"field": f.name}}
        found = searcher.aggregate(q, aggs) if fields else {}
        out = {}
        for i, f in enumerate(fields):
            terms, valued = found[f"t{i}"], int(found[f"n{i}"]["value"] or 0)
            out[f.name] = TopValues(f.name, matched, matched, matched - valued, terms.get("sum_other_doc_count", 0),
                                    [bucket(_column_key(f.kind, b["key"]), b["doc_count"]) for b in terms["buckets"]],
                                    error_bound=terms.get("doc_count_error_upper_bound", 0))
        return out

    def export(self, capture_id: str, event_type: str | None = None, query=None) -> Iterator[dict]:
        return paged_export(self, capture_id, event_type, query, PAGE)

    def close(self) -> None:
        """Let go of the writer (another process may then write; a later write opens it again)."""
        if self._budget is not None:
            self._budget.close()
        with self._lock:
            if self._writer is not None:
                self._writer.wait_merging_threads()
                self._writer = None
