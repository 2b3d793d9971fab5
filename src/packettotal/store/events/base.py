"""The event-store interface every backend implements, and the pure EVE -> fields mapping."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from ...query import fields as catalog

# Bulky base64/binary members: kept in the stored record, left out of the text index.
NOT_SEARCHED = frozenset({"payload", "packet", "chain", "client_chain", "certificate", "stats"})
MAX_TEXT = 64 * 1024


def values_at(rec: object, path: str) -> list:
    """All scalar values at a dotted path, descending through lists (dns.answers.rdata)."""
    cur = [rec]
    for part in path.split("."):
        nxt = []
        for c in cur:
            if isinstance(c, dict) and part in c:
                v = c[part]
                nxt.extend(v if isinstance(v, list) else [v])
            elif isinstance(c, list):
                for item in c:
                    if isinstance(item, dict) and part in item:
                        v = item[part]
                        nxt.extend(v if isinstance(v, list) else [v])
        cur = nxt
        if not cur:
            return []
    return [v for v in cur if isinstance(v, (str, int, float, bool)) and v is not None]


def searchable(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k not in NOT_SEARCHED}


def text_of(value: object, out: list[str], budget: list[int], key: str = "") -> None:
    if budget[0] <= 0 or key in NOT_SEARCHED:
        return
    if isinstance(value, str):
        out.append(value)
        budget[0] -= len(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            text_of(v, out, budget, k)
    elif isinstance(value, list):
        for v in value:
            text_of(v, out, budget, key)


def full_text(rec: dict) -> str:
    out: list[str] = []
    text_of(rec, out, [MAX_TEXT])
    return "\n".join(out)


def parse_ts(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo else t


def catalogue_values(rec: dict) -> Iterator[tuple[catalog.Field, object]]:
    for f in catalog.CATALOG:
        if f.kind == "date":
            t = parse_ts(rec.get(f.name))
            if t is not None:
                yield f, t
            continue
        for v in values_at(rec, f.name):
            if f.kind == "int":
                if isinstance(v, bool) or not isinstance(v, int) or not -(2 ** 63) <= v < 2 ** 63:
                    continue
            elif f.kind == "keyword":
                v = str(v)
            yield f, v


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
    def index_capture(self, capture_id: str, records: Iterable[dict]) -> int: ...
    def delete_capture(self, capture_id: str) -> None: ...
    def events(self, capture_id: str, event_type: str | None = None, query: object | None = None,
               limit: int = 50, offset: int = 0) -> Page: ...
    def search(self, query: object, limit: int = 50, offset: int = 0) -> Page: ...
    def search_by_capture(self, query: object, size: int = 100) -> list[CaptureHits]: ...
    def export(self, capture_id: str) -> Iterator[dict]: ...
    def close(self) -> None: ...
