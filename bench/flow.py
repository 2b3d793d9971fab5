"""Flow benchmark: one flow's pcap cut through the packet index vs reading the whole file.

On one capture (default: the largest dev capture; --capture PATH for another): the index's build
(once, at analysis) and size, then for its largest flow and a small one (the median packet count of
the flows with more than two packets), side by side in one run, median of --rounds:
  cut        ingest/flowpackets.cut through the index (what GET .../flows/{flow}/pcap streams)
  packets    the first page of the flow's packets (flows.packet_lines: 100 lines)
  scan       a dpkt loop over the whole file keeping that five-tuple's packets, written as a pcap
  tcpdump    `tcpdump -r FILE -w out.pcap 'tcp and host A and host B and port P and port Q'` over the
             whole file, when tcpdump is installed (`scripts/setup-system.sh bench` installs it)
Usage: python bench/flow.py [--capture PATH] [--rounds N]  (the big capture: --capture bench/out/big.pcap,
made by ../shared/pcaps/make_big.sh)
"""

from __future__ import annotations

import argparse
import io
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from pathlib import Path

import dpkt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from packettotal import flows  # noqa: E402
from packettotal.ingest import flowpackets  # noqa: E402

PCAPS = (ROOT / ".." / "shared" / "pcaps").resolve()


def largest_dev_capture() -> Path:
    return max((p for p in PCAPS.iterdir() if p.suffix in (".pcap", ".pcapng")), key=lambda p: p.stat().st_size)


def timed(fn: Callable[[], object], rounds: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(rounds):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def scan(capture: Path, key: str) -> bytes:
    """The whole file read, each packet decoded, the five-tuple's kept: a filter over the file."""
    out = io.BytesIO()
    with open(capture, "rb") as f:
        reader = dpkt.pcapng.Reader(f) if capture.suffix == ".pcapng" else dpkt.pcap.Reader(f)
        writer = dpkt.pcap.Writer(out, linktype=reader.datalink())
        for ts, buf in reader:
            ip = flowpackets.ip_layer(reader.datalink(), buf)
            if ip is not None and flowpackets.flow_key(*flowpackets.ends_of(ip)) == key:
                writer.writepkt(buf, ts)
    return out.getvalue()


def bpf(key: str) -> str:
    """The tcpdump filter of a five-tuple, either direction."""
    proto, a, b = key.split()
    (sip, sport), (dip, dport) = a.rsplit("/", 1), b.rsplit("/", 1)
    name = {6: "tcp", 17: "udp"}.get(int(proto), f"ip proto {proto}")
    ports = f" and port {sport} and port {dport}" if name in ("tcp", "udp") else ""
    return f"{name} and host {sip} and host {dip}{ports}"


def tcpdump(capture: Path, key: str, out: Path) -> int:
    subprocess.run(["tcpdump", "-r", str(capture), "-w", str(out), bpf(key)], check=True, capture_output=True)
    with open(out, "rb") as f:
        return sum(1 for _ in dpkt.pcap.Reader(f))


def flow_of(key: str) -> flows.Flow:
    proto, a, b = key.split()
    (sip, sport), (dip, dport) = a.rsplit("/", 1), b.rsplit("/", 1)
    rec = {"proto": {v: k for k, v in flowpackets.PROTOCOLS.items()}.get(int(proto), proto),
           "src_ip": sip, "src_port": int(sport), "dest_ip": dip, "dest_port": int(dport)}
    return flows.Flow("", key, [], False, None, rec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--capture", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    capture = args.capture or largest_dev_capture()
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index.sqlite"
        t = time.perf_counter()
        n = flowpackets.build_index(capture, index)
        built = time.perf_counter() - t
        db = sqlite3.connect(index)
        sizes = sorted((len(array("Q", blob)), key) for key, blob in db.execute("SELECT key, offsets FROM flows"))
        db.close()
        packets = sum(c for c, _ in sizes)
        print(f"{capture.name}: {capture.stat().st_size / 2**20:.1f} MiB, {packets:,} indexed packets, {n:,} flows")
        print(f"index: built in {built:.3f} s ({built / max(packets, 1) * 1e6:.1f} µs a packet), "
              f"{index.stat().st_size / 2**10:.0f} KiB")
        multi = [s for s in sizes if s[0] > 2] or sizes
        chosen = {"largest flow": sizes[-1], "median flow": multi[len(multi) // 2]}
        dump = shutil.which("tcpdump")
        print(f"{'flow':<14} {'packets':>8} {'cut ms':>9} {'page ms':>9} {'scan ms':>9} {'scan/cut':>9}"
              + (f" {'tcpdump ms':>11} {'tcpdump/cut':>12}" if dump else "  (no tcpdump)"))
        for label, (count, key) in chosen.items():
            cut_s, cut_bytes = timed(lambda k=key: b"".join(flowpackets.cut(capture, index, [(k, None, None)])),
                                     args.rounds)
            page_s, _ = timed(lambda k=key: flows.packet_lines(flow_of(k), capture, index), args.rounds)
            scan_s, scan_bytes = timed(lambda k=key: scan(capture, k), max(1, args.rounds // 2))
            kept = sum(1 for _ in (dpkt.pcapng.Reader if capture.suffix == ".pcapng" else dpkt.pcap.Reader)(
                io.BytesIO(cut_bytes)))  # type: ignore[arg-type]
            assert kept == count == sum(1 for _ in dpkt.pcap.Reader(io.BytesIO(scan_bytes))), (kept, count)
            line = (f"{label:<14} {count:>8,} {cut_s * 1e3:>9.2f} {page_s * 1e3:>9.2f} {scan_s * 1e3:>9.1f} "
                    f"{scan_s / cut_s:>8.0f}x")
            if dump:
                dump_s, dumped = timed(lambda k=key: tcpdump(capture, k, Path(tmp) / "tcpdump.pcap"),
                                       max(1, args.rounds // 2))
                line += f" {dump_s * 1e3:>11.1f} {dump_s / cut_s:>11.0f}x"
                if dumped != count:
                    line += f"  (tcpdump kept {dumped:,})"
            print(line)


if __name__ == "__main__":
    main()
