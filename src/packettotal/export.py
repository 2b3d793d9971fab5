"""Exports of one capture: EVE NDJSON as stored, CSV for one event type."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
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
    for rec in records:
        out.write(orjson.dumps(rec) + b"\n")
        n += 1
    return n


def csv_safe(value: object) -> object:
    """Spreadsheet formula injection: a cell from a packet must never start a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def columns_of(records: Iterable[dict]) -> list[str]:
    """Every flattened column, in first-seen order (a first pass over the records)."""
    seen: dict[str, None] = {}
    for r in records:
        seen.update(dict.fromkeys(flatten(r)))
    return list(seen)


def write_csv(source: Callable[[], Iterable[dict]], out: IO[str]) -> int:
    """CSV of the records `source()` yields, streamed: one pass for the columns, one to write,
    so a large event type is never held in memory."""
    writer = csv.DictWriter(out, fieldnames=columns_of(source()), extrasaction="ignore")
    writer.writeheader()
    n = 0
    for r in source():
        writer.writerow({k: csv_safe(v) for k, v in flatten(r).items()})
        n += 1
    return n
