"""The OpenSearch event store (opensearch-py, the `opensearch` extra): one index per instance,
created from the template of opensearch_mapping.py. Indexing is idempotent per capture (document
ids `capture:seq`, then the capture's documents past its last one deleted); `commit` refreshes,
so what was written becomes searchable. Captures the caller hides are left out of every read
until it reveals them, as in the embedded store. Queries are bounded by the client's request
timeout (the `query_seconds` setting), which answers QueryTimeout as the embedded budget does."""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from opensearchpy import ConnectionTimeout, OpenSearch, helpers
from opensearchpy.serializer import JSONSerializer

from ...errors import ConfigError, QueryError, QueryTimeout
from ...query import fields as catalog
from ...query.topvalues import TopValues, bucket, canonical_ip, countable
from . import opensearch_requests as req
from .base import CaptureHits, Page, paged_export
from .opensearch_mapping import template

DEFAULT_INDEX = "packettotal-events"
CHUNK = 500  # documents per bulk request
PAGE = req.MAX_WINDOW
SORTABLE = frozenset({"seq"} | {f.name for f in catalog.CATALOG if f.fast})
_FLAGS = {"verify_certs", "ssl_show_warn"}
_PATHS = {"ca_certs", "client_cert", "client_key"}


class OrjsonSerializer(JSONSerializer):
    """The client's JSON by orjson: 12x faster than its own on EVE documents (docs/benchmarks.md)."""

    def dumps(self, data: Any) -> str:
        return data if isinstance(data, str) else orjson.dumps(data).decode()

    def loads(self, s: str) -> Any:
        return orjson.loads(s)


def connection(url: str) -> tuple[dict, str]:
    """`https://user:password@host:9200/index?ca_certs=/path&verify_certs=false` -> the client's
    keyword arguments and the index name (default packettotal-events)."""
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ConfigError(f"events_url: an OpenSearch URL is http(s)://[user:password@]host[:port][/index], "
                          f"not {url[:80]!r}")
    kw: dict[str, Any] = {"hosts": [{"host": u.hostname, "port": u.port or 9200}], "use_ssl": u.scheme == "https"}
    if u.username:
        kw["http_auth"] = (urllib.parse.unquote(u.username), urllib.parse.unquote(u.password or ""))
    for name, value in urllib.parse.parse_qsl(u.query):
        if name in _FLAGS:
            kw[name] = value.lower() not in ("0", "false", "no", "off")
        elif name in _PATHS:
            kw[name] = value
        else:
            raise ConfigError(f"events_url: unknown option {name[:40]!r} (known: {', '.join(sorted(_FLAGS | _PATHS))})")
    return kw, u.path.strip("/") or DEFAULT_INDEX


class OpenSearchEventStore:
    def __init__(self, url: str, query_seconds: float | None = None, client: OpenSearch | None = None):
        kw, self.index = connection(url)
        self.client = client or OpenSearch(**kw, timeout=query_seconds or 60, serializer=OrjsonSerializer())
        self._hidden: frozenset[str] = frozenset()
        self.client.indices.put_index_template(name=self.index, body=template(self.index))
        if not self.client.indices.exists(index=self.index):
            self.client.indices.create(index=self.index, params={"ignore": 400})  # another node may race us

    # writes
    def index_capture(self, capture_id: str, records: Iterable[dict]) -> int:
        n = 0

        def actions() -> Iterator[dict]:
            nonlocal n
            for n, rec in enumerate(records, 1):
                yield {"_index": self.index, "_id": req.doc_id(capture_id, n),
                       "_source": req.document(capture_id, n, rec)}

        try:
            for _ok, _item in helpers.streaming_bulk(self.client, actions(), chunk_size=CHUNK):
                pass
        except BaseException:  # undo this capture only
            self._delete({"term": {"capture": capture_id}})
            raise
        # a capture indexed again with fewer events: its former tail goes
        self._delete({"bool": {"must": [{"term": {"capture": capture_id}}, {"range": {"seq": {"gt": n}}}]}})
        return n

    def _delete(self, q: dict) -> None:
        self.client.delete_by_query(index=self.index, body={"query": q}, params={"conflicts": "proceed",
                                                                                  "refresh": "true"})

    def commit(self) -> None:
        self.client.indices.refresh(index=self.index)

    def claim(self) -> None:
        """Nothing to take: the server serves any number of writers."""

    def delete_captures(self, capture_ids: Iterable[str]) -> None:
        """Deleted now (the embedded store waits for the next commit)."""
        if ids := sorted(set(capture_ids)):
            self._delete({"terms": {"capture": ids}})

    def hide(self, capture_ids: Iterable[str]) -> None:
        self._hidden = self._hidden | frozenset(capture_ids)

    def reveal(self, capture_ids: Iterable[str]) -> None:
        self._hidden = self._hidden - frozenset(capture_ids)

    # reads
    def _search(self, body: dict) -> dict:
        try:
            return self.client.search(index=self.index, body=body)
        except ConnectionTimeout:
            raise QueryTimeout("the query ran past its time limit (setting query_seconds): narrow it") from None

    def _page(self, body: dict) -> Page:
        if body["from"] + body["size"] > req.MAX_WINDOW:
            raise QueryError(f"pages deeper than {req.MAX_WINDOW:,} events are not served by OpenSearch: narrow the "
                             "query, or page a capture's events with a cursor in capture order")
        found = self._search(body)["hits"]
        events = [{"capture": h["_source"]["capture"], "seq": h["_source"]["seq"], "event": h["_source"]["event"]}
                  for h in found["hits"]]
        return Page(found["total"]["value"], events)

    def documents(self, capture_ids: Iterable[str]) -> dict[str, int]:
        ids = sorted(set(capture_ids))
        if not ids:
            return {}
        found = self._search(req.by_capture({"terms": {"capture": ids}}, len(ids), types=False))
        return {b["key"]: b["doc_count"] for b in found["aggregations"]["c"]["buckets"]}

    def events(self, capture_id: str, event_type: str | None = None, query=None, limit: int = 50, offset: int = 0,
               sort: str | None = None, descending: bool = False, after: int | None = None) -> Page:
        if sort is not None and sort not in SORTABLE:
            raise QueryError(f"cannot sort by {sort!r}; sortable fields: {', '.join(sorted(SORTABLE))}")
        q = req.query(query, self._hidden, capture_id, event_type)
        if after is None:
            return self._page(req.page(q, limit, offset, sort or "seq", descending))
        page = self._page(req.page(req.after(q, after), limit, offset, sort or "seq", descending))
        page.total = self.client.count(index=self.index, body={"query": q})["count"]  # all matches, not those left
        return page

    def search(self, query, limit: int = 50, offset: int = 0) -> Page:
        return self._page(req.page(req.query(query, self._hidden), limit, offset))

    def search_by_capture(self, query, size: int = 100) -> list[CaptureHits]:
        found = self._search(req.by_capture(req.query(query, self._hidden), size, types=True))
        return [CaptureHits(b["key"], b["doc_count"], {t["key"]: t["doc_count"] for t in b["t"]["buckets"]})
                for b in found["aggregations"]["c"]["buckets"]]

    def hits_by_capture(self, query, size: int = 100) -> list[tuple[str, int]]:
        found = self._search(req.by_capture(req.query(query, self._hidden), size, types=False))
        return [(b["key"], b["doc_count"]) for b in found["aggregations"]["c"]["buckets"]]

    def count_by_type(self, capture_id: str) -> dict[str, int]:
        found = self._search(req.count_by_type(req.query(None, self._hidden, capture_id)))
        return {b["key"]: b["doc_count"] for b in found["aggregations"]["t"]["buckets"]}

    def top_values(self, query, fields: tuple[str, ...], capture_id: str | None = None,
                   event_type: str | None = None, limit: int = 10, scan: int | None = None) -> list[TopValues]:
        """Exact over every matching event (`scan` is not needed: every field has doc values);
        keyword values are shown as the index keys them, lower-cased."""
        wanted = [f for f in (countable(n) for n in fields) if f is not None]
        if not wanted:
            return []
        found = self._search(req.top_values(req.query(query, self._hidden, capture_id, event_type), wanted, limit))
        matched, aggs = found["hits"]["total"]["value"], found["aggregations"]
        out = []
        for i, f in enumerate(wanted):
            terms = aggs[f"t{i}"]
            out.append(TopValues(f.name, matched, matched, aggs[f"m{i}"]["doc_count"], terms["sum_other_doc_count"],
                                 [bucket(_key(f, b), b["doc_count"]) for b in terms["buckets"]],
                                 error_bound=terms.get("doc_count_error_upper_bound", 0)))
        return out

    def export(self, capture_id: str, event_type: str | None = None, query=None) -> Iterator[dict]:
        return paged_export(self, capture_id, event_type, query, PAGE)

    def one_budget(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()  # each request has the client's timeout

    def close(self) -> None:
        self.client.close()


def _key(f: catalog.Field, b: dict) -> str | int:
    if f.kind == "ip":
        return canonical_ip(str(b["key"]))
    return int(b["key"]) if f.kind == "int" else str(b["key"])
