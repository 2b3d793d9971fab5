"""Spool benchmark: the dev captures (../shared/pcaps MANIFEST.tsv) analysed straight into the
event index vs through the spool (analyse_to_spool, then index_spooled as the indexer does), on
two fresh homes, one engine, side by side: seconds and the ratio.

Direct is `analyze`'s path (one group commit at the end); spool is what a worker or `analyze`
beside `serve` does (each capture's events written to a zstandard file, then read back and
indexed by the writer's process), split into its two halves.
Usage: python bench/spool.py [--limit N]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from packettotal import config  # noqa: E402
from packettotal.service import PacketTotal  # noqa: E402

PCAPS = (ROOT / ".." / "shared" / "pcaps").resolve()


def captures(limit: int | None) -> list[Path]:
    with open(PCAPS / "MANIFEST.tsv", newline="") as f:
        names = [row["file"] for row in csv.DictReader(f, delimiter="\t")]
    return [PCAPS / n for n in names if (PCAPS / n).is_file()][:limit]


def service(home: Path) -> PacketTotal:
    return PacketTotal(config.load(env={}, home=home, engines=1))


def submitted(pt: PacketTotal, paths: list[Path]) -> list[str]:
    ids = []
    for p in paths:
        try:
            ids.append(pt.submit(p, p.name).capture["id"])
        except Exception as exc:  # refused by validation: left out of both runs
            print(f"  skipped {p.name}: {exc}", file=sys.stderr)
    return list(dict.fromkeys(ids))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=None, help="the first N captures only")
    args = ap.parse_args()
    paths = captures(args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        direct, spooled = service(Path(tmp) / "direct"), service(Path(tmp) / "spool")
        try:
            ids = submitted(direct, paths)
            submitted(spooled, paths)
            direct.analyse(ids[0])  # the daemons start and load their rules outside the timings
            spooled.analyse_to_spool(ids[0])
            spooled.index_spooled()
            rest = ids[1:]
            t = time.perf_counter()
            for cid in rest:
                direct.analyse(cid, defer_commit=True)
            direct.flush()
            t_direct = time.perf_counter() - t
            t = time.perf_counter()
            for cid in rest:
                spooled.analyse_to_spool(cid)
            t_spool = time.perf_counter() - t
            spool_bytes = sum(f.stat().st_size for f in spooled.settings.spool_dir.rglob("*") if f.is_file())
            t = time.perf_counter()
            while spooled.index_spooled():
                pass
            t_index = time.perf_counter() - t
            events_d = sum(sum(direct._events.count_by_type(c).values()) for c in rest)
            events_s = sum(sum(spooled._events.count_by_type(c).values()) for c in rest)
            done_d = sum(direct.capture(c)["status"] == "done" for c in rest)
            done_s = sum(spooled.capture(c)["status"] == "done" for c in rest)
        finally:
            direct.close()
            spooled.close()
    total = t_spool + t_index
    print(f"{len(rest)} captures (after one to warm up), {events_d:,} events")
    print(f"{'':28}{'direct':>10}{'spool':>10}{'ratio':>8}")
    print(f"{'analyse + index (s)':28}{t_direct:10.2f}{total:10.2f}{total / t_direct:8.2f}")
    print(f"{'  analyse to spool (s)':28}{'':10}{t_spool:10.2f}")
    print(f"{'  index the spool (s)':28}{'':10}{t_index:10.2f}")
    print(f"{'events indexed':28}{events_d:10,}{events_s:10,}{events_s / max(events_d, 1):8.2f}")
    print(f"{'captures done':28}{done_d:10}{done_s:10}")
    print(f"spool size before indexing: {spool_bytes / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
