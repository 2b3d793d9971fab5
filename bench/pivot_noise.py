"""Pivots without noise (query/noise.py): what leaving flow ids and multicast/broadcast/link-local
addresses out of co-occurrence and similar-capture scores costs and changes, side by side with the
behaviour before (the same calls with the noise test switched off).

The corpus is synthetic, in the real database schema: captures of LAN traffic, each with its own
community ids and internal hosts, public hosts, domains and hashes from Zipf-like pools, and the
noise every Windows LAN capture holds (SSDP, mDNS, LLMNR, DHCPv6 multicast, 255.255.255.255, a
link-local address or two, solicited-node multicast).

Usage: python bench/pivot_noise.py [--captures 2000] [--runs 30]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

from packettotal.query import correlate, noise
from packettotal.store.db import Database, now

MULTICAST = ("239.255.255.250", "224.0.0.251", "224.0.0.252", "ff02::fb", "ff02::1:2", "ff02::1:3", "ff02::c",
             "255.255.255.255", "0.0.0.0", "224.0.0.22", "ff02::16")


def observables(cid: str, i: int, rng: random.Random) -> list[dict]:
    def zipf(n: int) -> int:
        return min(int(rng.paretovariate(1.1)) - 1, n - 1)

    values = {("ip", f"10.{i >> 8 & 255}.{i & 255}.{k}") for k in range(1, 6)}
    values |= {("community_id", f"1:{cid[:8]}{k}=") for k in range(40)}
    values |= {("ip", f"45.{zipf(60_000) >> 8 & 255}.{zipf(60_000) & 255}.9") for _ in range(60)}
    values |= {("domain", f"d{zipf(80_000)}.example.com") for _ in range(80)}
    values |= {("sha256", f"{zipf(20_000):064x}") for _ in range(10)}
    values |= {("ip", m) for m in MULTICAST if rng.random() < 0.7}
    # link-local hosts and their solicited-node groups: the same few hundred devices (VMs, printers) recur
    values |= {("ip", f"169.254.0.{rng.randrange(1, 200)}"), ("ip", f"fe80::{rng.randrange(300):x}"),
               ("ip", f"ff02::1:ff00:{rng.randrange(300):x}")}
    return [{"capture_id": cid, "kind": k, "value": v, "field": "src_ip" if k == "ip" else k, "count": 1,
             "first_seen": None, "last_seen": None} for k, v in values]


def build(db: Database, n: int) -> list[str]:
    rng, ids, batch = random.Random(7), [], []
    for i in range(n):
        cid = f"{i:064x}"
        db.insert_capture({"id": cid, "md5": cid[:32], "sha1": cid[:40], "name": f"c{i}", "size": 1,
                           "status": "running", "submitted_at": now(), "warnings": []})
        batch.append({"id": cid, "observables": observables(cid, i, rng), "files": [], "status": "done",
                      "summary": {"broadcasts": []}})
        ids.append(cid)
        if len(batch) == 200:
            db.finish_captures(batch)
            batch = []
    if batch:
        db.finish_captures(batch)
    return ids


@contextlib.contextmanager
def as_before(on: bool):
    """The calls as they were (on): no kind, pattern or value left out."""
    with contextlib.ExitStack() as stack:
        if on:
            for name, value in (("is_noise", lambda *_: False), ("KINDS", frozenset()), ("IP_PATTERNS", ())):
                stack.enter_context(mock.patch.object(noise, name, value))
        yield


def timed(f) -> tuple[float, object]:
    t = time.perf_counter()
    out = f()
    return (time.perf_counter() - t) * 1000, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--captures", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=30)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="pt-bench-noise-") as tmp:
        db = Database.sqlite(Path(tmp) / "db.sqlite")
        t = time.perf_counter()
        ids = build(db, a.captures)
        print(f"{a.captures} captures, {sum(len(db.capture_observables(c)) for c in ids[:10]) // 10} observables "
              f"each, built in {time.perf_counter() - t:.1f} s")
        holders = ids[:correlate.CO_OCCUR_FROM]
        calls = {"co": lambda: correlate.co_occurring(db, holders, [], 25),
                 "sim": lambda: correlate.similar(db, ids[0])}
        times: dict[tuple[bool, str], list[float]] = {(b, k): [] for b in (True, False) for k in calls}
        last: dict[tuple[bool, str], object] = {}
        for _ in range(a.runs):  # before and now alternate: the machine's load falls on both alike
            for before in (True, False):
                with as_before(before):
                    for k, f in calls.items():
                        ms, last[before, k] = timed(f)
                        times[before, k].append(ms)
        rows = []
        for label, before in (("before (noise kept)", True), ("now (noise left out)", False)):
            co, sim = last[before, "co"], last[before, "sim"]
            assert isinstance(co, list) and isinstance(sim, list)
            co_ms, sim_ms = (statistics.median(times[before, k]) for k in ("co", "sim"))
            co_noise = sum(noise.noise_ip(r["value"]) or r["kind"] in noise.KINDS for r in co)
            reasons = [r for s in sim for r in s.shared]
            rows.append((label, co_ms, co_noise, len(co), sim_ms, len(sim),
                         sum(noise.noise_ip(r["value"]) or r["kind"] in noise.KINDS for r in reasons), len(reasons),
                         sum(all(noise.noise_ip(r["value"]) for r in s.shared) for s in sim),
                         sim[0].score if sim else 0))
        print(f"{'':24}{'co-occurring p50':>18}{'noise in top 25':>17}{'similar p50':>13}{'listed':>8}"
              f"{'by noise alone':>16}{'noise reasons':>15}{'top score':>11}")
        for label, co_ms, co_noise, co_n, sim_ms, sim_n, sim_noise, reasons, alone, top in rows:
            print(f"{label:24}{co_ms:15.1f} ms{co_noise:>11}/{co_n:<5}{sim_ms:10.1f} ms{sim_n:>8}{alone:>16}"
                  f"{sim_noise:>9}/{reasons:<5}{top:>11.4f}")
        print(f"ratio now/before: co-occurring {rows[1][1] / rows[0][1]:.2f}, similar {rows[1][4] / rows[0][4]:.2f}")
        db.close()


if __name__ == "__main__":
    main()
