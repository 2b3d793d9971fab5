"""Web benchmark: a real server (uvicorn) on a fresh home, driven over HTTP like a browser would.

1. Upload -> analysis page ready, for each small dev capture, one after another: the time from
   the upload's response (the file is on the server) until the analysis page answers with the
   console. p50 and p95. Target: p50 under 1 s on a 2-core machine. Side by side in one run: a
   second server whose home has the ET Open set installed (`rules add` of the local folder,
   --etopen, default ../shared/rules/etopen) gets the same captures, alternately with the first,
   once both servers' daemons are ready (how long that took is printed). --no-etopen: one server.
2. Page times for a capture with many events (the big capture when bench/out holds it, else
   the largest dev capture): summary, first page of the largest tab, a deep page, a filtered
   page, a sorted page, and one API page by cursor. Median of 5 each.
Usage: python bench/web.py [--capture PATH] [--etopen PATH | --no-etopen]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import ETOPEN, OUT, small_captures  # noqa: E402

from packettotal import config  # noqa: E402
from packettotal.ingest import rules  # noqa: E402
from packettotal.web.app import create_app  # noqa: E402


@dataclass
class Served:
    base: str
    server: uvicorn.Server
    thread: threading.Thread
    ready: float  # seconds from start until every Suricata daemon was ready

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(60)


def serve(home: Path) -> Served:
    """A server on a free loopback port, returned once its daemons are ready."""
    t0 = time.perf_counter()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(config.load(env={}, home=home), seed_demo=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:  # start-up has handed each worker a daemon to warm up
        time.sleep(0.02)
    jobs = app.state.instance.jobs
    gate = threading.Barrier(jobs.service.settings.engines + 1)
    for _ in range(jobs.service.settings.engines):  # each runs once a worker's warm-up is done
        jobs.executor.submit(gate.wait)
    gate.wait()
    return Served(f"http://127.0.0.1:{port}", server, thread, time.perf_counter() - t0)


def install(home: Path, ruleset: Path) -> tuple[float, int]:
    """`packettotal rules add` of a local folder into a fresh home: (seconds, rules enabled)."""
    t0 = time.perf_counter()
    merged = rules.add(config.load(env={}, home=home, suricata_user=""), str(ruleset))
    return time.perf_counter() - t0, merged.enabled


def until_page(http: httpx.Client, cid: str, timeout: float) -> tuple[float, str]:
    """Seconds until /captures/<id> shows the console (or the failure), polling as the page does."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        status = http.get(f"/api/v1/captures/{cid}").json()["status"]
        if status in ("done", "failed"):
            page = http.get(f"/captures/{cid}")
            assert page.status_code == 200
            return time.perf_counter() - t0, status
        time.sleep(0.02)
    raise TimeoutError(cid)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def upload_to_page(clients: dict[str, httpx.Client]) -> dict[str, list[float]]:
    """Each capture uploaded to every server in turn (who goes first alternates); the seconds
    until each page was ready, per server."""
    times: dict[str, list[float]] = {label: [] for label in clients}
    failed = dict.fromkeys(clients, 0)
    for i, path in enumerate(small_captures()):
        order = list(clients) if i % 2 == 0 else list(reversed(clients))
        for label in order:
            with open(path, "rb") as f:
                r = clients[label].post("/api/v1/captures", files={"file": (path.name, f)})
            if r.status_code not in (202, 303):
                continue  # refused: nothing to wait for
            seconds, status = until_page(clients[label], r.json()["id"], 120)
            failed[label] += status == "failed"
            times[label].append(seconds)
    n = len(next(iter(times.values())))
    print(f"1. upload complete -> analysis page ready, {n} small dev captures, one at a time"
          + (", alternately to each server" if len(clients) > 1 else ""))
    for label, values in times.items():
        print(f"  {label:<18} p50 {pct(values, .5) * 1000:7.0f} ms   p95 {pct(values, .95) * 1000:7.0f} ms   "
              f"max {max(values) * 1000:7.0f} ms   ({failed[label]} ended failed)   target p50 < 1000 ms")
    return times


def median_ms(http: httpx.Client, url: str, params: dict | None = None, runs: int = 5) -> float:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = http.get(url, params=params)
        out.append(time.perf_counter() - t0)
        assert r.status_code == 200, (url, r.status_code, r.text[:200])
    return statistics.median(out) * 1000


def page_times(http: httpx.Client, capture: Path) -> None:
    t0 = time.perf_counter()
    with open(capture, "rb") as f:
        r = http.post("/api/v1/captures", files={"file": (capture.name, f)}, timeout=600)
    cid = r.json()["id"]
    known = r.status_code == 303
    until_page(http, cid, 3600)
    row = http.get(f"/api/v1/captures/{cid}").json()
    counts = row["summary"]["counts"]
    biggest = max((t for t in counts if t != "stats"), key=counts.get)
    n = counts[biggest]
    deep = max(1, n // 50 // 2)
    print(f"\n2. page times, {capture.name}: {row['summary']['events']:,} events "
          f"({'analysed in part 1' if known else f'upload + analysis {time.perf_counter() - t0:.1f} s'}), "
          f"largest tab {biggest} ({n:,})")
    rows = [
        ("summary page", f"/captures/{cid}", None),
        (f"{biggest} tab, page 1", f"/captures/{cid}/tab/{biggest}", None),
        (f"{biggest} tab, page {deep:,} (middle)", f"/captures/{cid}/tab/{biggest}", {"page": deep}),
        (f"{biggest} tab, filtered dest_port:[1 TO 1023]", f"/captures/{cid}/tab/{biggest}",
         {"q": "dest_port:[1 TO 1023]"}),
        (f"{biggest} tab, sorted by dest_port desc", f"/captures/{cid}/tab/{biggest}",
         {"sort": "dest_port", "order": "desc"}),
        ("API events, 100 by cursor", f"/api/v1/captures/{cid}/events", {"type": biggest, "limit": 100}),
    ]
    for label, url, params in rows:
        print(f"  {label:<52} {median_ms(http, url, params):8.1f} ms (median of 5)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--capture", type=Path, help="capture with many events for part 2")
    ap.add_argument("--etopen", type=Path, default=ETOPEN,
                    help="a folder of .rules files for the second server (default: the ET Open snapshot)")
    ap.add_argument("--no-etopen", action="store_true", help="one server, without a threat ruleset")
    args = ap.parse_args()
    big = OUT / "big-capture" / "big.pcap"
    many = args.capture or (big if big.exists() else max(small_captures(), key=lambda p: p.stat().st_size))
    with tempfile.TemporaryDirectory(prefix="pt-bench-web-") as tmp:
        servers = {"without a ruleset": serve(Path(tmp) / "plain")}
        print(f"daemons ready without a ruleset: {servers['without a ruleset'].ready:.1f} s")
        if not args.no_etopen:
            took, enabled = install(Path(tmp) / "etopen", args.etopen)
            servers["with ET Open"] = serve(Path(tmp) / "etopen")
            print(f"daemons ready with {args.etopen} ({enabled:,} rules enabled; rules add took {took:.1f} s "
                  f"before): {servers['with ET Open'].ready:.1f} s")
        clients = {label: httpx.Client(base_url=s.base, timeout=120) for label, s in servers.items()}
        try:
            times = upload_to_page(clients)
            if len(times) > 1:
                plain, et = times.values()
                print(f"  ratio with / without ET Open: p50 {pct(et, .5) / pct(plain, .5):.2f}x, "
                      f"p95 {pct(et, .95) / pct(plain, .95):.2f}x")
            page_times(clients["without a ruleset"], many)
        finally:
            for c in clients.values():
                c.close()
            for s in servers.values():
                s.stop()


if __name__ == "__main__":
    main()
