"""Hunting, the pure part: a hunt's own rules checked before Suricata sees them, and the alerts
one capture raised under them, bounded. (ingest/suricata.py runs them; service.py records them.)"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import RulesRefused
from . import eve
from .suricata import bounded, rule_lines

MAX_RULES = 1000
MAX_RULES_BYTES = 1 << 20
MAX_EVENTS = 100  # alert records kept per capture and hunt (every one is counted)
MAX_MSG = 300
ALERT_MARK = b'"event_type":"alert"'
DROPPED = ("packet", "payload", "pcap_filename")  # base64 copies of the packets; our paths
LIMITS = eve.Limits(max_string=1024, max_blob=1024, max_list=100, max_depth=8)
_SID = re.compile(r"\bsid\s*:\s*(\d+)\s*;")
_MSG = re.compile(r'\bmsg\s*:\s*"((?:[^"\\]|\\.)*)"')
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


@dataclass(frozen=True)
class HuntRule:
    sid: int
    msg: str
    text: str

    def as_dict(self) -> dict:
        return {"sid": self.sid, "msg": self.msg, "text": self.text}


def parse_rules(text: str) -> list[HuntRule]:
    """The active rules of a hunt's rules file; raises RulesRefused naming what is wrong."""
    size = len(text.encode())
    if size > MAX_RULES_BYTES:
        raise RulesRefused(f"the rules are {size:,} bytes: a hunt takes at most {MAX_RULES_BYTES:,}")
    lines = rule_lines(text)
    if not lines:
        raise RulesRefused("there is no rule to hunt with (only blank lines and comments)")
    if len(lines) > MAX_RULES:
        raise RulesRefused(f"{len(lines):,} rules: a hunt takes at most {MAX_RULES:,}")
    rules: dict[int, HuntRule] = {}
    for n, line in enumerate(lines, 1):
        sids = _SID.findall(_QUOTED.sub('""', line))  # not a sid: inside a content string
        if len(sids) != 1:
            raise RulesRefused(f"rule {n} has {'no' if not sids else 'more than one'} sid: "
                               f"{bounded(line)[:120]}")
        sid = int(sids[0])
        if sid in rules:
            raise RulesRefused(f"rule {n} has sid {sid}, as rule {list(rules).index(sid) + 1} has: "
                               "each rule needs a sid of its own")
        m = _MSG.search(line)
        rules[sid] = HuntRule(sid, bounded(m.group(1))[:MAX_MSG] if m else f"sid {sid}", line)
    return list(rules.values())


@dataclass
class Hits:
    """The alerts of one capture: every one counted, by sid; the first MAX_EVENTS kept, bounded."""
    alerts: int = 0
    by_sid: dict[str, int] = field(default_factory=dict)  # str keys: as JSON stores them
    events: list[dict] = field(default_factory=list)


def collect(lines: Iterable[bytes], keep: int = MAX_EVENTS) -> Hits:
    """Read a capture's EVE lines to the end, keeping its alerts."""
    hits = Hits()
    for rec in eve.records((line for line in lines if ALERT_MARK in line), LIMITS, eve.NormaliseReport()):
        alert = rec.get("alert")
        if rec["event_type"] != "alert" or not isinstance(alert, dict):
            continue
        sid = str(alert.get("signature_id"))
        hits.alerts += 1
        hits.by_sid[sid] = hits.by_sid.get(sid, 0) + 1
        if len(hits.events) < keep:
            for key in DROPPED:
                rec.pop(key, None)
            hits.events.append(rec)
    return hits
