"""EVE JSON records -> bounded documents. Tolerant: a bad line is a counted warning, never a failure.

Suricata's field names are kept as they are; only sizes change. Every string is cut to a byte
budget (marked with a trailing ellipsis and counted), lists to a length, nesting to a depth.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import cast

import orjson

MAX_LIST = 1000
MAX_DEPTH = 12
MAX_KEY = 200
_SCALARS = frozenset({int, float, bool, type(None)})
BULKY = frozenset({"payload", "packet", "chain", "client_chain", "certificate"})  # base64 blobs
ELLIPSIS = "…"


@dataclass
class Limits:
    max_string: int = 4096
    max_blob: int = 65536  # for BULKY members: cutting base64 would make it undecodable
    max_list: int = MAX_LIST
    max_depth: int = MAX_DEPTH


@dataclass
class NormaliseReport:
    records: int = 0
    bad_lines: int = 0
    cut_values: int = 0
    examples: list[str] = field(default_factory=list)  # bounded reprs of bad lines

    def bad(self, line: bytes, why: str) -> None:
        self.bad_lines += 1
        if len(self.examples) < 5:
            self.examples.append(f"{why}: {line[:120]!r}")


def bound(value: object, limits: Limits, report: NormaliseReport, depth: int = 0, key: str = "") -> object:
    if isinstance(value, str):
        budget = limits.max_blob if key in BULKY else limits.max_string
        if len(value) > budget // 4 and len(value.encode()) > budget:
            report.cut_values += 1
            return value.encode()[:budget].decode(errors="ignore") + ELLIPSIS
        return value
    if isinstance(value, dict):
        if depth >= limits.max_depth:
            report.cut_values += 1
            return ELLIPSIS
        short = min(limits.max_string, limits.max_blob) // 4  # so many characters fit any budget
        return {(k if len(k) <= MAX_KEY else k[:MAX_KEY]):
                v if type(v) in _SCALARS or (type(v) is str and len(v) <= short)
                else bound(v, limits, report, depth + 1, k)
                for k, v in value.items()}
    if isinstance(value, list):
        if depth >= limits.max_depth:
            report.cut_values += 1
            return [ELLIPSIS]
        if len(value) > limits.max_list:
            report.cut_values += 1
            value = value[:limits.max_list]
        return [bound(v, limits, report, depth + 1, key) for v in value]
    return value


def records(lines: Iterable[bytes], limits: Limits, report: NormaliseReport) -> Iterator[dict]:
    """Parse and bound EVE lines; skips (and counts) lines that are not JSON objects."""
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            report.bad(line, "not JSON")
            continue
        if not isinstance(rec, dict) or not isinstance(rec.get("event_type"), str):
            report.bad(line, "no event_type")
            continue
        report.records += 1
        rec.pop("pcap_filename", None)  # a path in our work folder: meaningless to users
        # a line shorter than the string budget holds no over-long string, list or nesting;
        # bound() returns a dict for a dict at depth 0 (max_depth is never 0)
        yield cast(dict, bound(rec, limits, report)) if len(line) > limits.max_string else rec
