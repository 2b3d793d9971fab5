"""Scale-out benchmark: the dev captures (and the big capture, when bench/ingest.py's big_capture
exists already or --big builds it) through Celery workers on Redis, with 1 and 2 `packettotal
worker` processes (one Suricata daemon and one task thread each), side by side: captures/s,
MB/s and the ratio. Timed from the first task sent to the last capture final, on workers whose
daemons are ready (started and warmed before the clock starts).
Usage: python bench/scale.py [--broker redis://127.0.0.1:6379/0] [--big]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import OUT, big_capture, small_captures  # noqa: E402

from packettotal import config  # noqa: E402
from packettotal.instance import open_jobs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _workers(home: Path, broker: str, n: int, log: Path) -> list[subprocess.Popen]:
    env = {**os.environ, "PACKETTOTAL_BROKER_URL": broker, "PACKETTOTAL_ENGINES": "1",
           "PYTHONPATH": str(ROOT / "src")}
    return [subprocess.Popen([sys.executable, "-m", "packettotal", "--home", str(home), "worker", "--concurrency", "1"],
                             env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
            for _ in range(n)]


def _ready(log: Path, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while log.read_text(errors="replace").count(" ready.") < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"workers not ready: {log.read_text()[-2000:]}")
        time.sleep(0.2)


def run(paths: list[Path], broker: str, n: int) -> tuple[float, int, int]:
    """(seconds, captures done, bytes) for one batch on n workers."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        settings = config.load(env={}, home=home, engines=1, broker_url=broker)
        jobs = open_jobs(settings)
        log = Path(tmp) / "workers.log"
        log.touch()
        procs = _workers(home, broker, n, log)
        try:
            _ready(log, n)
            ids = [jobs.service.submit(p, p.name).capture["id"] for p in paths]
            t0 = time.perf_counter()
            rows = jobs.run(ids)
            wall = time.perf_counter() - t0
            done = sum(r["status"] == "done" for r in rows)
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                p.wait(120)
            jobs.close()
            jobs.service.close()
    return wall, done, sum(p.stat().st_size for p in paths)


def report(name: str, paths: list[Path], broker: str) -> None:
    one = run(paths, broker, 1)
    two = run(paths, broker, 2)
    for n, (wall, done, size) in ((1, one), (2, two)):
        print(f"{name}: {n} worker(s): {done}/{len(paths)} done in {wall:.2f} s: "
              f"{done / wall:.2f} captures/s, {size / wall / 1e6:.2f} MB/s")
    print(f"{name}: 2 workers / 1 worker throughput: {one[0] / two[0]:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", default=os.environ.get("PACKETTOTAL_TEST_BROKER_URL", "redis://127.0.0.1:6379/0"))
    ap.add_argument("--big", action="store_true", help="build the big capture if it is not there")
    args = ap.parse_args()
    print(f"cores: {os.cpu_count()}")
    report("dev captures", small_captures(), args.broker)
    big = OUT / "big-capture" / "big.pcap"
    if args.big or big.exists() or (OUT / "big.pcap").exists():
        path = big_capture()
        report(f"big capture ({path.stat().st_size / 1e6:.0f} MB)", [path], args.broker)


if __name__ == "__main__":
    main()
