"""Ingest benchmark: bare Suricata vs PacketTotal, side by side in one run.

1. The big capture (../shared/pcaps/make_big.sh): `suricata -r` with PacketTotal's own generated
   config and rules, vs `packettotal analyze` end to end (validate, hash, Suricata, normalise,
   index, commit). Target: at most 1.25x bare Suricata's wall time.
2. The small dev captures in one batch: `packettotal analyze` (long-lived engines) vs a cold
   `suricata -r` per file. Target: at least 3x faster.
Wall time and peak memory (largest process, ru_maxrss) of each.
Also: the same small captures through the long-lived daemons alone (EVE read, not indexed).
3. With a threat ruleset (--etopen, default ../shared/rules/etopen, added with `packettotal rules
   add`): 10 small dev captures in one batch vs a cold `suricata -r` per file with the same rules
   (each cold run pays the rule loading). Target: at least 10x faster. Two ratios: the
   `packettotal analyze` batch, which pays its daemons' start-up, and the same batch on daemons
   made ready first (as `serve` runs: daemons started once, long-lived), timed from then on.
4. The second engine and the detectors: the small dev captures in one batch, and the big capture,
   each analysed with nDPI and the detectors of ingest/findings.py on vs off (`ndpi=off` and the
   detectors replaced by a no-op), side by side in one run, alternating which goes first, on
   daemons made ready first (as in 3.): the batch's time from then on, and the whole process's
   wall time. Target: on at most 1.3x off.
Usage: python bench/ingest.py [--skip-big] [--skip-small] [--rounds N] [--etopen PATH | --no-etopen]
                              [--big PATH] [--only-second-engine] [--big-rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PCAPS = (ROOT / ".." / "shared" / "pcaps").resolve()
OUT = ROOT / "bench" / "out"
EXE = Path(sys.executable).parent / "packettotal"
ETOPEN = PCAPS.parent / "rules" / "etopen"  # ../shared/rules/etopen: never copied into the repo


def timed(argv: list[str], env: dict | None = None, cwd: Path | None = None) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB of the process or any of its waited-for children, exit code)."""
    wall, rss, rc, _ = timed_cpu(argv, env, cwd)
    return wall, rss, rc


def timed_cpu(argv: list[str], env: dict | None = None, cwd: Path | None = None) -> tuple[float, float, int, float]:
    """timed's, and the CPU seconds (user + system) of the process and its waited-for children."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024, proc.returncode, usage.ru_utime + usage.ru_stime


def big_capture() -> Path:
    if (OUT / "big.pcap").exists():  # OUT_DIR=bench/out bash ../shared/pcaps/make_big.sh
        return OUT / "big.pcap"
    path = OUT / "big-capture" / "big.pcap"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        subprocess.run(["bash", str(PCAPS / "make_big.sh")], cwd=OUT, check=True)
    return path


def small_captures() -> list[Path]:
    """The dev captures PacketTotal accepts (the refused ones would flatter the batch)."""
    skip = {"cs-3e80211_wpaauth.pcapng", "td-edsa.pcap", "sv-sll2.pcap", "scapy-http_chunk.pcap.gz"}
    return sorted(p for p in PCAPS.iterdir() if p.suffix in (".pcap", ".pcapng") and p.name not in skip)


def engine_config(home: Path) -> Path:
    """PacketTotal's generated Suricata config (same rules, same outputs) for the bare runs."""
    env = {**os.environ, "PACKETTOTAL_HOME": str(home), "PACKETTOTAL_SURICATA_USER": ""}  # in home, kept
    code = ("from packettotal import config; from packettotal.ingest.suricata import EnginePool;"
            "print(EnginePool(config.load()).config_path)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def bare(conf: Path, pcap: Path, log: Path) -> tuple[float, float, int]:
    log.mkdir(parents=True, exist_ok=True)
    return timed(["suricata", "-c", str(conf), "-k", "none", "--runmode", "single", "-r", str(pcap), "-l", str(log)],
                 env={**os.environ, "TZ": "UTC"})


def ours(home: Path, pcaps: list[Path]) -> tuple[float, float, int]:
    env = {**os.environ, "PACKETTOTAL_HOME": str(home)}
    return timed([str(EXE), "analyze", "--json", *map(str, pcaps)], env=env)


ENGINES_ONLY = """
import sys, threading
from pathlib import Path
from packettotal import config
from packettotal.ingest.suricata import EnginePool
pool = EnginePool(config.load())
pool.spawn()
todo = sorted(map(Path, sys.argv[1:]), key=lambda p: -p.stat().st_size)
lock = threading.Lock()

def work():
    while True:
        with lock:
            if not todo:
                return
            p = todo.pop(0)
        with pool.engine() as e, e.analyze(p) as run:
            for _ in run.lines():
                pass

threads = [threading.Thread(target=work) for _ in range(pool.settings.engines)]
for t in threads:
    t.start()
for t in threads:
    t.join()
pool.close()
"""


def engines_only(home: Path, pcaps: list[Path]) -> tuple[float, float, int]:
    """PacketTotal's long-lived daemons alone: the same captures, EVE read but not indexed."""
    env = {**os.environ, "PACKETTOTAL_HOME": str(home)}
    return timed([sys.executable, "-c", ENGINES_ONLY, *map(str, pcaps)], env=env)


READY_BATCH = """
import json, os, sys, threading, time
from pathlib import Path
from packettotal import config
if os.environ.get("PT_BENCH_NO_DETECTORS"):  # row 4's "off": the detectors replaced by a no-op
    from packettotal.ingest import findings
    class NoDetectors:
        def add(self, rec): pass
        def result(self): return []
    findings.Detectors = NoDetectors
from packettotal.instance import open_jobs
t0 = time.perf_counter()
jobs = open_jobs(config.load(), spawn=True)
pt, n = jobs.service, jobs.service.settings.engines
gate = threading.Barrier(n + 1)
for _ in range(n):  # each runs once a worker is free, i.e. once its daemon's warm-up is done
    jobs.executor.submit(gate.wait)
gate.wait()
ready = time.perf_counter() - t0
t1 = time.perf_counter()
paths = sorted(map(Path, sys.argv[2:]), key=lambda p: -p.stat().st_size)
rows = jobs.run(pt.submit(p, p.name).capture["id"] for p in paths)  # as `analyze`: each id once checked
batch = time.perf_counter() - t1
Path(sys.argv[1]).write_text(json.dumps({"ready": ready, "batch": batch,
                                         "done": sum(r["status"] == "done" for r in rows)}))
jobs.close()
pt.close()
"""


def ready_batch(home: Path, pcaps: list[Path], out: Path, env: dict | None = None) -> dict:
    """The batch on daemons already made ready: {ready: s from start until both were, batch: s,
    done: n, wall: s of the whole process, cpu: its CPU s and its children's, rss: MiB}."""
    env = {**os.environ, "PACKETTOTAL_HOME": str(home), **(env or {})}
    wall, rss, rc, cpu = timed_cpu([sys.executable, "-c", READY_BATCH, str(out), *map(str, pcaps)], env=env)
    if rc:
        raise SystemExit(f"the ready-daemons batch exited with code {rc}")
    return json.loads(out.read_text()) | {"rss": rss, "wall": wall, "cpu": cpu}


SECOND_ENGINE = {"on": {"PACKETTOTAL_NDPI": "on"},
                 "off": {"PACKETTOTAL_NDPI": "off", "PT_BENCH_NO_DETECTORS": "1"}}


def second_engine(name: str, pcaps: list[Path], tmp: Path, rounds: int) -> None:
    """nDPI and the detectors on vs off over the same captures, alternating, fresh homes each
    time; each round's on/off ratio (pairs compare: the machine's speed drifts), then medians."""
    runs: dict[str, list[dict]] = {"on": [], "off": []}
    ratios: dict[str, list[float]] = {"batch": [], "wall": [], "cpu": []}
    for r in range(rounds):
        for mode in (("on", "off") if r % 2 == 0 else ("off", "on")):
            home = tmp / f"home-second-{mode}"
            runs[mode].append(ready_batch(home, pcaps, tmp / "second.json", SECOND_ENGINE[mode]))
            shutil.rmtree(home, ignore_errors=True)
        on, off = runs["on"][-1], runs["off"][-1]
        for k in ratios:
            ratios[k].append(on[k] / off[k])
        print(f"  round {r + 1}: batch on {on['batch']:.2f} s, off {off['batch']:.2f} s -> {ratios['batch'][-1]:.2f}x; "
              f"process {on['wall']:.2f} vs {off['wall']:.2f} s -> {ratios['wall'][-1]:.2f}x; "
              f"CPU {on['cpu']:.2f} vs {off['cpu']:.2f} s -> {ratios['cpu'][-1]:.2f}x "
              f"({on['done']}/{off['done']} done)")
    med = {m: {k: statistics.median(x[k] for x in v) for k in ("batch", "wall", "cpu", "rss")} for m, v in runs.items()}
    for mode in ("off", "on"):
        print(row(f"{name}, nDPI+detectors {mode}: batch (median)", med[mode]["batch"], med[mode]["rss"]))
    print(f"  ratio on / off, median of the rounds' ratios: {statistics.median(ratios['batch']):.2f}x batch on "
          f"ready daemons, {statistics.median(ratios['wall']):.2f}x whole process, "
          f"{statistics.median(ratios['cpu']):.2f}x CPU (target <= 1.3x)")


def row(label: str, wall: float, rss: float) -> str:
    return f"  {label:44} {wall:8.2f} s  {rss:8.0f} MiB"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--skip-small", action="store_true")
    ap.add_argument("--rounds", type=int, default=3, help="small-batch rounds (default 3)")
    ap.add_argument("--etopen", type=Path, default=ETOPEN,
                    help="a folder of .rules files for row 3 (default: the ET Open snapshot)")
    ap.add_argument("--no-etopen", action="store_true", help="skip row 3")
    ap.add_argument("--big", type=Path, help="the big capture (default: bench/out's, built if missing)")
    ap.add_argument("--only-second-engine", action="store_true", help="row 4 alone")
    ap.add_argument("--big-rounds", type=int, default=2, help="row 4's rounds on the big capture (default 2)")
    args = ap.parse_args()
    if args.only_second_engine:
        args.skip_big = args.skip_small = args.no_etopen = True
    tmp = Path(tempfile.mkdtemp(prefix="pt-bench-"))
    try:
        conf = engine_config(tmp / "conf-home")
        print(f"Suricata: {subprocess.run(['suricata', '-V'], capture_output=True, text=True).stdout.strip()}; "
              f"{os.cpu_count()} cores")
        if not args.skip_big:
            big = args.big or big_capture()
            print(f"\n1. big capture: {big.stat().st_size / 2**20:.0f} MiB")
            b_wall, b_rss, _ = bare(conf, big, tmp / "bare-big")
            o_wall, o_rss, rc = ours(tmp / "home-big", [big])
            print(row("bare suricata -r", b_wall, b_rss))
            print(row(f"packettotal analyze (exit {rc})", o_wall, o_rss))
            print(f"  ratio packettotal / bare: {o_wall / b_wall:.2f}x wall (target <= 1.25x), "
                  f"{o_rss / b_rss:.2f}x peak memory")
        small = small_captures()
        if not args.skip_small:
            small_batch(conf, small, tmp, args.rounds)
        if not args.no_etopen:
            with_ruleset(args.etopen, small[:10], tmp)
        print(f"\n4. nDPI and the detectors on vs off ({args.rounds} rounds; big capture: {args.big_rounds})")
        second_engine(f"{len(small)} small dev captures", small, tmp, args.rounds)
        if args.big_rounds:
            second_engine("the big capture", [args.big or big_capture()], tmp, args.big_rounds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def with_ruleset(rules: Path, ten: list[Path], tmp: Path) -> None:
    home = tmp / "home-etopen"
    t0 = time.perf_counter()
    subprocess.run([str(EXE), "--home", str(home), "rules", "add", str(rules)], check=True,
                   stdout=subprocess.DEVNULL, env={**os.environ, "PACKETTOTAL_SURICATA_USER": ""})
    print(f"\n3. {len(ten)} small dev captures with the ruleset {rules} (rules add: "
          f"{time.perf_counter() - t0:.1f} s)")
    shutil.copytree(home, tmp / "home-etopen-ready", symlinks=True)  # same ruleset, no capture known yet
    conf = engine_config(home)
    c_wall, c_rss = 0.0, 0.0
    for i, p in enumerate(ten):
        w, m, _ = bare(conf, p, tmp / "bare-etopen" / str(i))
        c_wall, c_rss = c_wall + w, max(c_rss, m)
    o_wall, o_rss, rc = ours(home, ten)
    ready = ready_batch(tmp / "home-etopen-ready", ten, tmp / "ready.json")
    print(row("cold suricata -r per file, same rules", c_wall, c_rss))
    print(row(f"packettotal analyze, one batch (exit {rc})", o_wall, o_rss))
    print(f"  ratio cold / batch, daemons' start-up included: {c_wall / o_wall:.2f}x faster (target >= 10x)")
    print(f"  daemons ready after {ready['ready']:.2f} s (both loading in parallel), then:")
    print(row(f"the same batch on ready daemons ({ready['done']} done)", ready["batch"], ready["rss"]))
    print(f"  ratio cold / batch on ready daemons (as under serve): {c_wall / ready['batch']:.2f}x faster "
          "(target >= 10x)")


def small_batch(conf: Path, small: list[Path], tmp: Path, rounds: int) -> None:
    print(f"\n2. {len(small)} small dev captures, {sum(p.stat().st_size for p in small) / 2**20:.1f} MiB; "
          f"{rounds} rounds, each a cold pass then a batch (the machine's speed drifts: pairs compare)")
    colds, batches, ratios, c_rss, o_rss = [], [], [], 0.0, 0.0
    for r in range(rounds):
        c_wall = 0.0
        for i, p in enumerate(small):
            w, m, _ = bare(conf, p, tmp / "bare-small" / str(i))
            c_wall, c_rss = c_wall + w, max(c_rss, m)
        o_wall, m, rc = ours(tmp / f"home-small-{r}", small)
        o_rss = max(o_rss, m)
        colds.append(c_wall)
        batches.append(o_wall)
        ratios.append(c_wall / o_wall)
        print(f"  round {r + 1}: cold {c_wall:.2f} s, batch {o_wall:.2f} s (exit {rc}) -> {c_wall / o_wall:.2f}x")
    print(row("cold suricata -r per file (median of rounds)", statistics.median(colds), c_rss))
    print(row("packettotal analyze, one batch (median)", statistics.median(batches), o_rss))
    print(f"  ratio cold / packettotal: {statistics.median(ratios):.2f}x faster, median of the rounds' ratios "
          f"(range {min(ratios):.2f}-{max(ratios):.2f}; target >= 3x)")
    e_wall, e_rss, rc = engines_only(tmp / "home-engines", small)
    print(row(f"long-lived daemons alone, no indexing (exit {rc})", e_wall, e_rss))
    print(f"  ratio cold / daemons alone: {statistics.median(colds) / e_wall:.2f}x (what engine reuse gives; "
          "the rest of the batch's time is normalising, indexing and storing)")


if __name__ == "__main__":
    main()
