"""Across captures: IOC pivots, bulk look-ups and similar captures, all from the observables
table (no scan of the events, no pairwise comparison of captures). Ranking is pure and separate."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from ..ingest import observables as obs
from ..store.db import Database
from ..store.events.base import EventStore
from . import noise, where
from .nodes import Captures, And, Or, Term

MAX_BULK = 1000
PIVOT_CAPTURES = 200        # captures listed on one pivot page (the newest)
CO_OCCUR_FROM = 25          # newest captures the co-occurrence counts look at
SIMILAR_PROBES = 300        # rarest shared values used to find candidates
BULK_CAPTURES = 100         # captures listed per indicator in a bulk search
# among equally rare values, the more telling kinds are shown first as reasons
TELLING = {k: i for i, k in enumerate(("sha256", "sha1", "md5", "url", "domain", "cert_sha256", "cert_sha1",
                                       "cert_subject", "cert_issuer", "ja3", "ja3s", "ja4", "hassh", "email",
                                       "user_agent", "ip", "community_id"))}
GROUPS = {"md5": "file", "sha1": "file", "sha256": "file", "cert_sha256": "cert", "cert_sha1": "cert",  # one reason
          "cert_subject": "cert", "cert_issuer": "cert", "ja3": "tls", "ja3s": "tls", "ja4": "tls"}    # kind each
# fields every record type carries: where they were seen is counted exactly in the index
EXACT_FIELDS = where.EVERY_TYPE


# similar captures: pure ranking
def weight(df: int, total: int) -> float:
    """Rarity (inverse document frequency): a value in every capture weighs ~0."""
    return math.log((total + 1) / max(df, 1))


@dataclass
class Similar:
    capture_id: str
    score: float                      # shared weight / the capture's own weight, 0..1
    shared: list[dict] = field(default_factory=list)  # the reasons, rarest first


def probes(own: dict[str, str], df: dict[str, int], total: int, limit: int = SIMILAR_PROBES) -> list[str]:
    """Values worth looking up: shared with another capture, not common (in more than 2% of
    captures, they weigh little and would bring most captures in as candidates)."""
    common = max(20, total // 50)
    shared = [v for v in own if 1 < df.get(v, 0) <= common]
    return sorted(shared, key=lambda v: (df[v], v))[:limit]


def rank(own: dict[str, str], df: dict[str, int], total: int, holders: list[tuple[str, str]],
         limit: int = 20, reasons: int = 10, own_weight: float | None = None) -> list[Similar]:
    """Captures ranked by the summed rarity of the values they share with this one; the score is
    that sum over the capture's own total (`own_weight`, default: over `own`)."""
    own_weight = own_weight or sum(weight(df.get(v, 1), total) for v in own) or 1.0
    shared: dict[str, set[str]] = defaultdict(set)
    for cid, value in holders:
        if value in own:
            shared[cid].add(value)
    out = []
    for cid, values in shared.items():
        ranked = sorted(values, key=lambda v: (df[v], TELLING.get(own[v], 99), v))
        score = sum(weight(df[v], total) for v in values) / own_weight
        out.append(Similar(cid, round(score, 4), [
            {"kind": own[v], "value": v, "captures": df[v], "weight": round(weight(df[v], total), 3)}
            for v in _varied(ranked, own, reasons)]))
    out.sort(key=lambda s: (-s.score, s.capture_id))
    return out[:limit]


def _varied(ranked: list[str], kinds: dict[str, str], n: int, per_kind: int = 3) -> list[str]:
    """The first n values, at most per_kind of one kind while others remain (varied reasons)."""
    seen: dict[str, int] = defaultdict(int)
    first: list[str] = []
    rest: list[str] = []
    for v in ranked:
        group = GROUPS.get(kinds[v], kinds[v])
        seen[group] += 1
        (first if seen[group] <= per_kind else rest).append(v)
    return (first + rest)[:n]


def similar(db: Database, capture_id: str, limit: int = 20) -> list[Similar]:
    own: dict[str, str] = {}
    known = noise.broadcasts_of([r["summary"] for r in db.captures_in([capture_id]).values()])
    for r in db.capture_observables(capture_id):
        if not noise.is_noise(r["kind"], r["value"], known):  # flow ids, multicast, ...: shared by chance
            own.setdefault(r["value"], r["kind"])
    if not own:
        return []
    df = db.value_counts(own)
    total = max(db.count_captures("done"), max(df.values(), default=0))
    probe = probes(own, df, total)
    everything = sum(weight(df.get(v, 1), total) for v in own)
    return rank({v: own[v] for v in probe}, df, total, db.holders(probe, exclude=capture_id), limit,
                own_weight=everything)


# pivots
# observables noted under a root that is no event type (so no console tab): nDPI's flows show on
# Connections; NetBIOS names on the Summary (the capture's own link), no tab
NOT_A_TAB = {"ndpi": "flow", "nbns": None}


def pivot(db: Database, events: EventStore, value: str, co_limit: int = 25, co: bool = True) -> dict:
    """Every capture holding an indicator: where it appeared (field, event types), how often,
    first and last seen; and the values that most often appear in the same captures."""
    forms = obs.lookup_forms(value)
    held = db.value_counts(forms)
    rows = db.observable_hits(list(held), PIVOT_CAPTURES) if held else []
    captures: dict[str, dict] = {}
    for r in rows:
        c = captures.get(r["capture_id"])
        if c is None:
            c = captures[r["capture_id"]] = {
                "capture_id": r["capture_id"], "name": r["name"], "submitted_at": r["submitted_at"],
                "count": 0, "first_seen": None, "last_seen": None, "fields": [], "found_in": {}, "labels": []}
        c["count"] += r["count"]
        c["fields"].append({"field": r["field"], "kind": r["kind"], "value": r["value"], "count": r["count"]})
        c["first_seen"] = min(filter(None, (c["first_seen"], r["first_seen"])), default=None)
        c["last_seen"] = max(filter(None, (c["last_seen"], r["last_seen"])), default=None)
    _found_in(events, captures, rows)
    for c in captures.values():  # each event type's tab, filtered to the records holding the value
        c["where"] = {t: where.tab_filter(c["fields"], t) for t in c["found_in"]}
    for cid, labels in db.labels_of(captures).items():
        captures[cid]["labels"] = labels
    matched = sorted(held)
    kinds = sorted({r["kind"] for r in rows})
    total = max(len(captures), held[matched[0]] if len(held) == 1 else db.holder_count(held))
    return {"value": value, "kind": kinds[0] if len(kinds) == 1 else (", ".join(kinds) or obs.ioc_kind(value)),
            "matched": matched, "captures": list(captures.values()), "total_captures": total,
            "truncated": total > len(captures),
            "co_occurring": co_occurring(db, list(captures)[:CO_OCCUR_FROM], matched, co_limit) if co else []}


def co_occurring(db: Database, capture_ids: list[str], skip: list[str], limit: int) -> list[dict]:
    """The values most often in the same captures (the newest CO_OCCUR_FROM holding the IOC),
    with how many captures hold each overall; flow ids, multicast and the like left out (noise.py)."""
    known = noise.broadcasts_of([r["summary"] for r in db.captures_in(capture_ids).values()])
    found = [r for r in db.co_occurring(capture_ids, [*skip, *known], limit * 2, noise.KINDS, noise.IP_PATTERNS)
             if not noise.is_noise(r["kind"], r["value"], known)]
    df = db.value_counts(r["value"] for r in found)
    return sorted(({**r, "df": df.get(r["value"], r["captures"])} for r in found),
                  key=lambda r: (-r["captures"], r["df"], r["value"]))[:limit]


def _found_in(events: EventStore, captures: dict[str, dict], rows: list[dict]) -> None:
    """Event types per capture: the field's own record type (dns.rrname -> dns), or, for
    addresses and community ids that every record type carries, an exact count from the index."""
    exact: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        c = captures.get(r["capture_id"])
        if c is None:
            continue
        if r["field"] in EXACT_FIELDS:
            exact[r["value"]].update(EXACT_FIELDS[r["field"]])
        else:
            root = r["field"].split(".", 1)[0]
            root = NOT_A_TAB.get(root, root)
            if root:
                c["found_in"][root] = c["found_in"].get(root, 0) + r["count"]
    if not exact or not captures:
        return
    terms = tuple(Term(f, v) for v, fs in exact.items() for f in sorted(fs))
    node = And((Captures(frozenset(captures)), Or(terms) if len(terms) > 1 else terms[0]))
    for hit in events.search_by_capture(node, size=len(captures)):
        captures[hit.capture]["found_in"].update(hit.found_in)


def bulk(db: Database, values: list[str]) -> list[dict]:
    """Up to MAX_BULK indicators at once: how many captures hold each, and up to BULK_CAPTURES
    of them (the pivot page of each lists them all, newest first)."""
    wanted = list(dict.fromkeys(v.strip() for v in values if v.strip()))[:MAX_BULK]
    form_of: dict[str, list[str]] = defaultdict(list)
    for v in wanted:
        for f in obs.lookup_forms(v):
            form_of[f].append(v)
    counts = db.value_counts(form_of)
    per: dict[str, dict[str, None]] = {v: {} for v in wanted}
    for cid, form in db.holders(list(counts), per_value=BULK_CAPTURES):
        for v in form_of[form]:
            per[v][cid] = None
    names = db.capture_names({c for p in per.values() for c in p})
    out = []
    for v in wanted:
        forms = [f for f in obs.lookup_forms(v) if f in counts]
        total = counts[forms[0]] if len(forms) == 1 else db.holder_count(forms) if forms else 0
        caps = sorted(per[v], reverse=True)
        out.append({"value": v, "kind": obs.ioc_kind(v), "total_captures": max(total, len(caps)),
                    "captures": [{"capture_id": c, "name": names.get(c)} for c in caps]})
    return out
