"""nDPI benchmark: analysing small dev captures with the second engine on vs off, side by side.

Two services on fresh homes, one with `ndpi=off`, one with `ndpi=on`, each with one warm Suricata
daemon; every round submits and analyses each capture end to end (validate, hash, Suricata and
nDPI's helper in parallel, normalise, index, commit), alternating which service goes first. A round
analyses every capture again (re-analysis: all but the upload's validation). Target: on <= 1.3x off.
Usage: python bench/ndpi.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from packettotal import config
from packettotal.ingest import ndpi
from packettotal.service import PacketTotal

ROOT = Path(__file__).resolve().parents[1]
PCAPS = (ROOT / ".." / "shared" / "pcaps").resolve()
CAPTURES = ("sv-tls-cert-chain.pcap", "cs-ratinfected.pcapng", "sv-dns-udp-txt.pcap", "cs-http_espn.pcapng",
            "dpkt-http.pcap", "sv-http-4files.pcap", "sv-smtp-attachment.pcap", "sv-ssh-hassh.pcap",
            "sv-ftp-data-190k.pcap", "sv-smb2-psexec.pcap")


def batch(pt: PacketTotal, ids: list[str]) -> float:
    """Seconds to analyse every capture once more (a re-analysis: Suricata, nDPI, index, commit)."""
    t0 = time.perf_counter()
    for cid in ids:
        cap = pt.analyse(cid)
        assert cap["status"] == "done", cap
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    if not ndpi.available():
        raise SystemExit("libndpi is not installed (scripts/setup-system.sh)")
    times: dict[str, list[float]] = {"off": [], "on": []}
    version = "?"
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(2) as threads:
        services = {mode: PacketTotal(config.load(env={}, home=Path(tmp) / mode, engines=1, ndpi=mode))
                    for mode in times}
        ids: dict[str, list[str]] = {}
        for mode, pt in services.items():
            pt.warm_engines(threads)
            t0 = time.perf_counter()  # the first analysis of each, submitted: not counted
            ids[mode] = [pt.submit(PCAPS / n, n).capture["id"] for n in CAPTURES]
            first = batch(pt, ids[mode])
            print(f"ndpi {mode}: first analysis {first:.2f} s, with upload {time.perf_counter() - t0:.2f} s")
            version = (pt.capture(ids[mode][0])["summary"].get("ndpi") or {}).get("version") or version
        for r in range(args.rounds):
            for mode in (("off", "on") if r % 2 == 0 else ("on", "off")):
                times[mode].append(batch(services[mode], ids[mode]))
        for pt in services.values():
            pt.close()
    off, on = statistics.median(times["off"]), statistics.median(times["on"])
    print(f"{len(CAPTURES)} small dev captures, {args.rounds} rounds, nDPI {version}")
    print(f"ndpi off: median {off:.2f} s  ({', '.join(f'{t:.2f}' for t in times['off'])})")
    print(f"ndpi on:  median {on:.2f} s  ({', '.join(f'{t:.2f}' for t in times['on'])})")
    print(f"ratio on/off: {on / off:.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    main()
