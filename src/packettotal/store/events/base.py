"""The event-store interface every backend implements, and the pure EVE -> fields mapping."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from contextlib import AbstractContextManager
from typing import Any, Protocol

from ...query import fields as catalog
from ...query.nodes import Node
from ...records import values_at
from ...query.topvalues import TopValues

# Bulky base64/binary members: kept in the stored record, left out of the text index.
NOT_SEARCHED = frozenset({"payload", "packet", "chain", "client_chain", "certificate", "stats"})


def searchable(rec: dict) -> dict:
    """The record less its bulky members (top level, and one level down: tls.chain)."""
    return {k: ({k2: v2 for k2, v2 in v.items() if k2 not in NOT_SEARCHED} if isinstance(v, dict) else v)
            for k, v in rec.items() if k not in NOT_SEARCHED}


def parse_ts(value: object) -> dt.datetime | None:
    return _parse_ts(value) if isinstance(value, str) else None


@functools.lru_cache(maxsize=4096)  # a capture's events share timestamps (flows, bursts)
def _parse_ts(value: str) -> dt.datetime | None:
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo else t


def _plan() -> dict[str, list[tuple[catalog.Field, tuple[str, ...]]]]:
    """root key -> [(field, rest of its path)], so a record is only asked for what it has."""
    out: dict[str, list[tuple[catalog.Field, tuple[str, ...]]]] = {}
    for f in catalog.CATALOG:
        root, *rest = f.name.split(".")
        out.setdefault(root, []).append((f, tuple(rest)))
    return out


_PLAN = _plan()
_INT_RANGE = range(-(2 ** 63), 2 ** 63)


def catalogue_values(rec: dict) -> list[tuple[catalog.Field, Any]]:
    """(field, value) pairs; a value's type follows the field's kind: str (keyword, ip), int, datetime."""
    out: list[tuple[catalog.Field, Any]] = []
    for root in rec.keys() & _PLAN.keys():
        top = rec[root]
        for f, rest in _PLAN[root]:
            if not rest:
                found = top
            elif len(rest) == 1 and isinstance(top, dict):
                found = top.get(rest[0])
                if found is None:
                    continue
            else:
                found = values_at(rec, f.name)
            kind = f.kind
            for v in (found if isinstance(found, list) else (found,)):
                if kind == "keyword":
                    if isinstance(v, str):
                        out.append((f, v))
                    elif isinstance(v, (int, float)):
                        out.append((f, str(v)))
                elif kind == "int":
                    if type(v) is int and v in _INT_RANGE:
                        out.append((f, v))
                elif kind == "ip":
                    if isinstance(v, str):
                        out.append((f, v))
                elif (t := parse_ts(v)) is not None:
                    out.append((f, t))
    return out


@dataclass
class CaptureHits:
    capture: str
    hits: int
    found_in: dict[str, int] = field(default_factory=dict)


@dataclass
class Page:
    total: int
    events: list[dict]


class EventStore(Protocol):
    """What the service asks of an event index. Queries are node trees (query/nodes.py); each
    backend translates them itself. Writes become visible at `commit`."""

    def index_capture(self, capture_id: str, records: Iterable[dict]) -> int: ...
    def commit(self) -> None: ...
    def claim(self) -> None: ...  # take the writer now (raises IndexBusy: another process holds it)
    def delete_captures(self, capture_ids: Iterable[str]) -> None: ...  # with the next commit
    def documents(self, capture_ids: Iterable[str]) -> dict[str, int]: ...  # committed, hidden or not
    def hide(self, capture_ids: Iterable[str]) -> None: ...  # left out of every read until `reveal`
    def reveal(self, capture_ids: Iterable[str]) -> None: ...
    def events(self, capture_id: str, event_type: str | None = None, query: Node | None = None,
               limit: int = 50, offset: int = 0, sort: str | None = None, descending: bool = False,
               after: int | None = None) -> Page: ...
    def search(self, query: Node | None, limit: int = 50, offset: int = 0) -> Page: ...
    def search_by_capture(self, query: Node | None, size: int = 100) -> list[CaptureHits]: ...
    def hits_by_capture(self, query: Node | None, size: int = 100) -> list[tuple[str, int]]: ...
    def count_by_type(self, capture_id: str) -> dict[str, int]: ...
    def top_values(self, query: Node | None, fields: tuple[str, ...], capture_id: str | None = None,
                   event_type: str | None = None, limit: int = 10,
                   scan: int | None = None) -> list[TopValues]: ...
    def export(self, capture_id: str, event_type: str | None = None,
               query: Node | None = None) -> Iterator[dict]: ...
    def one_budget(self) -> AbstractContextManager: ...
    def close(self) -> None: ...


def paged_export(store: EventStore, capture_id: str, event_type: str | None, query: Node | None,
                 page: int) -> Iterator[dict]:
    """A capture's events in capture order, read `page` at a time by the `seq` cursor: what every
    backend's `export` is."""
    after = 0
    while True:
        got = store.events(capture_id, event_type, query, limit=page, after=after)
        for e in got.events:
            yield e["event"]
        if len(got.events) < page:
            return
        after = got.events[-1]["seq"]
