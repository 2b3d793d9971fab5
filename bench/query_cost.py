"""The most expensive queries the parser's bounds let through (query/lucene.py: MAX_WILDCARDS,
MAX_WILDCARD_SIGNS, MAX_CLAUSES, MAX_DEPTH), timed on a synthetic event index, with an ordinary
query beside them for the ratio. Events carry high-cardinality values (host names, URLs, hashes,
user agents) so that the term dictionaries a wildcard walks are as large as real ones.

Each query is timed twice in one run: in-process with no limit (what it really costs), and as the
service runs it, under the time budget (setting query_seconds): the answer, or the 503, comes
within the budget.

Usage: python bench/query_cost.py [--events 200000] [--runs 1] [--budget 10]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import string
import tempfile
import time
from pathlib import Path

from packettotal.errors import QueryTimeout
from packettotal.query import lucene
from packettotal.store.events.tantivy import TantivyEventStore


def words(rng: random.Random, n: int) -> str:
    return "".join(rng.choices(string.ascii_lowercase + string.digits, k=n))


def corpus(n: int, per_capture: int = 1000):
    rng = random.Random(7)
    for c in range(n // per_capture):
        cid = hashlib.sha256(str(c).encode()).hexdigest()
        recs = []
        for i in range(per_capture):
            host = f"{words(rng, 8)}.{words(rng, 6)}.com"
            recs.append({
                "timestamp": f"2024-01-{1 + i % 28:02d}T10:00:{i % 60:02d}.000000+0000", "event_type": "http",
                "src_ip": f"10.{c % 256}.{i % 256}.{rng.randrange(256)}", "dest_ip": f"203.0.113.{rng.randrange(256)}",
                "src_port": rng.randrange(1024, 65535), "dest_port": 80, "proto": "TCP",
                "http": {"hostname": host, "url": f"/{words(rng, 10)}/{words(rng, 12)}.php?id={rng.randrange(10**9)}",
                         "http_user_agent": f"Mozilla/5.0 ({words(rng, 6)}) {words(rng, 10)}/{rng.randrange(100)}",
                         "status": 200, "length": rng.randrange(10**6)},
                "fileinfo": {"sha256": hashlib.sha256(f"{c}-{i}".encode()).hexdigest()},
            })
        yield cid, recs


WORST = {
    "ordinary: http.hostname:*.com AND dest_port:80": "http.hostname:*.com AND dest_port:80",
    "8 free-text wildcards *a* OR ... (MAX_WILDCARDS)": "(" + " OR ".join(f"*{c}*" for c in "abcdefgh") + ")",
    "8 free-text wildcards of 8 signs each": "(" + " OR ".join(f"*{c}?*?*?*?" for c in "abcdefgh") + ")",
    "8 keyword wildcards *a* on http.url": "(" + " OR ".join(f"http.url:*{c}*" for c in "abcdefgh") + ")",
    f"{lucene.MAX_CLAUSES} free-text terms OR": "(" + " OR ".join(f"t{i}" for i in range(lucene.MAX_CLAUSES - 1)) + ")",
    f"{lucene.MAX_DEPTH}-deep nesting": "(" * (lucene.MAX_DEPTH - 1) + "http" + ")" * (lucene.MAX_DEPTH - 1),
    "NOT of everything": "NOT src_ip:0.0.0.0/0",
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--budget", type=float, default=10.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="pt-bench-qcost-") as tmp:
        store = TantivyEventStore(Path(tmp))
        t0 = time.perf_counter()
        for cid, recs in corpus(args.events):
            store.index_capture(cid, recs)
        store.commit()
        print(f"indexed {args.events:,} events in {time.perf_counter() - t0:.1f} s")
        store.close()
        unlimited = TantivyEventStore(Path(tmp))
        budgeted = TantivyEventStore(Path(tmp), query_seconds=args.budget)
        budgeted.search(lucene.parse("x*"), limit=1)  # start the query processes
        base = None
        print(f"{'query':55s} {'no limit':>12s} {'ratio':>7s} {'budget ' + str(args.budget) + ' s':>16s}")
        for name, q in WORST.items():
            node = lucene.parse(q)
            med = statistics.median(timed(unlimited, node) for _ in range(args.runs))
            base = base or med
            t = time.perf_counter()
            try:
                timed(budgeted, node)
                outcome = "answered"
            except QueryTimeout:
                outcome = "503"
            print(f"{name:55s} {med * 1000:9.0f} ms x{med / base:6.1f} "
                  f"{(time.perf_counter() - t) * 1000:9.0f} ms {outcome}")
        unlimited.close()
        budgeted.close()


def timed(store: TantivyEventStore, node) -> float:
    t = time.perf_counter()
    store.hits_by_capture(node, size=10_001)
    store.search(node, limit=50)
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
