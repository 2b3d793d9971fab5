"""The stores as one viewer sees them: the database and the event index, each read answered as if
the captures the viewer may not see (`hidden`, from auth/visibility.py) were not stored. The
service's view for a principal (`PacketTotal.as_`) reads through these and nothing else, so every
read (pages, API, search and its counts, pivots and their totals, similarity scores, files,
labels, downloads) is scoped in this one place. Writes pass through unchanged."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

from ..auth import visibility
from ..errors import NotFound
from ..listing import CaptureFilter
from ..query.nodes import And, Captures, MatchAll, Node, Not
from .db import Database, like_regex
from .listing import contains
from .events.base import CaptureHits, EventStore, Page, TopValues

# reads of one capture's rows, by its id as the first argument: a hidden one is not found
PER_CAPTURE = ("capture_files", "capture_observables", "top_observables", "certs_of", "chains_of", "netbios_of",
               "ndpi_flows_of", "ndpi_overview", "capture_intel", "capture_hunts")
# reads answering capture id -> something: hidden keys dropped
BY_CAPTURE = ("intel_feeds_of", "uploads_in")


class ScopedDatabase:
    def __init__(self, db: Database, hidden: frozenset[str], me: str | None,
                 groups: frozenset[str] = visibility.NO_GROUPS):
        self._db, self.hidden, self.me, self.groups = db, hidden, me, groups

    def __getattr__(self, name: str):
        found = getattr(self._db, name)
        if name in PER_CAPTURE:
            def one(capture_id, *args, **kw):
                self._check(capture_id)
                return found(capture_id, *args, **kw)
            return one
        if name in BY_CAPTURE:
            return lambda ids, *args, **kw: {k: v for k, v in found(ids, *args, **kw).items() if k not in self.hidden}
        return found

    def _check(self, capture_id: str) -> None:
        if capture_id in self.hidden:
            raise NotFound(f"no capture {capture_id[:80]!r}")

    def _visible(self, rows: list[dict], key: str = "capture_id") -> list[dict]:
        """Rows of visible captures, each with the name and date of the upload the viewer sees
        (a capture first uploaded privately by someone else keeps that name from them)."""
        rows = [r for r in rows if r[key] not in self.hidden]
        ups = self._db.uploads_in({r[key] for r in rows})
        out = []
        for r in rows:
            shown = visibility.shown_upload(ups.get(r[key], []), self.me, self.groups)
            if shown is not None:
                r = {**r, **({"name": shown["name"] or "capture"} if "name" in r else {}),
                     **({"submitted_at": shown["submitted_at"]} if "submitted_at" in r else {})}
            out.append(r)
        return out

    # captures
    def get_capture(self, capture_id: str) -> dict:
        self._check(capture_id)
        return self._visible([self._db.get_capture(capture_id)], "id")[0]

    def resolve(self, ref: str) -> dict:
        row = self._db.resolve(ref)
        self._check(row["id"])
        return self._visible([row], "id")[0]

    def captures_in(self, ids: Iterable[str]) -> dict[str, dict]:
        return {r["id"]: r for r in self._visible(list(self._db.captures_in(ids).values()), "id")}

    def capture_names(self, ids: Iterable[str]) -> dict[str, str]:
        return {cid: r["name"] for cid, r in self.captures_in(ids).items()}

    def submitted(self, ids: Iterable[str]):
        return {cid: r["submitted_at"] for cid, r in self.captures_in(ids).items()}

    def named(self, value: str, like: bool) -> set[str]:
        """Visible captures one of whose uploads the viewer may see is named so (a hidden upload's
        name reveals nothing); a capture with no upload row by its own name."""
        wanted = like_regex(value.lower()) if like else None
        found = self._db.named_by_any(value, like) - self.hidden
        ups, own = self._db.uploads_in(found), self._db.captures_in(found)
        return {cid for cid in found
                if any((wanted.fullmatch(n.lower()) if wanted else n.lower() == value.lower())
                       for n in (visibility.seen_names(ups[cid], self.me, self.groups) if ups.get(cid)
                                 else [own[cid]["name"]] if cid in own else []))}

    def find_captures(self, f: CaptureFilter, limit: int = 50, offset: int = 0) -> tuple[int, list[dict]]:
        hidden = f.hidden | self.hidden
        if f.text:  # by the names the viewer may see, not the first upload's
            named = frozenset(self.named(contains(f.text), True))
            f = dataclasses.replace(f, text=None, only=named if f.only is None else named & f.only)
        if f.label:  # a capture labelled so only by an author whose upload the viewer may not see
            kinds = [f.label_kind] if f.label_kind else None
            hidden |= self._db.labelled(kinds, f.label, False) - self.labelled(kinds, f.label, False)
        total, rows = self._db.find_captures(dataclasses.replace(f, hidden=hidden), limit, offset)
        return total, self._visible(rows, "id")

    def list_captures(self, status: str | None = None, limit: int = 100, offset: int = 0) -> list[dict]:
        return self.find_captures(CaptureFilter(status=status), limit, offset)[1]

    def count_captures(self, status: str | None = None) -> int:
        return self.find_captures(CaptureFilter(status=status), 0)[0]

    # observables across captures: counts over the visible captures only
    def value_counts(self, values: Iterable[str]) -> dict[str, int]:
        every = self._db.value_counts(values)
        unseen = self._db.counted_in(every, self.hidden) if self.hidden and every else {}
        return {v: n - unseen.get(v, 0) for v, n in every.items() if n > unseen.get(v, 0)}

    def holder_count(self, values: Iterable[str]) -> int:
        values = list(values)
        return self._db.holder_count(values) - len(self._db.holders_among(values, self.hidden))

    def holders(self, values: Iterable[str], exclude: str | None = None,
                per_value: int | None = None) -> list[tuple[str, str]]:
        return [(c, v) for c, v in self._db.holders(values, exclude, per_value) if c not in self.hidden]

    def observable_hits(self, values: Iterable[str], captures_limit: int = 200) -> list[dict]:
        return self._visible(self._db.observable_hits(values, captures_limit))

    def co_occurring(self, capture_ids: list[str], *args, **kw) -> list[dict]:
        return self._db.co_occurring([c for c in capture_ids if c not in self.hidden], *args, **kw)

    # carved files, hunts
    def files_by_hash(self, sha256: str, limit: int = 200) -> list[dict]:
        return self._visible(self._db.files_by_hash(sha256, limit))

    def file_sightings(self, capture_id: str | None = None, sha256: str | None = None,
                       limit: int = 10_000) -> list[dict]:
        if capture_id is not None:
            self._check(capture_id)
        return self._visible(self._db.file_sightings(capture_id, sha256, limit))

    def file_hashes(self, value: str) -> list[str]:
        return [sha for sha in self._db.file_hashes(value) if self.files_by_hash(sha, 1000)]

    def hunt_hits(self, hunt_id: int, limit: int | None = None, offset: int = 0) -> list[dict]:
        return self._visible(self._db.hunt_hits(hunt_id, limit, offset))

    def hunt_totals(self, hunt_id: int) -> list[dict]:
        return self._visible(self._db.hunt_totals(hunt_id))

    def list_hunts(self, limit: int = 100, offset: int = 0) -> list[dict]:
        return self._db.list_hunts(limit, offset, self.hidden)

    def list_feeds(self) -> list[dict]:
        return self._db.list_feeds(self.hidden)

    # labels: of visible captures, and of an author whose upload the viewer may see
    def labelled(self, kinds: Iterable[str] | None, value: str, like: bool) -> set[str]:
        kinds = list(kinds) if kinds else None
        wanted = like_regex(value) if like else None
        return {cid for cid, held in self.labels_of(self._db.labelled(kinds, value, like)).items()
                if any((kinds is None or lb["kind"] in kinds)
                       and (wanted.fullmatch(lb["value_lower"]) if wanted else lb["value_lower"] == value.lower())
                       for lb in held)}

    def labels_of(self, capture_ids: Iterable[str]) -> dict[str, list[dict]]:
        found = {k: v for k, v in self._db.labels_of(capture_ids).items() if k not in self.hidden}
        ups = self._db.uploads_in(k for k, v in found.items() if v)
        return {k: [lb for lb in v if visibility.label_visible(lb, ups.get(k, []), self.me, self.groups)]
                for k, v in found.items()}


class ScopedEvents:
    def __init__(self, events: EventStore, hidden: frozenset[str]):
        self._events, self.hidden = events, hidden

    def __getattr__(self, name: str):
        return getattr(self._events, name)

    def _node(self, query: Node | None) -> Node | None:
        if not self.hidden:
            return query
        return And((query if query is not None else MatchAll(), Not(Captures(self.hidden))))

    def _check(self, capture_id: str | None) -> None:
        if capture_id is not None and capture_id in self.hidden:
            raise NotFound(f"no capture {capture_id[:80]!r}")

    def events(self, capture_id: str, event_type: str | None = None, query: Node | None = None, *args, **kw) -> Page:
        self._check(capture_id)
        return self._events.events(capture_id, event_type, query, *args, **kw)

    def count_by_type(self, capture_id: str) -> dict[str, int]:
        self._check(capture_id)
        return self._events.count_by_type(capture_id)

    def export(self, capture_id: str, event_type: str | None = None, query: Node | None = None) -> Iterator[dict]:
        self._check(capture_id)
        return self._events.export(capture_id, event_type, query)

    def search(self, query: Node | None, limit: int = 50, offset: int = 0) -> Page:
        return self._events.search(self._node(query), limit, offset)

    def search_by_capture(self, query: Node | None, size: int = 100) -> list[CaptureHits]:
        return self._events.search_by_capture(self._node(query), size)

    def hits_by_capture(self, query: Node | None, size: int = 100) -> list[tuple[str, int]]:
        return self._events.hits_by_capture(self._node(query), size)

    def top_values(self, query: Node | None, fields: tuple[str, ...], capture_id: str | None = None,
                   *args, **kw) -> list[TopValues]:
        self._check(capture_id)
        return self._events.top_values(self._node(query) if capture_id is None else query, fields, capture_id,
                                       *args, **kw)
