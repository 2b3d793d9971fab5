"""Retro-hunt benchmark (bench/search.py's row "retro-hunt of 1,000 new indicators over the
corpus", kept here as its own function): a database of synthetic captures' observables built
through the database layer (no Suricata: capture rows, then `finish_captures` as an analysis
records them), then the import of a feed of 1,000 new indicators, which retro-hunts every
stored capture through the observables in one join; and the matching of one new capture at
ingest against all the indicators.

Values come from pools with a Zipf-like popularity (a few in many captures, most rare); half the
feed's indicators are values of the corpus, half are in no capture.

Usage: python bench/intel.py [--captures 5000] [--per-capture 200] [--indicators 1000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from packettotal.store.db import Database  # noqa: E402

KINDS = (("ip", "src_ip", 200_000), ("domain", "dns.rrname", 100_000), ("sha256", "fileinfo.sha256", 100_000),
         ("url", "http.url", 100_000))


def value(kind: str, n: int) -> str:
    if kind == "ip":
        return f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
    if kind == "domain":
        return f"host{n}.example{n % 97}.com"
    if kind == "sha256":
        return f"{n:064x}"
    return f"http://host{n}.example{n % 97}.com/p/{n}"


def draw(rng: random.Random, pool: int) -> int:
    return min(int(rng.paretovariate(1.1)) - 1, pool - 1) if rng.random() < 0.3 else rng.randrange(pool)


def build(db: Database, captures: int, per_capture: int, rng: random.Random) -> float:
    t0 = time.perf_counter()
    stamp = dt.datetime(2026, 1, 1)
    batch: list[dict] = []
    for c in range(captures):
        cid = f"{c:064x}"
        db.insert_capture({"id": cid, "md5": cid[:32], "sha1": cid[:40], "name": f"synthetic-{c}.pcap", "size": 1,
                           "status": "running", "warnings": [], "attempts": 1, "submitted_at": stamp})
        seen: dict[tuple[str, str, str], dict] = {}
        while len(seen) < per_capture:
            kind, field, pool = KINDS[rng.randrange(len(KINDS))]
            v = value(kind, draw(rng, pool))
            seen[(kind, v, field)] = {"capture_id": cid, "kind": kind, "value": v, "field": field,
                                      "count": rng.randint(1, 20), "first_seen": None, "last_seen": None}
        batch.append({"id": cid, "observables": list(seen.values()), "files": [], "status": "done",
                      "summary": {}, "finished_at": stamp})
        if len(batch) == 250:
            db.finish_captures(batch)
            batch = []
    if batch:
        db.finish_captures(batch)
    return time.perf_counter() - t0


def feed_rows(indicators: int, rng: random.Random) -> list[dict]:
    rows = {}
    while len(rows) < indicators:
        kind, _, pool = KINDS[rng.randrange(len(KINDS))]
        n = rng.randrange(pool) if len(rows) % 2 else pool + rng.randrange(10 * pool)  # held / in no capture
        rows[(kind, value(kind, n))] = {"kind": kind, "value": value(kind, n), "source": "bench", "confidence": 50,
                                        "description": None, "expires": None}
    return list(rows.values())


def retro_hunt(captures: int = 5000, per_capture: int = 200, indicators: int = 1000) -> dict:
    """Seconds to import (and retro-hunt) a feed of `indicators` new indicators over the corpus."""
    rng = random.Random(14)
    with tempfile.TemporaryDirectory(prefix="pt-bench-intel-") as tmp:
        db = Database.sqlite(Path(tmp) / "bench.sqlite")
        built = build(db, captures, per_capture, rng)
        rows = feed_rows(indicators, rng)
        t0 = time.perf_counter()
        feed = db.replace_feed("bench", "csv", "bench", {}, rows)
        hunt = time.perf_counter() - t0
        t0 = time.perf_counter()
        db.match_intel([f"{captures - 1:064x}"])
        ingest = time.perf_counter() - t0
        db.close()
    return {"captures": captures, "observables": captures * per_capture, "build_s": built,
            "indicators": feed["indicators"], "captures_hit": feed["captures"], "retro_hunt_s": hunt,
            "match_one_capture_s": ingest}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--captures", type=int, default=5000)
    ap.add_argument("--per-capture", type=int, default=200)
    ap.add_argument("--indicators", type=int, default=1000)
    a = ap.parse_args()
    r = retro_hunt(a.captures, a.per_capture, a.indicators)
    print(f"corpus: {r['captures']:,} captures, {r['observables']:,} observables, built in {r['build_s']:.1f} s")
    print(f"retro-hunt of {r['indicators']:,} new indicators over the corpus   {r['retro_hunt_s']:.3f} s   "
          f"({r['captures_hit']:,} captures hit; target < 2 s)")
    print(f"matching one new capture at ingest against them              {r['match_one_capture_s'] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
