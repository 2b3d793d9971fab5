"""The "top values" panels of the console's tabs and of search: which fields each counts by
default, which it offers, and the answer shaped for a page or the API (each value with its
share and the filter a click applies). Pure data and functions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

from .. import evetypes
from ..errors import QueryError
from ..query import refine
from ..query.topvalues import TopValues, countable

DEFAULTS: dict[str, tuple[str, ...]] = {
    "dns": ("dns.rrname", "dns.rcode"),
    "http": ("http.hostname", "http.status", "http.http_user_agent"),
    "tls": ("tls.sni", "tls.ja3.hash", "tls.ja4", "tls.issuerdn"),
    "flow": ("dest_port", "app_proto"),
    "alert": ("alert.signature",),
    "anomaly": ("anomaly.event", "alert.signature"),
    "fileinfo": ("fileinfo.magic", "fileinfo.filename"),
    "dhcp": ("dhcp.client_mac", "src_ip"),
}
ENDPOINTS = ("src_ip", "dest_ip")  # a tab whose type has no catalogue fields of its own
SEARCH_DEFAULTS = ("event_type", "dest_ip", "dest_port")
_OWN = {t.name: tuple(f.name for f in t.fields if countable(f.name)) for t in evetypes.TYPES}
_COMMON = tuple(f.name for f in evetypes.COMMON.fields if countable(f.name))
# Strange activity lists anomalies and the protocol-event rules' alerts
_TAB_TYPES = {"anomaly": ("anomaly", "alert")}


def defaults(tab: str) -> tuple[str, ...]:
    return DEFAULTS.get(tab) or _OWN.get(tab, ())[:2] or ENDPOINTS


def choices(tab: str | None) -> tuple[str, ...]:
    """The fields a tab's picker offers (its types' and those every record has); None: search, all."""
    if tab is None:
        return _COMMON + tuple(n for names in _OWN.values() for n in names)
    return tuple(dict.fromkeys(_COMMON + tuple(n for t in _TAB_TYPES.get(tab, (tab,)) for n in _OWN.get(t, ()))))


def shaped(top: TopValues, text: str) -> dict:
    """An answer as the API gives it and the pages show it: each value with its share of the
    events read and `filter`, the query `text` narrowed to it (None: no such query can be
    typed, e.g. the value is shown cut)."""
    start = refine.prefix(text)
    values = [{"value": b.value, "count": b.count, "share": b.count / top.counted if top.counted else 0.0,
               "cut": b.cut,
               "filter": None if b.cut or start is None else refine.joined(start, top.field, b.value)}
              for b in top.buckets]
    facts = {k: v for k, v in asdict(top).items() if k != "buckets"}
    return facts | {"exact": not top.capped and top.error_bound == 0, "values": values}


def panel(count: Callable[[tuple[str, ...]], list[TopValues]], fields: tuple[str, ...], text: str) -> dict:
    """What the panel shows: `count(fields)` shaped, or why it could not count."""
    try:
        return {"tops": [shaped(t, text) for t in count(fields)], "error": None}
    except QueryError as exc:
        return {"tops": [], "error": exc.message}
