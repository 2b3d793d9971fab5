"""Capture-list benchmark: the /captures filters (GET /api/v1/captures) over a database of
synthetic captures built through the database layer (no Suricata: capture rows with a summary
the size of a real one, then `finish_captures` as an analysis records them, a label on one in
fifty), each filter's page and total timed with the list's indexes and again with them dropped
(what a database without them does: scans of the captures table, whose rows hold summaries).

Usage: python bench/listing.py [--captures 50000] [--runs 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import sqlalchemy as sa  # noqa: E402

from packettotal import listing  # noqa: E402
from packettotal.store.db import Database  # noqa: E402

LIST_INDEXES = ("ix_captures_submitted", "ix_captures_status_submitted", "ix_captures_finished", "ix_captures_name")
FILTERS = {
    "newest 50 (no filter)": {},
    "name contains 'beacon'": {"text": "beacon"},
    "label family:emotet": {"label": "family:emotet"},
    "has alerts": {"has_alerts": True},
    "status failed": {"status": "failed"},
    "submitted in one week": {"submitted_from": "2026-03-01", "submitted_to": "2026-03-07"},
    "analysed in one day, with alerts": {"analysed_from": "2026-03-03", "analysed_to": "2026-03-03",
                                         "has_alerts": True},
}


def build(db: Database, n: int, rng: random.Random) -> float:
    t0 = time.perf_counter()
    start = dt.datetime(2026, 1, 1)
    filler = {"signatures": [{"sid": i, "signature": "x" * 80} for i in range(20)], "counts": {"flow": 100}}
    done = []
    for c in range(n):
        cid = f"{c:064x}"
        at = start + dt.timedelta(minutes=5 * c)
        word = rng.choice(("beacon", "office", "lab", "sandbox", "honeypot", "mail", "dns"))
        status = "failed" if rng.random() < 0.02 else "done"
        db.insert_capture({"id": cid, "md5": cid[:32], "sha1": cid[:40], "name": f"{word}-{c}.pcapng", "size": 1,
                           "status": "running", "warnings": [], "attempts": 1, "submitted_at": at})
        alerts = rng.randrange(1, 50) if rng.random() < 0.1 else 0
        done.append({"id": cid, "observables": [], "files": [], "status": status, "error": None, "warnings": [],
                     "summary": {**filler, "alerts": alerts}, "finished_at": at + dt.timedelta(minutes=1)})
        if c % 50 == 0:
            db.add_label({"capture_id": cid, "kind": "family", "value": rng.choice(("Emotet", "Qakbot")),
                          "note": None, "author": None, "source": "cli"})
        if len(done) == 1000:
            db.finish_captures(done)
            done = []
    db.finish_captures(done)
    return time.perf_counter() - t0


def timed(db: Database, runs: int) -> dict[str, tuple[float, int]]:
    out = {}
    for label, kw in FILTERS.items():
        f = listing.make(**{"has_alerts": kw.get("has_alerts"), "text": kw.get("text"), "label": kw.get("label"),
                            "status": kw.get("status"), "submitted_from": kw.get("submitted_from"),
                            "submitted_to": kw.get("submitted_to"), "analysed_from": kw.get("analysed_from"),
                            "analysed_to": kw.get("analysed_to")})
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            total, _rows = db.find_captures(f, 50, 0)
            times.append(time.perf_counter() - t0)
        out[label] = (statistics.median(times), total)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--captures", type=int, default=50_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database.sqlite(Path(tmp) / "bench.sqlite")
        took = build(db, args.captures, random.Random(7))
        print(f"{args.captures:,} captures built in {took:.1f} s")
        indexed = timed(db, args.runs)
        with db.engine.begin() as conn:
            for name in LIST_INDEXES:
                conn.execute(sa.text(f"DROP INDEX {name}"))
            conn.execute(sa.text("ANALYZE"))
        bare = timed(db, args.runs)
        db.close()
    print(f"{'filter':36} {'matches':>8} {'indexed ms':>11} {'no index ms':>12} {'ratio':>6}")
    for label in FILTERS:
        (t_i, total), (t_b, _) = indexed[label], bare[label]
        print(f"{label:36} {total:8,} {t_i * 1e3:11.1f} {t_b * 1e3:12.1f} {t_b / t_i:6.1f}")


if __name__ == "__main__":
    main()
