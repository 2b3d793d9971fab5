"""What the detectors of ingest/findings.py cost: the ingest pipeline over the EVE records of the
dev captures with the detectors and without them, side by side, and what that is of an analysis.

1. The dev captures are analysed once (`packettotal analyze`, a batch) into a fresh home: its
   wall time is the end-to-end reference.
2. Their records, exported from the index as EVE lines, go through `pipeline.Accumulator` (what
   the service runs on a daemon's lines) in rounds, alternately with the detectors and with them
   replaced by a no-op; best of the rounds each.
Usage: python bench/findings.py [--rounds 5] [--capture PATH ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import EXE, small_captures  # noqa: E402

from packettotal import config  # noqa: E402
from packettotal.ingest import pipeline  # noqa: E402
from packettotal.service import PacketTotal  # noqa: E402


class _NoDetectors:
    def add(self, rec: dict) -> None:
        pass

    def result(self) -> list[dict]:
        return []


def run(lines: list[bytes], detectors: bool) -> tuple[float, int]:
    acc = pipeline.Accumulator(pipeline.Limits())
    if not detectors:
        acc.detectors = _NoDetectors()  # type: ignore[assignment]
    t0 = time.process_time()
    n = sum(1 for _ in acc.records(lines))
    found = len(acc.detectors.result())
    return time.process_time() - t0, found if detectors else n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--capture", type=Path, action="append", help="captures (default: the small dev captures)")
    args = ap.parse_args()
    pcaps = args.capture or small_captures()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        env = {**os.environ, "PACKETTOTAL_HOME": str(home)}
        t0 = time.monotonic()
        subprocess.run([str(EXE), "analyze", "--json", *map(str, pcaps)], env=env, capture_output=True, check=False)
        batch = time.monotonic() - t0
        pt = PacketTotal(config.load(env={}, home=home))
        try:
            lines = [orjson.dumps(e) for c in pt.list_captures(status="done", limit=10_000)
                     for e in pt.export_events(c["id"])]
        finally:
            pt.close()
    with_, without = [], []
    for i in range(args.rounds):
        for on in ((True, False) if i % 2 == 0 else (False, True)):
            (with_ if on else without).append(run(lines, on)[0])
    best_with, best_without = min(with_), min(without)
    found = run(lines, True)[1]
    print(f"{len(pcaps)} captures, {len(lines):,} EVE records; `packettotal analyze` batch {batch:.2f} s wall")
    print(f"  pipeline without detectors {best_without:.3f} s CPU   with them {best_with:.3f} s CPU   "
          f"ratio {best_with / best_without:.2f}x   ({found} findings)")
    print(f"  the detectors' share of the batch: {(best_with - best_without) / batch:.1%} "
          f"(end to end with / without: {batch / (batch - (best_with - best_without)):.3f}x; target <= 1.3x)")


if __name__ == "__main__":
    main()
