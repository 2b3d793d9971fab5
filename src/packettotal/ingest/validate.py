"""Decide whether an upload is a packet capture we can analyse, and stage it content-addressed.

libmagic says what a file appears to be; our own header walk says whether it holds packets.
"""

from __future__ import annotations

import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import magic

from ..config import Settings
from ..errors import RefusedCapture, StorageFull, disk_full
from . import capfile

SLOT_WAIT = 60.0  # seconds an upload waits for a validation slot before it is turned away


@dataclass(frozen=True)
class StagedCapture:
    path: Path                # decompressed capture in the work folder
    digests: capfile.Digests  # of the decompressed capture: sha256 is the capture id
    info: capfile.CaptureInfo
    compression: str | None
    description: str          # libmagic's description of the upload
    warnings: tuple[str, ...]


def describe(path: Path) -> str:
    try:
        return magic.from_file(str(path)) or "unknown data"
    except (magic.MagicException, OSError):
        return "unknown data"


def human_size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


class Validator:
    """Stages uploads under the settings' limits, at most `max_validations` at once (each one
    decompresses, hashes and walks a file, and holds up to max_upload_bytes of disk meanwhile)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._slots = threading.BoundedSemaphore(settings.max_validations)

    def stage(self, upload: Path) -> StagedCapture:
        s = self.settings
        if not self._slots.acquire(timeout=SLOT_WAIT):
            raise RefusedCapture(f"{s.max_validations} uploads are being checked already (setting "
                                 "max_validations); try again shortly", status=503)
        try:
            return stage(upload, s.work_dir, s.max_upload_bytes, max_ratio=s.max_decompression_ratio,
                         max_packets=s.max_packets_per_capture)
        finally:
            self._slots.release()


def stage(upload: Path, work_dir: Path, limit: int, *, max_ratio: float | None = None,
          max_packets: int | None = None) -> StagedCapture:
    """Validate `upload` and copy it (decompressed) into work_dir. Raises RefusedCapture
    (StorageFull when the work folder's disk is full)."""
    size = upload.stat().st_size
    if size == 0:
        raise RefusedCapture("the file is empty", status=400)
    with open(upload, "rb") as f:
        head = f.read(8)
    description = describe(upload)
    compression = capfile.sniff_compression(head)
    if compression is None and capfile.capture_format(head) is None:
        raise RefusedCapture(f"{_short(description)}, not a packet capture "
                             "(expected pcap, pcapng, or one of those gzip/bzip2/xz/zstd-compressed)")
    if compression is None and size > limit:
        raise RefusedCapture(f"the capture is {human_size(size)}, over the limit of {human_size(limit)}", status=413)
    work_dir.mkdir(parents=True, exist_ok=True)
    dest = work_dir / f"incoming-{uuid.uuid4().hex}.pcap"
    try:
        digests = capfile.copy_hashed(upload, dest, limit, compression, max_ratio)
        return _check_staged(dest, digests, compression, description, max_packets)
    except capfile.Bomb as exc:
        _unlink(dest)
        raise RefusedCapture(f"the {compression} data expands more than {max_ratio:g} times "
                             f"({human_size(exc.consumed)} had become {human_size(exc.size)}): refused as a "
                             "decompression bomb (setting max_decompression_ratio)", status=413) from None
    except capfile.TooLarge:
        _unlink(dest)
        raise RefusedCapture(f"the {compression} data decompresses to more than {human_size(limit)}, "
                             "the upload limit (refused as a possible decompression bomb)", status=413) from None
    except capfile.BadCompression as exc:
        _unlink(dest)
        raise RefusedCapture(f"the {compression} data is damaged: {exc}", status=400) from None
    except OSError as exc:
        _unlink(dest)
        if disk_full(exc):
            raise StorageFull() from None
        raise
    except BaseException:
        _unlink(dest)
        raise


def not_a_capture(path: Path) -> str | None:
    """Why a file is not a packet capture, from its content (libmagic and the headers; a
    compressed file by what it holds), or None: it looks like one (`stage` checks it fully)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
        if not head:
            return "the file is empty"
        compression = capfile.sniff_compression(head)
        if compression is None:
            return None if capfile.capture_format(head) else f"{_short(describe(path))}, not a packet capture"
        inner = capfile.decompressed_head(path, compression)
    except capfile.BadCompression as exc:
        return f"damaged {compression} data: {exc}"
    except OSError as exc:
        return f"could not be read: {exc.strerror or exc}"
    if capfile.capture_format(inner):
        return None
    try:
        what = _short(magic.from_buffer(inner)) if inner else "nothing"
    except magic.MagicException:
        what = "unknown data"
    return f"{compression}-compressed {what}, not a packet capture"


def _check_staged(dest: Path, digests: capfile.Digests, compression: str | None,
                  description: str, max_packets: int | None) -> StagedCapture:
    with open(dest, "rb") as f:
        head = f.read(8)
    if compression and capfile.capture_format(head) is None:
        inner = describe(dest) if digests.size else "nothing"
        raise RefusedCapture(f"{compression}-compressed {_short(inner)}, not a packet capture")
    try:
        info = capfile.inspect(dest, max_packets)
    except ValueError:
        raise RefusedCapture("the file is empty", status=400) from None
    if info.over_limit:
        raise RefusedCapture(f"the capture holds more than {max_packets:,} packets, the limit per capture "
                             "(setting max_packets_per_capture)", status=413)
    if info.packets == 0:
        if info.problem:
            raise RefusedCapture(f"the capture is unreadable: {info.problem}", status=400)
        raise RefusedCapture("the capture holds no packets (header only)", status=400)
    readable = sum(n for lt, n in info.linktypes.items() if lt in capfile.SUPPORTED_LINKTYPES)
    if readable == 0:
        names = ", ".join(sorted(f"{capfile.linktype_name(lt)} (DLT {lt})" for lt in info.linktypes))
        raise RefusedCapture(f"unsupported link type: {names}; Suricata 7 decodes Ethernet, "
                             "Linux cooked (SLL), raw IP, PPP, Cisco HDLC and BSD loopback captures")
    warnings = []
    if info.problem:
        warnings.append(f"the capture is {info.problem}; the {info.packets:,} packets before that were analysed")
    if readable < info.packets:
        warnings.append(f"{info.packets - readable:,} packets on unsupported link types were skipped")
    return StagedCapture(dest, digests, info, compression, description, tuple(warnings))


def _short(description: str) -> str:
    return description.split(",")[0][:120].strip() or "unknown data"


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
