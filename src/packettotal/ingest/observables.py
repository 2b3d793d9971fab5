"""Observables (IOCs) of EVE records: (kind, value, field) triples, normalised for pivoting."""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass

from .. import evetypes
from ..records import values_at

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9.\-]{1,253}\.[A-Za-z]{2,63}")
_HEX = re.compile(r"^[0-9a-f]+$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9_](?:[a-z0-9_\-]{0,61}[a-z0-9_])?\.)+[a-z0-9\-]{1,63}$")
_HASH_KINDS = {32: "md5", 40: "sha1", 64: "sha256"}
MAX_VALUE = 1024


@functools.lru_cache(maxsize=65536)
def norm_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


@functools.lru_cache(maxsize=65536)
def norm_domain(value: str) -> str | None:
    v = value.strip().rstrip(".").lower()
    if ":" in v and v.count(":") == 1:  # host:port
        v = v.split(":")[0]
    if norm_ip(v):
        return None
    return v if _DOMAIN.match(v) else None


def norm_hash(value: str) -> tuple[str, str] | None:
    v = value.strip().lower().replace(":", "")
    kind = _HASH_KINDS.get(len(v))
    return (kind, v) if kind and _HEX.match(v) else None


def norm_email(value: str) -> str | None:
    """`value` as one e-mail address (lower-cased), or None."""
    m = _EMAIL.fullmatch(value.strip())
    return m.group(0).lower() if m else None


def _emails(value: str) -> Iterator[str]:
    for m in _EMAIL.finditer(value):
        yield m.group(0).lower()


def _rules() -> dict[str, list[tuple[str, tuple[str, ...], str]]]:
    """root key -> [(field, rest of its path, kind)] from the declared types: a record is only
    asked for what it has."""
    out: dict[str, list[tuple[str, tuple[str, ...], str]]] = {}
    for t in evetypes.ALL:
        for kind, fs in t.observables.items():
            for f in fs:
                root, *rest = f.split(".")
                out.setdefault(root, []).append((f, tuple(rest), kind))
    return out


_RULES = _rules()
_LOWERED = frozenset({"cert_sha1", "ja3", "ja3s", "hassh"})


def _values(rec: dict, top: object, f: str, rest: tuple[str, ...]) -> list | tuple:
    if not rest:
        found = top
    elif len(rest) == 1 and isinstance(top, dict):  # most fields: one level down
        found = top.get(rest[0])
    else:
        return values_at(rec, f)
    return found if isinstance(found, list) else (found,)


def _url(obj: object, key: str) -> str | None:
    """An HTTP record's URL, made absolute with the record's host (and port) where it is a path."""
    if not isinstance(obj, dict) or not isinstance(obj.get(key), str):
        return None
    url = obj[key]
    host = obj.get("hostname") if isinstance(obj.get("hostname"), str) else None
    if host and url.startswith("/"):
        port = obj.get("http_port")
        netloc = f"{host}:{port}" if port and port not in (80,) else host
        url = f"http://{netloc}{url}"
    return url[:MAX_VALUE]


def extract(rec: dict) -> set[tuple[str, str, str]]:
    """(kind, value, field) for every observable in one EVE record."""
    out = set()
    for root in rec.keys() & _RULES.keys():
        top = rec[root]
        for f, rest, kind in _RULES[root]:
            if kind == "url":  # one per record, built from its siblings
                if len(rest) == 1 and (url := _url(top, rest[0])) is not None:
                    out.add(("url", url, f))
                continue
            for s in _values(rec, top, f, rest):
                if not isinstance(s, str):
                    continue
                if kind == "ip":
                    if ip := norm_ip(s):
                        out.add(("ip", ip, f))
                elif kind == "domain":
                    if d := norm_domain(s):
                        out.add(("domain", d, f))
                elif kind == "hash":
                    if h := norm_hash(s):
                        out.add((h[0], h[1], f))
                elif kind == "email":
                    out.update(("email", e, f) for e in _emails(s))
                elif s:  # text, kept as written
                    out.add((kind, (s.lower() if kind in _LOWERED else s)[:MAX_VALUE], f))
    return out


_JA4 = re.compile(r"^[tqd][0-9a-z]{2}[di][0-9]{4}[0-9a-z]{2}_[0-9a-f]{12}_[0-9a-f]{12}$")
_COLON_HEX = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){19}$")


def ioc_kind(value: str) -> str:
    """What a pasted indicator looks like (for display; lookups use `lookup_forms`)."""
    v = value.strip()
    low = v.lower()
    if norm_ip(v):
        return "ip"
    if low.startswith(("http://", "https://")):
        return "url"
    if _COLON_HEX.match(low):
        return "cert_sha1"
    if _JA4.match(low):
        return "ja4"
    if h := norm_hash(v):
        return h[0] if h[0] != "md5" else "md5/ja3/hassh"
    if "@" in v and any(True for _ in _emails(v)):
        return "email"
    if norm_domain(v):
        return "domain"
    return "text"


def lookup_forms(value: str) -> list[str]:
    """The normalised forms under which `value` may be stored in the observables table."""
    v = value.strip()[:MAX_VALUE]
    forms = {v, v.lower()}
    if ip := norm_ip(v):
        forms.add(ip)
    if d := norm_domain(v):
        forms.add(d)
    if h := norm_hash(v):
        forms.add(h[1])
        if h[0] == "sha1":  # certificate fingerprints are stored the way Suricata writes them
            forms.add(":".join(h[1][i:i + 2] for i in range(0, 40, 2)))
    return sorted(f for f in forms if f)


@dataclass(slots=True)
class Seen:
    count: int = 0
    first: str | None = None
    last: str | None = None

    def add(self, ts: str | None) -> None:
        self.count += 1
        if ts:
            if self.first is None or ts < self.first:
                self.first = ts
            if self.last is None or ts > self.last:
                self.last = ts


class Collector:
    """Counts observables over a capture's records: (kind, value, field) -> Seen. At most `limit`
    distinct ones are kept (memory follows them, not the events); occurrences of values first
    seen past the limit are counted in `dropped`, those already kept go on counting."""

    def __init__(self, limit: int = 250_000) -> None:
        self.seen: dict[tuple[str, str, str], Seen] = {}
        self.limit = limit
        self.dropped = 0

    def add(self, rec: dict) -> None:
        ts = rec.get("timestamp") if isinstance(rec.get("timestamp"), str) else None
        for key in extract(rec):
            s = self.seen.get(key)
            if s is None:
                if len(self.seen) >= self.limit:
                    self.dropped += 1
                    continue
                s = self.seen[key] = Seen()
            s.add(ts)

    def note(self, kind: str, value: str, field: str, ts: str | None) -> None:
        """One occurrence of a value found outside the records' fields (a parsed certificate, a
        decoded NetBIOS name), counted as `add` counts those."""
        key = (kind, value[:MAX_VALUE], field)
        s = self.seen.get(key)
        if s is None:
            if len(self.seen) >= self.limit:
                self.dropped += 1
                return
            s = self.seen[key] = Seen()
        s.add(ts)
