"""IOC feeds: indicator lists read from CSV, STIX 2.1 bundles and MISP event JSON, each value
normalised the way observables are (ingest/observables.py) so a feed meets the captures by equality.
Pure apart from `load` (a file, or a URL only when one is given)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ..errors import IntelError
from . import observables as obs
from .validate import human_size

KINDS = ("ip", "domain", "url", "md5", "sha1", "sha256", "email", "ja3")  # observable kinds matched
FORMATS = ("csv", "stix", "misp")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # a feed's name: a plain word for `intel:NAME`
MAX_TEXT = 1000  # characters of a description or source kept
CSV_COLUMNS = ("value", "type", "source", "confidence", "description", "expires")

# type names as feeds write them -> the observable kind
TYPES = {
    **dict.fromkeys(("ip", "ipv4", "ipv6", "ip-src", "ip-dst", "ipv4-addr", "ipv6-addr"), "ip"),
    **dict.fromkeys(("domain", "hostname", "domain-name", "fqdn"), "domain"),
    "url": "url", "uri": "url", "md5": "md5", "sha1": "sha1", "sha-1": "sha1", "sha256": "sha256",
    "sha-256": "sha256",
    **dict.fromkeys(("email", "email-src", "email-dst", "email-addr"), "email"),
    "ja3": "ja3", "ja3-fingerprint-md5": "ja3",
}
MISP_TYPES = {t: TYPES[t] for t in ("ip-dst", "ip-src", "domain", "hostname", "url", "md5", "sha1", "sha256",
                                    "email-src", "email-dst", "ja3-fingerprint-md5")}
STIX_PATHS = {
    "ipv4-addr:value": "ip", "ipv6-addr:value": "ip", "domain-name:value": "domain", "url:value": "url",
    "email-addr:value": "email", "file:hashes.sha-256": "sha256", "file:hashes.sha256": "sha256",
    "file:hashes.md5": "md5", "file:hashes.sha-1": "sha1", "file:hashes.sha1": "sha1",
}
STIX_SUPPORTED = ("[ipv4-addr:value = '…'], [ipv6-addr:value = '…'], [domain-name:value = '…'], "
                  "[url:value = '…'], [email-addr:value = '…'], [file:hashes.'SHA-256'|'SHA-1'|MD5 = '…'], "
                  "and ORs of these")


@dataclass(frozen=True)
class Indicator:
    kind: str
    value: str
    source: str | None = None
    confidence: int | None = None
    description: str | None = None
    expires: dt.datetime | None = None  # naive UTC


@dataclass
class Feed:
    format: str
    indicators: list[Indicator] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # why -> how many

    def add(self, ind: Indicator, seen: set[tuple[str, str]]) -> None:
        if (ind.kind, ind.value) in seen:
            self.skipped["the same indicator again"] += 1
        else:
            seen.add((ind.kind, ind.value))
            self.indicators.append(ind)


def normalise(kind: str, raw: str) -> str | None:
    """The value as observables store it, or None when it is not a `kind`."""
    v = raw.strip()
    if kind == "ip":
        return obs.norm_ip(v)
    if kind == "domain":
        return obs.norm_domain(v)
    if kind == "url":
        return _url(v)
    if kind in ("md5", "sha1", "sha256", "ja3"):
        h = obs.norm_hash(v)
        return h[1] if h and h[0] == ("md5" if kind == "ja3" else kind) else None
    if kind == "email":
        return obs.norm_email(v)
    return None


def _url(v: str) -> str | None:
    """Scheme and host lower-cased, http's port 80 dropped, a bare host given its `/`: the form
    observables build from an HTTP record."""
    try:
        parts = urlsplit(v)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or any(c.isspace() for c in v):
        return None
    host = parts.hostname.lower()
    netloc = host if port is None or (port == 80 and parts.scheme.lower() == "http") else f"{host}:{port}"
    url = urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, parts.fragment))
    return url if len(url) <= obs.MAX_VALUE else None


def _text(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:MAX_TEXT]


def _expiry(value: object) -> dt.datetime | None:
    """An ISO 8601 date or time (`Z` and offsets taken) as naive UTC; ValueError when it is not one."""
    t = dt.datetime.fromisoformat(value.isoformat() if isinstance(value, dt.datetime) else str(value).strip())
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo else t


def guess_format(data: bytes) -> str:
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head not in (b"{", b"["):
        return "csv"
    doc = _json(data)
    if isinstance(doc, dict) and doc.get("type") == "bundle":
        return "stix"
    if _events(doc) is not None:
        return "misp"
    raise IntelError("the file is JSON but neither a STIX 2.1 bundle (type: bundle) nor a MISP event "
                     "(Event, or a response of events): give --format")


def parse(data: bytes, fmt: str | None = None) -> Feed:
    """A feed's indicators (raises IntelError naming what is wrong; nothing is kept then)."""
    fmt = fmt or guess_format(data)
    if fmt == "csv":
        return _csv(data)
    if fmt == "stix":
        return _stix(_json(data))
    if fmt == "misp":
        return _misp(_json(data))
    raise IntelError(f"format must be one of {', '.join(FORMATS)}, not {fmt[:20]!r}")


def _json(data: bytes) -> object:
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise IntelError("the feed is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise IntelError(f"the feed is not valid JSON: {exc}") from None
    except RecursionError:
        raise IntelError("the feed's JSON is nested too deeply to read") from None


def _csv(data: bytes) -> Feed:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IntelError(f"the CSV is not UTF-8 text (byte {exc.start})") from None
    feed, seen = Feed("csv"), set[tuple[str, str]]()
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    try:
        for row in reader:
            if not any(c.strip() for c in row) or row[0].lstrip().startswith("#"):
                continue
            if header is None:
                header = _header(row, reader.line_num)
                continue
            feed.add(_csv_row(header, row, reader.line_num), seen)
    except csv.Error as exc:
        raise IntelError(f"line {reader.line_num}: {exc}") from None
    if header is None:
        raise IntelError(f"the CSV has no header line: the first line names the columns ({', '.join(CSV_COLUMNS)}; "
                         "value is needed, the others may be left out)")
    return feed


def _header(row: list[str], line: int) -> list[str]:
    names = [c.strip().lower() for c in row]
    unknown = [n for n in names if n not in CSV_COLUMNS]
    if unknown or "value" not in names or len(set(names)) != len(names):
        why = (f"unknown columns {', '.join(repr(n[:40]) for n in unknown)}" if unknown else
               "no value column" if "value" not in names else "a column named twice")
        raise IntelError(f"line {line}: the header has {why}: columns are {', '.join(CSV_COLUMNS)} "
                         "(value is needed, the others may be left out)")
    return names


def _csv_row(header: list[str], row: list[str], line: int) -> Indicator:
    if len(row) > len(header):
        raise IntelError(f"line {line}: {len(row)} cells, but the header names {len(header)} columns")
    cells = {k: v.strip() for k, v in zip(header, row, strict=False)}
    raw = cells.get("value", "")
    if not raw:
        raise IntelError(f"line {line}: no value")
    shown = repr(raw[:80])
    if cells.get("type"):
        kind = TYPES.get(cells["type"].lower())
        if kind is None:
            raise IntelError(f"line {line}: type {cells['type'][:40]!r} is not one of {', '.join(sorted(TYPES))}")
    else:
        kind = _guess_kind(raw)
        if kind is None:
            raise IntelError(f"line {line}: cannot tell what {shown} is: give its type")
    value = normalise(kind, raw)
    if value is None:
        raise IntelError(f"line {line}: {shown} is not a valid {kind}")
    confidence = None
    if cells.get("confidence"):
        c = cells["confidence"]
        if not c.isdigit() or int(c) > 100:
            raise IntelError(f"line {line}: confidence {c[:20]!r} is not a whole number from 0 to 100")
        confidence = int(c)
    expires = None
    if cells.get("expires"):
        try:
            expires = _expiry(cells["expires"])
        except ValueError:
            raise IntelError(f"line {line}: expires {cells['expires'][:40]!r} is not an ISO 8601 date or time "
                             "(2025-12-31, 2025-12-31T23:59:59Z)") from None
    return Indicator(kind, value, _text(cells.get("source")), confidence, _text(cells.get("description")), expires)


def _guess_kind(raw: str) -> str | None:
    kind = obs.ioc_kind(raw)
    return {"md5/ja3/hassh": "md5"}.get(kind, kind) if kind in (*KINDS, "md5/ja3/hassh") else None


def _stix(doc: object) -> Feed:
    import stix2
    from stix2.pattern_visitor import create_pattern_object

    try:
        bundle = stix2.parse(doc, allow_custom=True, version="2.1")
    except Exception as exc:  # the library's many errors all say what is wrong
        raise IntelError(f"not a valid STIX 2.1 bundle: {str(exc)[:300]}") from None
    if getattr(bundle, "type", None) != "bundle":
        raise IntelError("not a STIX 2.1 bundle (type: bundle)")
    objects = list(getattr(bundle, "objects", None) or [])
    names = {o.id: o.name for o in objects if getattr(o, "type", None) == "identity"}
    feed, seen = Feed("stix"), set[tuple[str, str]]()
    for o in objects:
        if getattr(o, "type", None) != "indicator":
            continue
        if getattr(o, "revoked", False):
            feed.skipped["revoked indicators"] += 1
            continue
        if o.pattern_type != "stix":
            feed.skipped[f"pattern_type {str(o.pattern_type)[:40]} (not read)"] += 1
            continue
        try:
            found = list(_equalities(create_pattern_object(o.pattern, version="2.1")))
        except Exception:  # noqa: BLE001  (a pattern the library cannot read: counted)
            found = []
        if not found:
            feed.skipped["patterns not of the simple equality kind (" + STIX_SUPPORTED + ")"] += 1
            continue
        for path, raw in found:
            value = normalise(STIX_PATHS[path], raw)
            if value is None:
                feed.skipped[f"values not a valid {STIX_PATHS[path]}"] += 1
                continue
            feed.add(Indicator(STIX_PATHS[path], value, _text(names.get(getattr(o, "created_by_ref", None))),
                               getattr(o, "confidence", None), _text(getattr(o, "description", None) or
                                                                     getattr(o, "name", None)),
                               _expiry(o.valid_until) if getattr(o, "valid_until", None) else None), seen)
    return feed


def _equalities(node) -> Iterator[tuple[str, str]]:
    """(path, value) of a pattern made only of `path = 'value'` comparisons joined by OR; nothing
    (an empty iteration) when any part is of another kind."""
    from stix2 import patterns as p

    found: list[tuple[str, str]] = []

    def walk(n) -> bool:
        if isinstance(n, (p.OrObservationExpression, p.OrBooleanExpression)):
            return all(walk(x) for x in n.operands)
        if type(n) is p.ObservationExpression:
            return walk(n.operand)
        if isinstance(n, p.EqualityComparisonExpression) and not n.negated and isinstance(n.rhs, p.StringConstant):
            path = n.lhs.object_type_name + ":" + ".".join(str(c.property_name) for c in n.lhs.property_path)
            if path.lower() in STIX_PATHS:
                found.append((path.lower(), n.rhs.value))
                return True
        return False

    if walk(node):
        yield from found


def _events(doc: object) -> list[dict] | None:
    """The MISP events of a document: {Event}, {response: [{Event}]}, a list of those, or a bare event."""
    if isinstance(doc, dict) and isinstance(doc.get("response"), list):
        doc = doc["response"]
    out = [e for d in (doc if isinstance(doc, list) else [doc]) if (e := _event(d)) is not None]
    return out or None


def _event(doc: object) -> dict | None:
    if not isinstance(doc, dict):
        return None
    if isinstance(doc.get("Event"), dict):
        return doc["Event"]
    return doc if isinstance(doc.get("Attribute"), list) and "info" in doc else None


def _misp(doc: object) -> Feed:
    events = _events(doc)
    if events is None:
        raise IntelError("not a MISP event: expected {\"Event\": {...}} (or a response of events)")
    feed, seen = Feed("misp"), set[tuple[str, str]]()
    for ev in events:
        org = ev.get("Orgc") if isinstance(ev.get("Orgc"), dict) else ev.get("Org")
        source = _text(org.get("name")) if isinstance(org, dict) else None
        attrs = [a for a in ev.get("Attribute") or [] if isinstance(a, dict)]
        for ob in ev.get("Object") or []:
            if isinstance(ob, dict):
                attrs += [a for a in ob.get("Attribute") or [] if isinstance(a, dict)]
        for a in attrs:
            kind = MISP_TYPES.get(str(a.get("type")))
            if a.get("deleted") in (True, "1", 1):
                feed.skipped["deleted attributes"] += 1
            elif kind is None:
                feed.skipped[f"attributes of type {str(a.get('type'))[:40]} (not read)"] += 1
            elif a.get("to_ids") in (False, "0", 0):
                feed.skipped["attributes with to_ids off (context, not for detection)"] += 1
            elif not isinstance(a.get("value"), str) or (value := normalise(kind, a["value"])) is None:
                feed.skipped[f"values not a valid {kind}"] += 1
            else:
                feed.add(Indicator(kind, value, source, None, _text(a.get("comment")) or _text(ev.get("info"))), seen)
    return feed


def default_name(source: str) -> str:
    """A feed name from a file or URL: its last part without the extension, made a plain word."""
    last = urlsplit(source).path.rstrip("/").rsplit("/", 1)[-1] if _is_url(source) else Path(source).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(last).stem).strip("-._")[:64]
    return cleaned or (urlsplit(source).hostname or "feed").replace(".", "-")[:64]


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise IntelError(f"feed name {name[:80]!r}: 1 to 64 letters, digits, '.', '_' or '-', starting with a "
                         "letter or digit (it is searched as intel:NAME)")
    return name


def _is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def load(source: str, max_bytes: int, timeout: float) -> bytes:
    """A feed's bytes: from the file `source`, or fetched when `source` is an http(s) URL."""
    if _is_url(source):
        return _fetch(source, max_bytes, timeout)
    path = Path(source)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise IntelError(f"{path.name}: {human_size(size)}, over the limit of {human_size(max_bytes)} "
                             "(setting intel_max_bytes)")
        return path.read_bytes()
    except OSError as exc:
        raise IntelError(f"cannot read {source[:200]}: {exc.strerror or exc}") from None


def _fetch(url: str, max_bytes: int, timeout: float) -> bytes:
    import httpx

    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as r:
            if r.status_code != 200:
                raise IntelError(f"{url[:200]} answered HTTP {r.status_code}")
            for chunk in r.iter_bytes():
                out += chunk
                if time.monotonic() > deadline:
                    raise IntelError(f"{url[:200]} took more than {timeout:g} s (setting intel_fetch_timeout)")
                if len(out) > max_bytes:
                    raise IntelError(f"{url[:200]} sent more than {human_size(max_bytes)} "
                                     "(setting intel_max_bytes)")
    except httpx.HTTPError as exc:
        raise IntelError(f"could not fetch {url[:200]}: {type(exc).__name__}: {str(exc)[:200]}") from None
    return bytes(out)
