"""Decompression bombs through validation: time, CPU and bytes written before the refusal.

Builds the bombs itself (a pcap header then 4 GiB of zeros in bzip2; 4 M zero-length pcap records
in ~65 KB of gzip), then stages them with the default settings, one at a time and five at once.
Run it against another source tree to compare (the old code has no Validator):
    PYTHONPATH=<tree>/src python bench/bombs.py
"""

from __future__ import annotations

import bz2
import resource
import struct
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

from packettotal import config
from packettotal.errors import RefusedCapture
from packettotal.ingest import validate

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def bz2_zeros() -> bytes:
    return bz2.compress(PCAP_HEADER) + bz2.compress(bytes(64 << 20), 9) * 64


def gzip_zero_records() -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(16) * (1 << 16)
    return z.compress(PCAP_HEADER) + b"".join(z.compress(chunk) for _ in range(64)) + z.flush()


def wchar() -> int:
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("wchar:")).split()[1])


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class DiskPeak:
    """Largest total size of the staging files seen at once (sampled every 5 ms)."""

    def __init__(self, folder: Path):
        self.folder, self.peak, self._done = folder, 0, threading.Event()
        self._t = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self._done.is_set():
            total = 0
            for f in self.folder.glob("incoming-*") if self.folder.exists() else []:
                try:
                    total += f.stat().st_size
                except FileNotFoundError:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.005)

    def __enter__(self) -> DiskPeak:
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._t.join()


def stager(settings: config.Settings):
    if hasattr(validate, "Validator"):
        return validate.Validator(settings).stage
    return lambda p: validate.stage(p, settings.work_dir, settings.max_upload_bytes)


def run(name: str, upload: Path, settings: config.Settings, at_once: int = 1) -> None:
    stage = stager(settings)
    outcomes: list[str] = []

    def one() -> None:
        try:
            staged = stage(upload)
            outcomes.append(f"accepted ({staged.info.packets:,} packets)")
            staged.path.unlink()
        except RefusedCapture as exc:
            outcomes.append(f"{exc.status} {exc.message[:90]}")

    w0, c0, t0 = wchar(), cpu(), time.perf_counter()
    with DiskPeak(settings.work_dir) as disk:
        threads = [threading.Thread(target=one) for _ in range(at_once)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    wall, used, written = time.perf_counter() - t0, cpu() - c0, wchar() - w0
    print(f"{name:<34} {upload.stat().st_size:>8,} B in  {wall:6.2f} s wall {used:6.2f} s CPU  "
          f"{written / 2**20:8.1f} MiB written  peak {disk.peak / 2**20:7.1f} MiB on disk")
    for o in sorted(set(outcomes)):
        print(f"    {outcomes.count(o)}x {o}")


def main() -> None:
    print(f"validate from {validate.__file__}")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        settings = config.load(env={}, home=home / "home")
        bomb = home / "zeros.pcap.bz2"
        bomb.write_bytes(bz2_zeros())
        records = home / "records.pcap.gz"
        records.write_bytes(gzip_zero_records())
        run("bz2, pcap header + 4 GiB zeros", bomb, settings)
        run("gzip, 4 M zero-length records", records, settings)
        run("bz2 bomb, five at once", bomb, settings, at_once=5)


if __name__ == "__main__":
    sys.exit(main())
