"""Offline country and AS of an address (docs/architecture.md: the data, its licences, updates).

Special ranges (private, loopback, link-local, multicast, CGNAT, documentation, reserved) are
named from the address alone and never looked up. Public ones are looked up in one SQLite file
built once from the CSV files of two ip-location-db packages installed in `geo_data_dir`
(scripts/setup-geo.sh): a range lookup is one indexed query, the file is opened once per
`Locator`, and lookups are serialised on its connection (thread-safe)."""

from __future__ import annotations

import csv
import ipaddress
import json
import logging
import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import PacketTotalError, QueryError

log = logging.getLogger("packettotal")
ASN_PACKAGE = "@ip-location-db/asn"  # ranges -> AS number, organisation
COUNTRY_PACKAGE = "@ip-location-db/geo-whois-asn-country"  # ranges -> ISO country code
RANGES = ("private", "loopback", "link-local", "multicast", "cgnat", "documentation", "reserved")
_MAPPED = 0xFFFF << 32  # IPv4 addresses are keyed as IPv4-mapped IPv6 (::ffff:a.b.c.d)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_DOCUMENTATION = tuple(ipaddress.ip_network(n) for n in (
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20"))
_PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))
MAX_ORG = 200  # characters of an organisation name kept


class GeoDataMissing(PacketTotalError):
    """The address data is not installed where geo_data_dir points."""

    code = "geo_data_missing"


@dataclass(frozen=True)
class Geo:
    country: str | None = None  # ISO 3166 alpha-2
    asn: int | None = None
    as_org: str | None = None
    range: str | None = None  # one of RANGES: a special range, not looked up

    def row(self, value: str) -> dict:
        return {"value": value, **asdict(self)}


def range_name(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """The special range an address is in (one of RANGES), or None for a public address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip in _CGNAT:
        return "cgnat"
    if any(ip in n for n in _DOCUMENTATION):
        return "documentation"
    if any(ip in n for n in _PRIVATE):
        return "private"
    if not ip.is_global or ip.is_reserved or ip.is_unspecified:
        return "reserved"
    return None


def as_number(value: str) -> str:
    """An `asn:` search value (13335 or AS13335) as the number; a LIKE pattern keeps its wildcards."""
    v = value.strip().lower().removeprefix("as")
    if not re.fullmatch(r"[0-9%_]+", v):
        raise QueryError(f"asn takes an AS number such as asn:13335, not {value[:40]!r}")
    return v


def range_value(value: str) -> str:
    if value.lower() not in RANGES:
        raise QueryError(f"geo.range takes one of {', '.join(RANGES)}, not {value[:40]!r}")
    return value.lower()


def country_name(code: str | None) -> str | None:
    import pycountry  # ~80 ms to import: only where names are shown, not in every CLI command

    c = pycountry.countries.get(alpha_2=code) if code else None
    return c.name if c else None


def _key(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bytes:
    n = int(ip) | _MAPPED if ip.version == 4 else int(ip)
    return n.to_bytes(16, "big")


class Locator:
    """Lookups in the data installed in `data_dir` (the address database is built there on
    first use, once per data version)."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def version(self) -> str:
        """The data packages' versions (what the built database is named after)."""
        return "-".join(_package(self.data_dir, p)["version"] for p in (ASN_PACKAGE, COUNTRY_PACKAGE))

    def _open(self) -> sqlite3.Connection:
        if self._conn is None:
            path = self.data_dir / f"ipgeo-{self.version()}.sqlite"
            if not path.exists():
                build(self.data_dir, path)
            self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        return self._conn

    def lookup(self, value: str) -> Geo | None:
        """The country and AS of an address, or its range's name; None for a value that is not
        an address."""
        try:
            ip = ipaddress.ip_address(value)
        except ValueError:
            return None
        name = range_name(ip)
        if name:
            return Geo(range=name)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        key = _key(ip)
        with self._lock:
            conn = self._open()
            cc = conn.execute("SELECT end, cc FROM country WHERE start <= ? ORDER BY start DESC LIMIT 1",
                              (key,)).fetchone()
            asn = conn.execute("SELECT end, asn, org FROM asn WHERE start <= ? ORDER BY start DESC LIMIT 1",
                               (key,)).fetchone()
        country = cc[1] if cc and cc[0] >= key else None
        number, org = (asn[1], asn[2]) if asn and asn[0] >= key else (None, None)
        return Geo(country=country, asn=number, as_org=org)

    def lookup_many(self, values: Iterable[str]) -> list[dict]:
        """ip_geo rows (store/db.py) for the values that are addresses."""
        return [g.row(v) for v in dict.fromkeys(values) if (g := self.lookup(v)) is not None]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _package(data_dir: Path, name: str) -> dict:
    path = data_dir / "node_modules" / name / "package.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise GeoDataMissing(f"the address data {name} is not installed in {data_dir} (setting geo_data_dir; "
                             f"scripts/setup-geo.sh installs it): {exc}") from None


def _rows(path: Path, width: int) -> Iterator[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            if len(row) == width:
                yield row


def build(data_dir: Path, target: Path) -> None:
    """The lookup database from the packages' numeric CSV files (start, end[, asn, org | cc])."""
    log.info("building the address database %s (once per data version)", target)
    asn_dir = data_dir / "node_modules" / ASN_PACKAGE
    cc_dir = data_dir / "node_modules" / COUNTRY_PACKAGE
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp)
    try:
        conn.execute("CREATE TABLE asn (start BLOB PRIMARY KEY, end BLOB NOT NULL, asn INTEGER NOT NULL, "
                     "org TEXT) WITHOUT ROWID")
        conn.execute("CREATE TABLE country (start BLOB PRIMARY KEY, end BLOB NOT NULL, cc TEXT NOT NULL) "
                     "WITHOUT ROWID")
        for v in (4, 6):
            off = _MAPPED if v == 4 else 0
            conn.executemany("INSERT OR REPLACE INTO asn VALUES (?, ?, ?, ?)", (
                ((int(s) | off).to_bytes(16, "big"), (int(e) | off).to_bytes(16, "big"), int(a), o[:MAX_ORG] or None)
                for s, e, a, o in _rows(asn_dir / f"asn-ipv{v}-num.csv", 4)))
            conn.executemany("INSERT OR REPLACE INTO country VALUES (?, ?, ?)", (
                ((int(s) | off).to_bytes(16, "big"), (int(e) | off).to_bytes(16, "big"), c.upper())
                for s, e, c in _rows(cc_dir / f"geo-whois-asn-country-ipv{v}-num.csv", 3)))
        conn.commit()
    except BaseException:
        conn.close()
        tmp.unlink(missing_ok=True)
        raise
    conn.close()
    os.replace(tmp, target)
