"""Search benchmark: an index of at least 5 million events over at least 5,000 captures, then
p50/p95 latencies of what the search pages do.

The corpus: the small dev captures are analysed once by real Suricata; each synthetic capture is
then several of those analyses (about 1,000 events) with addresses, names and hashes remapped:
internal addresses per capture, internet hosts, domains and file hashes drawn from pools with a
Zipf popularity (so a few values are everywhere, like public resolvers, and most are rare), and
flow ids and community ids unique per capture. Records go through the same normalisation,
observable extraction and stores as an analysis (`PacketTotal` internals), only Suricata is
skipped. The corpus is built once under bench/out/search-home and reused (--rebuild to redo).

Usage: python bench/search.py [--captures 5000] [--events-per-capture 1000] [--runs 50] [--rebuild]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import ipaddress
import random
import shutil
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import OUT, small_captures  # noqa: E402

from packettotal import config  # noqa: E402
from packettotal.ingest import observables, pipeline  # noqa: E402
from packettotal.jobs.local import LocalJobs  # noqa: E402
from packettotal.service import PacketTotal, _Indexed  # noqa: E402
from packettotal.store.db import now  # noqa: E402
from packettotal.web import counts as panels, tabs  # noqa: E402

HOME = OUT / "search-home"
ADDRESS_FIELDS = ("src_ip", "dest_ip")


def templates() -> list[list[dict]]:
    """EVE records (less stats) of every small dev capture, analysed by real Suricata."""
    with tempfile.TemporaryDirectory(prefix="pt-bench-templates-") as tmp:
        pt = PacketTotal(config.load(env={}, home=Path(tmp)))
        ids = []
        for p in small_captures():
            try:
                ids.append(pt.submit(p, p.name).capture["id"])
            except Exception:
                continue
        jobs = LocalJobs(pt)
        jobs.run(ids)
        jobs.close()
        out = [[r for r in pt.export_events(cid) if r.get("event_type") != "stats"] for cid in ids]
        pt.close()
    return [t for t in out if t]


class Pools:
    """Values shared across synthetic captures, with Zipf-like popularity."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.hosts = [str(ipaddress.IPv4Address(0x2D000000 + i * 7919)) for i in range(200_000)]
        self.domains = [f"{w}{i}.{tld}" for i, (w, tld) in enumerate(
            (rng.choice(("cdn", "api", "mail", "update", "img", "shop", "news", "login", "static", "x")),
             rng.choice(("com", "net", "org", "io", "ru", "cn", "xyz", "top")))
            for _ in range(300_000))]
        self.files = [hashlib.sha256(f"file{i}".encode()).hexdigest() for i in range(50_000)]

    def pick(self, pool: list[str]) -> str:
        # rank ~ Pareto: a handful of values in most captures, a long tail in one or two
        i = int(self.rng.paretovariate(1.1)) - 1
        return pool[i % len(pool)] if i < len(pool) else pool[self.rng.randrange(len(pool))]


class Remap:
    """One synthetic capture's consistent renaming of a template's values."""

    def __init__(self, pools: Pools, n: int):
        self.pools, self.n = pools, n
        self.map: dict[str, str] = {}

    def ip(self, v: str) -> str:
        if v not in self.map:
            try:
                addr = ipaddress.ip_address(v)
            except ValueError:
                return v
            if addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_multicast:
                h = zlib.crc32(v.encode())
                self.map[v] = f"10.{self.n % 250}.{h % 250}.{(self.n // 250 + h) % 250}" if addr.version == 4 else v
            else:
                self.map[v] = self.pools.pick(self.pools.hosts)
        return self.map[v]

    def domain(self, v: str) -> str:
        if v not in self.map:
            d = observables.norm_domain(v)
            self.map[v] = self.pools.pick(self.pools.domains) if d else v
        return self.map[v]

    def file(self, v: str) -> str:
        if v not in self.map:
            self.map[v] = self.pools.pick(self.pools.files)
        return self.map[v]


def remapped(template: list[dict], remap: Remap, base_flow: int) -> list[dict]:
    out = []
    for rec in template:
        r = copy.deepcopy(rec)
        for k in ADDRESS_FIELDS:
            if isinstance(r.get(k), str):
                r[k] = remap.ip(r[k])
        if isinstance(r.get("flow_id"), int):
            r["flow_id"] = base_flow + r["flow_id"] % 1_000_000
        if isinstance(r.get("community_id"), str):
            r["community_id"] = "1:" + hashlib.sha1(f"{remap.n}{r['community_id']}".encode()).hexdigest()[:27] + "="
        dns = r.get("dns")
        if isinstance(dns, dict):
            if isinstance(dns.get("rrname"), str):
                dns["rrname"] = remap.domain(dns["rrname"])
            for q in dns.get("queries") or []:
                if isinstance(q, dict) and isinstance(q.get("rrname"), str):
                    q["rrname"] = remap.domain(q["rrname"])
            for a in dns.get("answers") or []:
                if isinstance(a, dict):
                    if isinstance(a.get("rrname"), str):
                        a["rrname"] = remap.domain(a["rrname"])
                    if isinstance(a.get("rdata"), str):
                        rdata = a["rdata"]
                        a["rdata"] = remap.ip(rdata) if observables.norm_ip(rdata) else remap.domain(rdata)
        for app, key in (("http", "hostname"), ("tls", "sni")):
            obj = r.get(app)
            if isinstance(obj, dict) and isinstance(obj.get(key), str):
                obj[key] = remap.domain(obj[key])
        fi = r.get("fileinfo")
        if isinstance(fi, dict) and isinstance(fi.get("sha256"), str):
            sha = remap.file(fi["sha256"])
            fi["sha256"], fi["md5"], fi["sha1"] = sha, sha[:32], sha[:40]
        out.append(r)
    return out


def index_synthetic(pt: PacketTotal, cid: str, records: list[dict]) -> None:
    """What `PacketTotal._analyse` does with a daemon's EVE lines, fed these records instead:
    the ingest pipeline (normalise, count, observables, summary), the event index (hidden until
    committed), and a pending result that the next `flush()` commits and marks `done`."""
    s = pt.settings
    acc = pipeline.Accumulator(pipeline.Limits(s.max_string_bytes, s.max_events_per_capture,
                                               s.max_observables_per_capture))
    lines = (orjson.dumps(rec) for rec in records)
    pt._events.hide([cid])
    stored = pt._events.index_capture(cid, acc.records(lines))
    # no daemon, so no loaded rules: alerts are grouped without their rules' texts or classes
    outcome = acc.finish(cid, stored, pipeline.RunFacts(packets_read=len(records)), {}, {}, pt._reference_prefixes)
    done = {"id": cid, "observables": outcome.observables, "files": [], "status": "done", "error": None,
            "summary": outcome.summary.as_dict(), "warnings": outcome.warnings, "finished_at": now()}
    with pt._pending_lock:
        pt._pending.append(_Indexed(done, stored))


def build(home: Path, captures: int, per_capture: int, min_events: int, seed: int = 7) -> None:
    """Synthetic captures until there are at least `captures` of them and `min_events` events
    (an existing corpus is extended)."""
    rng = random.Random(seed)
    pools = Pools(rng)
    pt = PacketTotal(config.load(env={}, home=home))
    start = pt.count_captures()
    events = pt._events.index.searcher().num_docs
    if start >= captures and events >= min_events:
        pt.close()
        return
    rng.seed(seed + start)
    t0 = time.perf_counter()
    temps = templates()
    print(f"templates: {len(temps)} captures analysed by Suricata, {sum(map(len, temps)):,} events "
          f"({time.perf_counter() - t0:.0f} s)")
    t0 = time.perf_counter()
    added = 0
    n = start
    while n < captures or events < min_events:
        remap = Remap(pools, n)
        records: list[dict] = []
        while len(records) < per_capture * rng.uniform(0.5, 1.5):
            t = rng.choice(temps)
            if len(t) > 3 * per_capture:  # a flood capture: take a slice
                first = rng.randrange(len(t) - per_capture)
                t = t[first:first + per_capture]
            records += remapped(t, remap, n * 10_000_000)
        cid = hashlib.sha256(f"synthetic-{seed}-{n}".encode()).hexdigest()
        pt._db.insert_capture({
            "id": cid, "md5": cid[:32], "sha1": cid[:40], "size": 0, "name": f"synthetic-{n:05}.pcap",
            "compression": None, "status": "running", "warnings": [], "attempts": 1, "submitted_at": now(),
            "summary": {}})
        index_synthetic(pt, cid, records)
        events += len(records)
        added += len(records)
        n += 1
        if n % 250 == 0:
            pt.flush()
            print(f"  {n:,} captures, {events:,} events, {added / (time.perf_counter() - t0):,.0f} events/s",
                  flush=True)
    pt.flush()
    print(f"  {n:,} captures, {events:,} events", flush=True)
    pt.close()


BROAD_SCANNED = (("event_type:dns", "dns.rrname"), ("event_type:http", "http.hostname"), ("event_type:tls", "tls.sni"),
                 ("event_type:alert", "alert.signature"), ("proto:udp", "dns.rcode"))
BROAD = ("event_type:flow", "proto:tcp", "event_type:dns", "app_proto:http", "proto:udp")


def biggest_tab(pt: PacketTotal, cid: str) -> tuple[dict, str]:
    """A capture and its tab with the most events."""
    cap = pt.capture(cid)
    counts = tabs.counts_of(cap["summary"] or {})
    return cap, max((t for t in counts if t not in tabs.HIDDEN), key=lambda t: counts[t])


def timed(fn, values: list) -> tuple[float, float]:
    out = []
    for v in values:
        t0 = time.perf_counter()
        fn(v)
        out.append((time.perf_counter() - t0) * 1000)
    out.sort()
    return statistics.median(out), out[min(len(out) - 1, int(0.95 * len(out)))]


def measure(home: Path, runs: int, seed: int = 11) -> None:
    rng = random.Random(seed)
    pt = PacketTotal(config.load(env={}, home=home))
    ids = [c["id"] for c in pt.list_captures(status="done", limit=1_000_000)]
    total_events = pt._events.index.searcher().num_docs
    print(f"\ncorpus: {len(ids):,} captures, {total_events:,} events")
    sample = rng.sample(ids, min(runs, len(ids)))
    values = {kind: [] for kind in ("ip", "domain", "sha256", "ja3", "url")}
    for cid in rng.sample(ids, min(200, len(ids))):
        for r in pt._db.capture_observables(cid):
            if r["kind"] in values and len(values[r["kind"]]) < 400:
                values[r["kind"]].append(r["value"])
    iocs = [rng.choice(values[k]) for k in rng.choices(list(k for k in values if values[k]), k=runs)]
    domains = [d for d in values["domain"] if d.count(".") >= 1]
    queries = {
        "exact IOC pivot (captures holding it: where, counts, first/last)": (
            lambda v: pt.ioc(v, co_occurring=False), iocs),
        "IOC pivot page data (the above + co-occurring indicators)": (pt.ioc, iocs),
        "wildcard domain query, grouped by capture": (
            lambda d: pt.search(f"dns.rrname:*.{d.split('.', 1)[1]}", limit=50),
            [rng.choice(domains) for _ in range(runs)]),
        "free text, grouped by capture": (
            lambda w: pt.search(w, limit=50), [rng.choice(("mozilla", "windows", "update", "login", "gecko",
                                                           "apache", "jquery", "cookie")) for _ in range(runs)]),
        "boolean with CIDR, grouped by capture": (
            lambda i: pt.search(f"event_type:flow AND src_ip:10.{i}.0.0/16 AND NOT dest_port:53", limit=50),
            [rng.randrange(250) for _ in range(runs)]),
        "per-capture summary (capture, top indicators, labels)": (
            lambda cid: (pt.capture(cid), pt.top_indicators(cid), pt.labels(cid)), sample),
        "similar captures": (lambda cid: pt.similar(cid, 20), sample),
        "top values, broad search, field without a column (<= 10,000 read)": (
            lambda qf: pt.search_counts(qf[0], [qf[1]]),
            [rng.choice(BROAD_SCANNED) for _ in range(runs)]),
        "top values, broad search, columns (event_type, dest_ip, dest_port)": (
            lambda q: pt.search_counts(q, panels.SEARCH_DEFAULTS), [rng.choice(BROAD) for _ in range(runs)]),
        "top values, a capture's biggest tab (its default fields)": (
            lambda ct: pt.tab_counts(ct[0], ct[1], panels.defaults(ct[1])), [biggest_tab(pt, cid) for cid in sample]),
        "bulk search of 1,000 IOCs": (
            lambda seed_: pt.bulk_ioc(random.Random(seed_).sample(
                [v for vs in values.values() for v in vs], 1000)), list(range(max(5, runs // 5)))),
    }
    print(f"{'query':<66} {'p50 ms':>8} {'p95 ms':>8}   (runs)")
    for label, (fn, args) in queries.items():
        fn(args[0])  # warm
        p50, p95 = timed(fn, args)
        print(f"{label:<66} {p50:8.1f} {p95:8.1f}   ({len(args)})", flush=True)
    pt.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--captures", type=int, default=5000)
    ap.add_argument("--events-per-capture", type=int, default=1000)
    ap.add_argument("--min-events", type=int, default=5_000_000)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--home", type=Path, default=HOME, help="where the corpus is built and kept")
    args = ap.parse_args()
    if args.rebuild:
        shutil.rmtree(args.home, ignore_errors=True)
    build(args.home, args.captures, args.events_per_capture, args.min_events)  # nothing to do when built
    measure(args.home, args.runs)


if __name__ == "__main__":
    main()
