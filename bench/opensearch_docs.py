"""OpenSearch backend benchmark, the part this machine can measure (no server runs here): what
preparing one event for the index costs the indexing process, side by side in one run, on the
EVE records of real captures (../shared/pcaps, analysed by Suricata on a fresh home):
  tantivy     TantivyEventStore._doc (the embedded index's document, built in Rust)
  opensearch  opensearch_requests.document + its bulk line's JSON, by the store's serialiser
              (orjson), and by the client's default one (json) for comparison
Median of --rounds passes over all records.
Usage: python bench/opensearch_docs.py [--rounds N] [capture ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from opensearchpy.serializer import JSONSerializer  # noqa: E402

from packettotal import config  # noqa: E402
from packettotal.service import PacketTotal  # noqa: E402
from packettotal.store.events import opensearch_requests as req  # noqa: E402
from packettotal.store.events.opensearch import OrjsonSerializer  # noqa: E402
from packettotal.store.events.tantivy import TantivyEventStore  # noqa: E402

PCAPS = (ROOT / ".." / "shared" / "pcaps").resolve()


def records(names: list[str]) -> list[dict]:
    with tempfile.TemporaryDirectory() as home:
        pt = PacketTotal(config.load(env={}, home=Path(home), engines=1))
        try:
            out: list[dict] = []
            for name in names:
                sub = pt.submit(PCAPS / name, name)
                cap = sub.capture if sub.capture["status"] == "done" else pt.analyse(sub.capture["id"])
                out += pt.export_events(cap["id"])
            return out
        finally:
            pt.close()


def timed(build, recs: list[dict], rounds: int) -> float:
    runs = []
    for _ in range(rounds):
        t = time.perf_counter()
        for n, r in enumerate(recs, 1):
            build(n, r)
        runs.append(time.perf_counter() - t)
    return statistics.median(runs) / len(recs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("captures", nargs="*", default=["cs-http_espn.pcapng", "cs-ek_to_cryptowall4.pcapng"])
    a = ap.parse_args()
    recs = records(a.captures)
    with tempfile.TemporaryDirectory() as d:
        store = TantivyEventStore(Path(d))
        tantivy = timed(lambda n, r: store._doc("c", n, r), recs, a.rounds)
        store.close()
    fast, default = OrjsonSerializer(), JSONSerializer()
    opensearch = timed(lambda n, r: fast.dumps(req.document("c", n, r)), recs, a.rounds)
    stdlib = timed(lambda n, r: default.dumps(req.document("c", n, r)), recs, a.rounds)
    print(f"{len(recs)} events of {', '.join(a.captures)}, median of {a.rounds} passes")
    print(f"tantivy     {tantivy * 1e6:8.1f} µs/event  1.00")
    print(f"opensearch  {opensearch * 1e6:8.1f} µs/event  {opensearch / tantivy:.2f}")
    print(f"  with json {stdlib * 1e6:8.1f} µs/event  {stdlib / tantivy:.2f}")


if __name__ == "__main__":
    main()
