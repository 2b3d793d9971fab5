"""Certificates and NetBIOS names: what they add to an analysis, side by side in one run (median of --rounds).

  index      ingest/flowpackets.build_index alone, then with the NetBIOS visitor (ingest/netbios.py)
             fed every packet's IP layer, on the dev captures with NBNS and the largest dev capture;
             and netbios.scan alone (the pass a re-analysis makes when the index exists)
  certs      ingest/certs.parse of each certificate of sv-tls-cert-chain.pcap's logged chains (the
             first sight of one), then Chains.add of a record whose chain is known (later sessions)
Usage: python bench/certs.py [--rounds N]
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from packettotal.ingest import certs, flowpackets, netbios  # noqa: E402

PCAPS = (ROOT / ".." / "shared" / "pcaps").resolve()
NBNS = ("sv-smb2-psexec.pcap", "sv-ftp-data-190k.pcap", "cs-http_espn.pcapng")


def median_seconds(fn: Callable[[], object], rounds: int) -> float:
    return medians([fn], rounds)[0]


def medians(fns: list[Callable[[], object]], rounds: int) -> list[float]:
    """Each function's median time, the functions taking turns in every round (drift hits all alike)."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for fn, out in zip(fns, times, strict=True):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    return [statistics.median(t) for t in times]


def index_rows(rounds: int) -> None:
    print(f"{'capture':28} {'index ms':>9} {'+netbios ms':>12} {'ratio':>6} {'scan ms':>8} {'names':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in NBNS:
            path = PCAPS / name
            dest = Path(tmp) / "index.sqlite"

            def build(visit=None, dest=dest, path=path):
                dest.unlink(missing_ok=True)
                flowpackets.build_index(path, dest, visit)

            names = netbios.Names()
            alone, visited, scan = medians([build, lambda names=names, build=build: build(names.packet),
                                            lambda path=path: netbios.scan(path, netbios.Names())], rounds)
            print(f"{name:28} {alone * 1e3:9.1f} {visited * 1e3:12.1f} {visited / alone:6.2f} {scan * 1e3:8.1f} "
                  f"{len(names.rows()):6}")


def suricata_chains() -> list[dict]:
    """The tls records of sv-tls-cert-chain.pcap as Suricata logs them (chain included)."""
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "s.yaml"
        conf.write_text("%YAML 1.1\n---\noutputs:\n  - eve-log:\n      enabled: yes\n      filename: eve.json\n"
                        "      types:\n        - tls:\n            extended: yes\n            custom: [subject, issuer,"
                        " chain, sni, notbefore, notafter]\n")
        subprocess.run(["suricata", "-c", str(conf), "-r", str(PCAPS / "sv-tls-cert-chain.pcap"), "-l", tmp,
                        "-k", "none"], check=True, capture_output=True, timeout=120)
        return [r for r in map(json.loads, (Path(tmp) / "eve.json").read_text().splitlines())
                if r.get("event_type") == "tls" and "chain" in r.get("tls", {})]


def cert_rows(rounds: int) -> None:
    records = suricata_chains()
    ders = [base64.b64decode(b) for r in records for b in r["tls"]["chain"]]
    n = max(len(ders), 1)
    first = median_seconds(lambda: [certs.parse(d) for d in ders], rounds) / n
    chains = certs.Chains()
    chains.add(records[0])
    known = median_seconds(lambda: chains.add(records[0]), rounds)
    print(f"\n{len(records)} tls records with a chain, {len(ders)} certificates")
    print(f"{'parse (first sight)':28} {first * 1e6:9.1f} µs a certificate")
    print(f"{'Chains.add (known chain)':28} {known * 1e6:9.1f} µs a record  ({first / known:.0f}x less)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    rounds = ap.parse_args().rounds
    index_rows(rounds)
    cert_rows(rounds * 20)


if __name__ == "__main__":
    main()
