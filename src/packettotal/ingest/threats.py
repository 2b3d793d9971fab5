"""Alerts told apart: the threat rules' alerts (Malicious activity) from Suricata's protocol-event
rules' (Strange activity, with the anomalies), grouped by signature, severities named, and each
rule's references. Pure: fed alert records, the rules loaded and their classes (ingest/suricata.py
`rule_classes`), returns plain data for the summary."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

SEVERITY = {1: "high", 2: "medium", 3: "low", 4: "info"}  # Suricata's priorities
MALICIOUS = frozenset({"own", "threat"})
REFERENCE_CONFIG = Path("/etc/suricata/reference.config")  # the file suricata.yaml.tmpl names
MAX_GROUPS = 2_000     # signatures grouped in full; alerts of others are only counted
PAIRS_KEPT = 50        # distinct source -> destination pairs counted per signature
PAIRS_LISTED = 10
SIGNATURES_LISTED = 100
MAX_REFERENCES = 10
MAX_TEXT = 300         # characters of a signature, category, address or reference kept
NO_RULESET = ("No threat ruleset was loaded for this analysis: only Suricata's protocol-event rules and "
              "PacketTotal's own few rules ran, so malware and attacks go unreported. Load one with "
              "`packettotal rules add FOLDER|TARBALL` (offline: a folder of .rules files or an ET Open "
              "tarball) or `packettotal rules update` (online), then analyse the capture again.")

_OPTION = re.compile(r"(?:\\.|[^;\\])+")  # one rule option: up to an unescaped ';'
_HOST = re.compile(r"[a-z0-9._-]+|[0-9a-f:.]+")  # a name or an address, as urlsplit gives it
_REFERENCE_LINE = re.compile(r"^\s*config\s+reference\s*:\s*(\S+)\s+(\S+)", re.IGNORECASE | re.MULTILINE)


def severity_name(severity: object) -> str:
    if not isinstance(severity, int) or severity < 1:
        return "unknown"
    return SEVERITY.get(severity, "info")


def severity_label(severity: object) -> str:
    """How a severity shows: Suricata's number with its name ("1 High"), or a finding's name alone."""
    if isinstance(severity, str):
        return severity.capitalize()
    name = severity_name(severity).capitalize()
    return name if name == "Unknown" else f"{severity} {name}"


def _cut(value: object) -> str:
    text = str(value)
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


@dataclass
class _Group:
    signature: str
    category: str
    severity: int | None
    first: str | None = None
    last: str | None = None
    pairs: Counter[tuple[str, str]] = field(default_factory=Counter)
    unpaired: int = 0  # alerts of pairs past PAIRS_KEPT


class Signatures:
    """Alerts grouped by signature id as the records pass."""

    def __init__(self) -> None:
        self.count: Counter[int] = Counter()  # sid -> alerts, every sid
        self.groups: dict[int, _Group] = {}

    def add(self, rec: dict) -> None:
        alert = rec.get("alert")
        if not isinstance(alert, dict):
            return
        sid = alert.get("signature_id")
        if not isinstance(sid, int):
            return
        self.count[sid] += 1
        group = self.groups.get(sid)
        if group is None:
            if len(self.groups) >= MAX_GROUPS:
                return
            severity = alert.get("severity")
            group = self.groups[sid] = _Group(_cut(alert.get("signature") or ""), _cut(alert.get("category") or ""),
                                              severity if isinstance(severity, int) else None)
        ts = rec.get("timestamp")
        if isinstance(ts, str):  # one capture's stamps share Suricata's format: they sort as text
            group.first = ts if group.first is None or ts < group.first else group.first
            group.last = ts if group.last is None or ts > group.last else group.last
        pair = (_cut(rec.get("src_ip") or "?"), _cut(rec.get("dest_ip") or "?"))
        if pair in group.pairs or len(group.pairs) < PAIRS_KEPT:
            group.pairs[pair] += 1
        else:
            group.unpaired += 1

    def result(self, alerts: int, rule_class: Mapping[int, str], rules: Mapping[int, str],
               prefixes: Mapping[str, str]) -> dict:
        """`alerts`: the alert records counted (those without a sid are threats too)."""
        loaded = Counter(rule_class.values())
        protocol = sorted(s for s in self.count if rule_class.get(s) == "protocol")
        protocol_alerts = sum(self.count[s] for s in protocol)
        threats = [s for s in self.groups if rule_class.get(s, "threat") in MALICIOUS]
        threats.sort(key=lambda s: (self.groups[s].severity or 255, -self.count[s], s))
        return {
            "ruleset": {k: loaded.get(k, 0) for k in ("threat", "own", "protocol")},
            "notice": None if loaded.get("threat") else NO_RULESET,
            "alerts": alerts - protocol_alerts, "protocol_alerts": protocol_alerts,
            "signature_count": sum(1 for s in self.count if rule_class.get(s, "threat") in MALICIOUS),
            "signatures": [self._listed(s, rule_class, rules, prefixes) for s in threats[:SIGNATURES_LISTED]],
            "protocol_sids": protocol,
        }

    def _listed(self, sid: int, rule_class: Mapping[int, str], rules: Mapping[int, str],
                prefixes: Mapping[str, str]) -> dict:
        g, n = self.groups[sid], self.count[sid]
        pairs = g.pairs.most_common(PAIRS_LISTED)
        return {"sid": sid, "signature": g.signature, "category": g.category, "severity": g.severity,
                "severity_name": severity_name(g.severity), "class": rule_class.get(sid, "threat"),
                "count": n, "first_seen": g.first, "last_seen": g.last,
                "pairs": [{"src": s, "dest": d, "count": c} for (s, d), c in pairs],
                "pairs_more": n - sum(c for _, c in pairs),
                "references": references(rules.get(sid, ""), prefixes)}


def references(rule: str, prefixes: Mapping[str, str]) -> list[dict]:
    """A rule's `reference:` options as {system, value, url}; `url` only when the reference makes an
    http(s) URL (with the prefixes of Suricata's reference.config)."""
    start, end = rule.find("("), rule.rfind(")")
    out: list[dict] = []
    for m in _OPTION.finditer(rule[start + 1:end] if 0 <= start < end else ""):
        name, _, value = m.group(0).partition(":")
        if name.strip().lower() != "reference" or len(out) >= MAX_REFERENCES:
            continue
        system, _, ref = value.strip().partition(",")
        system, ref = system.strip(), ref.strip().replace("\\;", ";")
        out.append({"system": _cut(system), "value": _cut(ref), "url": _url(system, ref, prefixes)})
    return out


def _url(system: str, ref: str, prefixes: Mapping[str, str]) -> str | None:
    if re.match(r"https?://", ref, re.IGNORECASE):
        url = ref
    elif system.lower() in prefixes:
        url = prefixes[system.lower()] + ref
    else:
        return None
    if len(url) > 2048 or any(ch.isspace() or not ch.isprintable() for ch in url):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        return None
    host = parts.hostname or ""
    return url if parts.scheme.lower() in ("http", "https") and _HOST.fullmatch(host) else None


def reference_prefixes(path: Path = REFERENCE_CONFIG) -> dict[str, str]:
    """Reference system -> URL prefix, from a reference.config (`config reference: url http://`)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return {"url": "http://"}
    return {m.group(1).lower(): m.group(2) for m in _REFERENCE_LINE.finditer(text)}
