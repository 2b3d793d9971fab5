"""Top values of a field over the events a query matches (a terms aggregation): pure counting.

Values are keyed as the index holds them, so that `field:"value"` matches exactly the events
counted: keywords lower-cased (shown as first seen), numbers as whole numbers, addresses in
canonical form. An event with a value twice counts once for it, as the index counts documents."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import QueryError
from ..records import values_at
from . import fields as catalog

# events read for a field that has no column (not `fast`); more are not counted (docs/benchmarks.md: the cost)
MAX_SCAN = 20_000         # of a capture's tab, in capture order
MAX_SCAN_SEARCH = 10_000  # of a search across captures, newest first
MAX_VALUES = 100    # values one answer lists
MAX_FIELDS = 8      # fields counted by one request
MAX_SHOWN = 1_000   # characters of a value kept in an answer
_INT_RANGE = range(-(2 ** 63), 2 ** 63)


@dataclass
class Bucket:
    value: str | int
    count: int
    cut: bool = False  # the value is longer than MAX_SHOWN: shown cut, so not a filter


@dataclass
class TopValues:
    field: str
    matched: int    # events the query matched
    counted: int    # of them, those read (all unless `capped`)
    missing: int    # of those read, events without a value
    others: int     # events-with-a-value counted for values not listed (a multi-valued event once per value)
    buckets: list[Bucket]
    capped: bool = False     # more events matched than were read: counts of the first `counted` only
    error_bound: int = 0     # a count may be this much short (a column's per-segment aggregation)


def countable(name: str) -> catalog.Field | None:
    """A catalogue field values can be counted by (times are not: each event has its own)."""
    f = catalog.BY_NAME.get(name)
    return f if f is not None and f.kind != "date" else None


def checked(names: Iterable[str], limit: int) -> tuple[str, ...]:
    """The fields asked for, each one that can be counted (raises QueryError naming one that cannot)."""
    out = tuple(dict.fromkeys(n.strip() for n in names if n.strip()))
    if not out:
        raise QueryError("name a field to count by, such as dns.rrname (see the field list)")
    if len(out) > MAX_FIELDS:
        raise QueryError(f"at most {MAX_FIELDS} fields are counted at once")
    for name in out:
        f = catalog.BY_NAME.get(name)
        if f is None:
            raise QueryError(f"cannot count by {name[:60]!r}: it is not in the field catalogue "
                             "(see /api/v1/fields)", expected="a catalogue field such as dns.rrname")
        if f.kind == "date":
            raise QueryError(f"cannot count by {name}: a time differs from event to event",
                             expected="a keyword, number or address field")
    if not 1 <= limit <= MAX_VALUES:
        raise QueryError(f"the number of values listed goes from 1 to {MAX_VALUES}")
    return out


def keys(rec: dict, f: catalog.Field) -> dict[str | int, str | int]:
    """The distinct values of one event's field as the index keys them -> the value as shown."""
    out: dict[str | int, str | int] = {}
    for v in values_at(rec, f.name):
        if f.kind == "keyword":
            if isinstance(v, (str, int, float)):
                text = v if isinstance(v, str) else str(v)
                out.setdefault(text.lower(), text)
        elif f.kind == "int":
            if type(v) is int and v in _INT_RANGE:
                out.setdefault(v, v)
        elif f.kind == "ip" and isinstance(v, str):
            try:
                ip = canonical_ip(v)
            except ValueError:
                continue
            out.setdefault(ip, ip)
    return out


def canonical_ip(text: str) -> str:
    """As the index holds an address: IPv4 and IPv4-mapped IPv6 are one (raises ValueError)."""
    ip = ipaddress.ip_address(text)
    return str(ip.ipv4_mapped or ip) if isinstance(ip, ipaddress.IPv6Address) else str(ip)


class Tally:
    """Counts of several fields over events read once."""

    def __init__(self, fields: Iterable[catalog.Field]):
        self.fields = list(fields)
        self.counts: dict[str, dict[str | int, int]] = {f.name: {} for f in self.fields}
        self.shown: dict[str, dict[str | int, str | int]] = {f.name: {} for f in self.fields}
        self.missing = dict.fromkeys(self.counts, 0)
        self.read = 0

    def add(self, rec: dict) -> None:
        self.read += 1
        for f in self.fields:
            found = keys(rec, f)
            if not found:
                self.missing[f.name] += 1
                continue
            counts, shown = self.counts[f.name], self.shown[f.name]
            for k, v in found.items():
                counts[k] = counts.get(k, 0) + 1
                if k not in shown:
                    shown[k] = v

    def top(self, name: str, matched: int, limit: int) -> TopValues:
        counts, shown = self.counts[name], self.shown[name]
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
        listed = ranked[:limit]
        return TopValues(name, matched, self.read, self.missing[name],
                         sum(n for _, n in ranked[limit:]),
                         [bucket(shown[k], n) for k, n in listed], capped=self.read < matched)


def bucket(value: str | int, count: int) -> Bucket:
    if isinstance(value, str) and len(value) > MAX_SHOWN:
        return Bucket(value[:MAX_SHOWN], count, cut=True)
    return Bucket(value, count)
