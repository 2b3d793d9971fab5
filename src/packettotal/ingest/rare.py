"""Domains new to this instance (the `rare_domain` finding): the registered domains a capture
asked for, named (DNS query), connected to (TLS/QUIC SNI) or browsed (HTTP host) that no
capture analysed before it held, or fewer than a few did. Unlike the detectors of findings.py
this needs the other captures: the service asks the store once per capture how many earlier
captures hold each of its registered domains; what to make of the answer is decided here, pure.

    seen = domains_of(observables)                   # registered domain -> Seen
    finding = judge(seen, History(baseline, held), min_baseline=20, rare_below=1)

"Registered domain" is the public-suffix list's (`publicsuffixlist`, its bundled copy: never
fetched): `update-check-portal.example-new.net` -> `example-new.net`, `a.b.example.co.uk` ->
`example.co.uk`, `x.duckdns.org` -> `x.duckdns.org` (private suffixes count: each is its own
owner's). Reverse DNS and other `.arpa` names, names under a suffix the list does not know
(`.local`, `.lan`, `.internal`, `.corp`, ...), single labels and IP literals have none.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from publicsuffixlist import PublicSuffixList

from .findings import MAX_EVIDENCE, SEVERITY_ORDER, Finding, cut

NAME, SEVERITY, TITLE = "rare_domain", "low", "Domains new to this instance"
FIELDS = {"dns.rrname": "dns", "dns.queries.rrname": "dns", "tls.sni": "tls", "quic.sni": "quic",
          "http.hostname": "http"}  # observable field -> event type; not answers, CNAMEs (CDNs' names)
MAX_DOMAINS = 10_000  # registered domains of one capture judged and recorded
_NAME = re.compile(r"(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))+")


@dataclass(frozen=True)
class Seen:
    name: str        # the first name seen under it, as seen (`update-check-portal.example-new.net`)
    field: str       # where: dns.rrname, tls.sni, ...
    first_seen: str  # its first record's timestamp
    names: int       # distinct names seen under it


@dataclass(frozen=True)
class History:
    baseline: int            # earlier captures holding any registered domain (the store counts to min_baseline)
    held: Mapping[str, int]  # registered domain -> earlier captures holding it (absent: none; counted to rare_below)


def registered_domain(name: str) -> str | None:
    """The registered domain of a host name, or None for names that have none worth judging."""
    name = name.strip().rstrip(".").lower()
    if not _NAME.fullmatch(name) or name.endswith(".arpa"):
        return None
    try:
        ipaddress.ip_address(name)
        return None
    except ValueError:
        pass
    return _suffixes().privatesuffix(name)


@functools.cache
def _suffixes() -> PublicSuffixList:
    """The list, read on first use (~35 ms: not for every command that imports the service); an
    unknown suffix (local names) then has no registered domain."""
    return PublicSuffixList(accept_unknown=False)


def domains_of(observables: Iterable[dict]) -> dict[str, Seen]:
    """A capture's registered domains (of its domain observables in FIELDS), at most MAX_DOMAINS:
    each with the first name seen under it (by time, then name)."""
    found: dict[str, list[tuple[str, str, str]]] = {}
    for o in observables:
        if o.get("kind") != "domain" or o.get("field") not in FIELDS or not isinstance(o.get("value"), str):
            continue
        reg = registered_domain(o["value"])
        if reg is None or (reg not in found and len(found) >= MAX_DOMAINS):
            continue
        found.setdefault(reg, []).append((str(o.get("first_seen") or ""), o["value"], o["field"]))
    out = {}
    for reg, sightings in found.items():
        first, name, field = min(sightings)
        out[reg] = Seen(name, field, first, len({s[1] for s in sightings}))
    return out


def judge(seen: Mapping[str, Seen], history: History, min_baseline: int, rare_below: int) -> Finding | None:
    """The finding for a capture's registered domains held by fewer than `rare_below` earlier
    captures, once `min_baseline` or more earlier captures hold domains (else the instance knows
    too little for "new" to mean anything). None: nothing to say. Rarest first, then by time.
    Severity low when the capture's known domains are at least as many as its new ones (new
    names among familiar traffic), else info (most of it is new here: another network)."""
    if history.baseline < min_baseline:
        return None
    rare = sorted((history.held.get(reg, 0), s.first_seen, reg) for reg, s in seen.items()
                  if history.held.get(reg, 0) < rare_below)
    if not rare:
        return None
    evidence = [{"timestamp": s.first_seen, "event_type": FIELDS[s.field], "domain": reg, "seen_as": s.name,
                 "field": s.field, "names": s.names, "earlier_captures": held}
                for held, _, reg in rare[:MAX_EVIDENCE] for s in [seen[reg]]]
    shown = ", ".join(cut(seen[reg].name) for _, _, reg in rare[:3]) + (", ..." if len(rare) > 3 else "")
    which = "none" if rare_below == 1 else f"fewer than {rare_below}"
    known = len(seen) - len(rare)
    why = (f"{len(rare):,} registered domain{'s' if len(rare) != 1 else ''} held by {which} of the "
           f"{min_baseline:,} or more captures with domains analysed before this one: {shown} "
           f"({known:,} of the capture's {len(seen):,} were known)")
    key = cut(rare[0][2]) + (f" and {len(rare) - 1:,} more" if len(rare) > 1 else "")
    # new names among familiar ones stand out; a capture of mostly new names is of a network new here
    return Finding(NAME, SEVERITY if known >= len(rare) else "info", TITLE, why, key, tuple(evidence))


@dataclass(frozen=True)
class Judged:
    capture_id: str
    order: tuple   # its place in ingest order: (submitted_at, id)
    seen: Mapping[str, Seen]
    history: History  # from the store: earlier captures outside the batch
    public: bool = True  # whether it may count in the others' history (service._judge_domains)


def judge_batch(batch: Iterable[Judged], min_baseline: int, rare_below: int) -> dict[str, Finding | None]:
    """Captures recorded together: each judged against the store's earlier captures and the
    batch's captures before it in ingest order, so the answer does not depend on which captures
    happened to be committed together."""
    out: dict[str, Finding | None] = {}
    before: list[Judged] = []
    for j in sorted(batch, key=lambda j: j.order):
        held = dict(j.history.held)
        counted = [b for b in before if b.public]
        for b in counted:
            for reg in j.seen.keys() & b.seen.keys():
                held[reg] = held.get(reg, 0) + 1
        baseline = j.history.baseline + sum(1 for b in counted if b.seen)
        out[j.capture_id] = judge(j.seen, History(baseline, held), min_baseline, rare_below)
        before.append(j)
    return out


def add_to(findings: list[dict], found: Finding) -> list[dict]:
    """A capture's findings (summary.findings) with this one, most severe first as the detectors' are."""
    return sorted([*findings, found.as_dict()],
                  key=lambda f: (SEVERITY_ORDER.get(f["severity"], 9), f["name"], f["key"]))
