"""Indicators typed where a query or a list of them is expected: refanged (`hxxp://evil[.]com`
-> `http://evil.com`), told apart from Lucene queries, and split out of pasted lists. Pure, but
for `public_suffixes`, which reads the public suffix list `publicsuffixlist` bundles, once."""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import publicsuffixlist

from . import fields as catalog

MAX_INDICATOR = 2048  # what a pivot takes (the /ioc route's bound)
PUBLIC_SUFFIXES = Path(publicsuffixlist.__file__).with_name("public_suffix_list.dat")  # its bundled copy, never fetched
URL_SCHEMES = ("http", "https", "ftp")

# defanged forms: a dot, an at sign, a colon (or `://`) in brackets, and the scheme's mangled `tt`
_DEFANGED = re.compile(r"\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)|\{dot\}"
                       r"|\[@\]|\(@\)|\{@\}|\[at\]|\(at\)|\{at\}"
                       r"|\[://\]|\[:\]|\(:\)|\{:\}", re.IGNORECASE)
_REFANGED = {".": ".", "dot": ".", "@": "@", "at": "@", "://": "://", ":": ":"}
_SCHEME = re.compile(r"^(?:h(?:xx|\*\*)p|fxp)(?=s?:)", re.IGNORECASE)
_LABEL = r"[a-z0-9_](?:[a-z0-9_\-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^(?=.{{1,253}}$)(?:{_LABEL}\.)+([a-z][a-z0-9\-]{{0,62}})$")
_EMAIL = re.compile(r"^[a-z0-9._%+\-]{1,64}@((?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})$")
_HEX = re.compile(r"^[0-9a-f]+$")
_COLON_SHA1 = re.compile(r"^[0-9a-f]{2}(?::[0-9a-f]{2}){19}$")
_JA4 = re.compile(r"^[tqd][0-9a-z]{2}[di][0-9]{4}[0-9a-z]{2}_[0-9a-f]{12}_[0-9a-f]{12}$")
_HASHES = {32: "md5", 40: "sha1", 64: "sha256"}
# bulk lists: a "quoted value" is kept whole; otherwise newlines, commas and semicolons separate
_BULK_ITEM = re.compile(r'"([^"\n]*)"|([^\n\r,;]+)')
# names a bare word may be that are fields, not domains (`ndpi.app`, `tls.sni` typed alone)
_FIELD_NAMES = frozenset({*catalog.BY_NAME, *catalog.ALIASES, *catalog.CAPTURE_FIELDS})


@dataclass(frozen=True)
class Indicator:
    value: str      # refanged: what its pivot looks up
    kind: str       # ip, domain, url, email, md5 (also JA3, HASSH), sha1 (also certificates), sha256, ja4, cert_sha1
    defanged: bool  # it was typed defanged


def refang(text: str) -> str:
    """`text` with the usual defangings undone: `[.]` `(.)` `[dot]`, `[@]` `[at]`, `[:]` `[://]`,
    and `hxxp`/`hxxps`/`fxp` as a scheme. Nothing else changes."""
    out = _DEFANGED.sub(lambda m: _REFANGED[m.group(0)[1:-1].lower()], text)
    return _SCHEME.sub(lambda m: "ftp" if m.group(0)[0] in "fF" else "http", out)


def kind_of(value: str, suffixes: frozenset[str] | None = None) -> str | None:
    """The indicator kind of one refanged value, or None. A domain needs a top-level domain of
    `suffixes` (None: any alphabetic one) and must not be a field's name."""
    v = value.lower()
    if not v or len(v) > MAX_INDICATOR or not v.isascii() or not v.isprintable() or " " in v:
        return None
    if _ip(v):
        return "ip"
    if _COLON_SHA1.match(v):
        return "cert_sha1"
    if _HEX.match(v):
        return _HASHES.get(len(v))
    if _JA4.match(v):
        return "ja4"
    if "://" in v:
        return "url" if _url(v) else None
    if "@" in v:
        return "email" if _EMAIL.match(v) else None
    m = _DOMAIN.match(v.removesuffix("."))
    if m and v not in _FIELD_NAMES and (suffixes is None or m.group(1) in suffixes):
        return "domain"
    return None


def classify(text: str, suffixes: frozenset[str] | None = None) -> Indicator | None:
    """`text` as one lone indicator (what a search box sends to its pivot), or None for anything
    else: every Lucene query (`src_ip:1.2.3.4`, `evil.com AND x`, `"evil.com"`, `*.evil.com`)."""
    typed = text.strip()
    if len(typed) > MAX_INDICATOR or any(c.isspace() for c in typed):
        return None
    value = refang(typed)
    kind = kind_of(value, suffixes)
    if kind is None:
        return None
    if kind == "url":  # scheme and host lower-case, as stored; the rest as typed
        parts = urlsplit(value)
        value = f"{parts.scheme}://{parts.netloc.lower()}{value[len(parts.scheme) + 3 + len(parts.netloc):]}"
    elif kind != "ip":  # the rest are stored lower-case
        value = value.lower().removesuffix(".")
    return Indicator(value, kind, refang(typed) != typed)


def pivot_value(text: str) -> str:
    """What a pivot should look up for `text`: refanged when that makes an indicator of it."""
    value = refang(text.strip())
    return value if value != text.strip() and kind_of(value) else text


def split_bulk(text: str, limit: int) -> list[str]:
    """A pasted list -> its values as typed, at most `limit`, in order, without repeats (two that
    refang alike are one). Values are separated by newlines, commas and semicolons, not spaces (a
    user agent is one value); a value in double quotes is kept whole, separators and all."""
    out: dict[str, str] = {}
    for m in _BULK_ITEM.finditer(text):
        typed = (m.group(1) if m.group(1) is not None else m.group(2)).strip()
        if typed:
            out.setdefault(refang(typed), typed)
            if len(out) >= limit:
                break
    return list(out.values())


def join_bulk(values: list[str]) -> str:
    """Values one a line, so that split_bulk gives them back (quoted where they hold a separator)."""
    return "\n".join(f'"{v}"' if "," in v or ";" in v else v for v in values)


@functools.lru_cache(maxsize=4)
def public_suffixes(path: Path = PUBLIC_SUFFIXES) -> frozenset[str] | None:
    """The top-level domains of a public suffix list (IDN ones in their xn-- form); None when the
    list is not installed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    tlds = set()
    for line in text.splitlines():
        rule = line.split()[0].lstrip("!") if line.strip() else ""
        if not rule or rule.startswith("//"):
            continue
        tld = rule.rsplit(".", 1)[-1]
        try:
            tlds.add(tld.encode("idna").decode("ascii").lower())
        except UnicodeError:
            continue
    return frozenset(tlds) or None


def _ip(v: str) -> bool:
    if "%" in v:  # an IPv6 zone: never stored
        return False
    try:
        ipaddress.ip_address(v)
    except ValueError:
        return False
    return True


def _url(v: str) -> bool:
    """An absolute http(s)/ftp URL with a host that is a domain or an address."""
    try:
        parts = urlsplit(v)
        host = parts.hostname
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        return False
    if parts.scheme not in URL_SCHEMES or not host:
        return False
    return _ip(host) or bool(_DOMAIN.match(host.removesuffix(".")))
