"""Memory of one analysis against the number of distinct flows in a capture.

Captures of N one-packet UDP flows (each its own source address and port, so every flow, address
and community id is distinct) are analysed end to end by PacketTotal in a fresh process, whose
own peak RSS (ru_maxrss, Suricata's daemon excluded: it is another process) is printed with the
RSS left once the capture is done. Several source trees can be measured side by side in one run
(--compare OLD_SRC: e.g. a worktree of the previous commit), the ratio printed per size.

Usage: python bench/memory.py [--flows 10000,100000,1000000] [--compare /path/to/old/src]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import dpkt

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"

DRIVER = r"""
import json, resource, sys
from pathlib import Path
from packettotal import config
from packettotal.service import PacketTotal
pt = PacketTotal(config.load(env={}, home=Path(sys.argv[2]), engines=1))
sub = pt.submit(Path(sys.argv[1]), "flows.pcap")
row = pt.analyse(sub.capture["id"])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
held = int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
print(json.dumps({"status": row["status"], "events": row["summary"].get("events"),
                  "indexed": row["summary"].get("indexed"), "peak_mib": peak, "held_mib": held,
                  "warnings": row["warnings"]}))
pt.close()
"""


def flows_capture(n: int) -> Path:
    path = OUT / f"flows-{n}.pcap"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    base = int(ipaddress.ip_address("10.0.0.0"))
    dst = ipaddress.ip_address("198.51.100.7").packed
    with open(path.with_suffix(".tmp"), "wb") as f:
        w = dpkt.pcap.Writer(f)
        for i in range(n):
            udp = dpkt.udp.UDP(sport=1024 + i % 60000, dport=9999, data=b"x" * 16)
            udp.ulen = len(udp)
            ip = dpkt.ip.IP(src=(base + i // 60000 * 65536 + i % 60000).to_bytes(4, "big"), dst=dst,
                            p=dpkt.ip.IP_PROTO_UDP, data=udp)
            ip.len = len(ip)
            eth = dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, data=ip)
            w.writepkt(bytes(eth), ts=1_700_000_000 + i / 1000)
    path.with_suffix(".tmp").rename(path)
    return path


def measure(src: Path, capture: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="pt-bench-mem-") as home:
        env = {**os.environ, "PYTHONPATH": str(src), "PACKETTOTAL_SURICATA_USER": os.environ.get(
            "PACKETTOTAL_SURICATA_USER", "packettotal-suricata")}
        out = subprocess.run([sys.executable, "-c", DRIVER, str(capture), home], env=env,
                             capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{src} on {capture.name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--flows", default="10000,100000,1000000")
    ap.add_argument("--compare", type=Path, help="another source tree (its src/ folder), measured beside this one")
    args = ap.parse_args()
    trees = [("this", ROOT / "src")] + ([("compare", args.compare)] if args.compare else [])
    print(f"{'flows':>9s} {'tree':8s} {'events':>9s} {'indexed':>9s} {'peak MiB':>9s} {'held MiB':>9s}")
    for n in (int(x) for x in args.flows.split(",")):
        capture = flows_capture(n)
        got = {}
        for name, src in trees:
            r = got[name] = measure(src, capture)
            print(f"{n:9,d} {name:8s} {r['events'] or 0:9,d} {r['indexed'] or 0:9,d} {r['peak_mib']:9.0f} "
                  f"{r['held_mib']:9.0f}  {r['status']} {'; '.join(w[:80] for w in r['warnings'])}", flush=True)
        if len(got) == 2:
            print(f"{'':9s} ratio    peak {got['this']['peak_mib'] / got['compare']['peak_mib']:.2f}x  "
                  f"held {got['this']['held_mib'] / got['compare']['held_mib']:.2f}x")


if __name__ == "__main__":
    main()
