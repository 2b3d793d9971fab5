"""Exports of one capture: EVE NDJSON as stored, CSV for one event type."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import IO

import orjson


def flatten(rec: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in rec.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, list):
            out[key] = orjson.dumps(v).decode() if any(isinstance(x, (dict, list)) for x in v) else \
                "; ".join(str(x) for x in v)
        else:
            out[key] = v
    return out


def write_ndjson(records: Iterable[dict], out: IO[bytes]) -> int:
    n = 0
    for n, rec in enumerate(records, 1):
        out.write(orjson.dumps(rec) + b"\n")
    return n


def csv_safe(value: object) -> object:
    """Spreadsheet formula injection: a cell from a packet must never start a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def write_csv(records: Iterable[dict], out: IO[str], columns: list[str] | None = None) -> int:
    rows = [flatten(r) for r in records]
    if columns is None:
        seen: dict[str, None] = {}
        for r in rows:
            seen.update(dict.fromkeys(r))
        columns = list(seen)
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: csv_safe(v) for k, v in r.items()})
    return len(rows)


def of_type(records: Iterable[dict], event_type: str) -> Iterator[dict]:
    return (r for r in records if r.get("event_type") == event_type)
