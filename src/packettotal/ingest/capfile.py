"""Pure readers of capture files: compression sniffing, bounded decompression, a packet walker.

The walker reads record headers only (never payloads) so it can count packets, bytes, timestamps
and link types of a classic pcap or pcapng file, and say where a damaged file stops making sense.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

import zstandard

from ..errors import disk_full

COMPRESSION_MAGICS = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
}

PCAP_MAGICS = {  # magic as read little-endian -> (byte order, fraction divisor)
    0xA1B2C3D4: ("<", 1e6), 0xD4C3B2A1: (">", 1e6),
    0xA1B23C4D: ("<", 1e9), 0x4D3CB2A1: (">", 1e9),
}
PCAPNG_SHB = 0x0A0D0D0A

LINKTYPE_NAMES = {
    0: "BSD loopback", 1: "Ethernet", 9: "PPP", 12: "raw IP", 14: "raw IP", 101: "raw IP",
    104: "Cisco HDLC", 105: "IEEE 802.11", 113: "Linux cooked (SLL)", 127: "IEEE 802.11 radiotap",
    228: "raw IPv4", 229: "raw IPv6", 276: "Linux cooked v2 (SLL2)", 285: "Marvell EDSA",
}
# Link types Suricata 7's pcap-file source decodes.
SUPPORTED_LINKTYPES = frozenset({0, 1, 9, 12, 14, 101, 104, 113, 228, 229})
MAX_RECORD = 262_144  # libpcap's largest snapshot length: a longer record means a damaged file
RATIO_FLOOR = 16 << 20  # the expansion ratio is judged once this much has come out


def linktype_name(linktype: int) -> str:
    return LINKTYPE_NAMES.get(linktype, f"link type {linktype}")


def sniff_compression(head: bytes) -> str | None:
    for magic, name in COMPRESSION_MAGICS.items():
        if head.startswith(magic):
            return name
    return None


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _open_decompressor(src: BinaryIO, kind: str) -> Readable:
    if kind == "gzip":
        return gzip.GzipFile(fileobj=src)
    if kind == "bzip2":
        return bz2.BZ2File(src)
    if kind == "xz":
        return lzma.LZMAFile(src)
    return zstandard.ZstdDecompressor().stream_reader(src)


def decompressed_head(path: Path, kind: str, size: int = 64) -> bytes:
    """The first `size` bytes of a compressed file's content (raises BadCompression)."""
    with open(path, "rb") as src:
        try:
            return _open_decompressor(src, kind).read(size)
        except (OSError, EOFError, ValueError, zstandard.ZstdError) as exc:
            raise BadCompression(str(exc)[:200]) from None


@dataclass(frozen=True)
class Digests:
    sha256: str
    md5: str
    sha1: str
    size: int


class TooLarge(Exception):
    pass


class Bomb(TooLarge):
    """The data expands more than the ratio allowed: `size` bytes out of `consumed` bytes in."""

    def __init__(self, size: int, consumed: int):
        super().__init__(size, consumed)
        self.size, self.consumed = size, consumed


class BadCompression(Exception):
    pass


def copy_hashed(src: Path, dest: Path, limit: int, compression: str | None,
                max_ratio: float | None = None) -> Digests:
    """Copy (decompressing as a stream if asked) src to dest, hashing on the way; stop past limit,
    or (once RATIO_FLOOR bytes are out) as soon as the output exceeds max_ratio times the
    compressed bytes read so far."""
    hashes = [hashlib.sha256(), hashlib.md5(), hashlib.sha1()]
    size = 0
    with open(src, "rb") as raw, open(dest, "wb") as out:
        stream = _open_decompressor(raw, compression) if compression else raw
        try:
            while chunk := stream.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise TooLarge(size)
                if compression and max_ratio and size >= RATIO_FLOOR and size > max_ratio * raw.tell():
                    raise Bomb(size, raw.tell())
                for h in hashes:
                    h.update(chunk)
                out.write(chunk)
        except (OSError, EOFError, lzma.LZMAError, zstandard.ZstdError) as exc:
            if disk_full(exc):  # the copy's disk, not the data
                raise
            raise BadCompression(str(exc)) from None
    return Digests(hashes[0].hexdigest(), hashes[1].hexdigest(), hashes[2].hexdigest(), size)


@dataclass
class CaptureInfo:
    format: str  # "pcap" | "pcapng"
    packets: int = 0
    bytes: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    linktypes: dict[int, int] = field(default_factory=dict)  # link type -> packets
    snaplen: int | None = None
    problem: str | None = None  # where and why the file stops being readable
    over_limit: bool = False  # the walk stopped at the packet limit it was given

    def seen(self, ts: float, length: int, linktype: int) -> None:
        self.packets += 1
        self.bytes += length
        if self.first_ts is None or ts < self.first_ts:
            self.first_ts = ts
        if self.last_ts is None or ts > self.last_ts:
            self.last_ts = ts
        self.linktypes[linktype] = self.linktypes.get(linktype, 0) + 1


def capture_format(head: bytes) -> str | None:
    if len(head) >= 4:
        magic = struct.unpack("<I", head[:4])[0]
        if magic in PCAP_MAGICS:
            return "pcap"
        if magic == PCAPNG_SHB:
            return "pcapng"
    return None


def inspect(path: Path, max_packets: int | None = None) -> CaptureInfo:
    """Walk the record headers of a pcap or pcapng file, stopping (`over_limit`) past max_packets.
    Raises ValueError for other files."""
    with open(path, "rb") as f:
        if path.stat().st_size == 0:
            raise ValueError("empty")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            kind = capture_format(m[:4])
            if kind == "pcap":
                return _walk_pcap(m, max_packets or -1)
            if kind == "pcapng":
                return _walk_pcapng(m, max_packets or -1)
    raise ValueError("not a capture")


def _walk_pcap(m: mmap.mmap, max_packets: int) -> CaptureInfo:
    info = CaptureInfo("pcap")
    if len(m) < 24:
        info.problem = f"the file header is cut short ({len(m)} of 24 bytes)"
        return info
    order, divisor = PCAP_MAGICS[struct.unpack("<I", m[:4])[0]]
    snaplen, network = struct.unpack_from(order + "II", m, 16)
    info.snaplen = snaplen
    linktype = network & 0x0FFFFFFF
    limit = max(snaplen, MAX_RECORD)
    rec = struct.Struct(order + "IIII")
    off, end = 24, len(m)
    while off < end:
        if off + 16 > end:
            info.problem = f"cut short in the header of packet {info.packets + 1} (at byte {off:,})"
            break
        sec, frac, incl, orig = rec.unpack_from(m, off)
        if incl > limit:
            info.problem = (f"damaged after packet {info.packets}: the record at byte {off:,} claims "
                            f"{incl:,} bytes (snapshot length {snaplen:,})")
            break
        if off + 16 + incl > end:
            info.problem = f"cut short in the middle of packet {info.packets + 1} (at byte {off:,})"
            break
        if info.packets == max_packets:
            info.over_limit = True
            break
        info.seen(sec + frac / divisor, orig, linktype)
        off += 16 + incl
    return info


def _walk_pcapng(m: mmap.mmap, max_packets: int) -> CaptureInfo:
    info = CaptureInfo("pcapng")
    order = "<"
    ifaces: list[tuple[int, float]] = []  # (link type, ticks per second)
    off, end = 0, len(m)
    while off < end:
        if info.packets == max_packets:
            info.over_limit = True
            break
        if off + 12 > end:
            info.problem = f"cut short in a block header after packet {info.packets} (at byte {off:,})"
            break
        btype = struct.unpack_from(order + "I", m, off)[0]
        if btype == PCAPNG_SHB:
            bom = m[off + 8:off + 12]
            order = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">" if bom == b"\x1a\x2b\x3c\x4d" else ""
            if not order:
                info.problem = f"the section header at byte {off:,} has an unknown byte-order mark"
                break
            ifaces = []
        blen = struct.unpack_from(order + "I", m, off + 4)[0]
        if blen < 12 or blen % 4 or blen > MAX_RECORD + 1024 * 64:
            info.problem = f"damaged after packet {info.packets}: the block at byte {off:,} claims {blen:,} bytes"
            break
        if off + blen > end:
            info.problem = f"cut short in the middle of a block after packet {info.packets} (at byte {off:,})"
            break
        body = off + 8
        if btype == 1 and blen >= 20:  # interface description
            linktype, _, snaplen = struct.unpack_from(order + "HHI", m, body)
            info.snaplen = snaplen if info.snaplen is None else info.snaplen
            ifaces.append((linktype, tsresol(m, body + 8, off + blen - 4, order)))
        elif btype == 6 and blen >= 32:  # enhanced packet
            iface, hi, lo, caplen, origlen = struct.unpack_from(order + "IIIII", m, body)
            if caplen > blen - 32:
                info.problem = (f"damaged after packet {info.packets}: the packet block at byte {off:,} "
                                f"claims {caplen:,} bytes of packet in a block of {blen:,}")
                break
            if iface >= len(ifaces):
                info.problem = f"packet {info.packets + 1} (at byte {off:,}) names an undeclared interface {iface}"
                break
            linktype, ticks = ifaces[iface]
            info.seen(((hi << 32) | lo) / ticks, origlen, linktype)
        elif btype == 3 and blen >= 16 and ifaces:  # simple packet
            info.seen(info.last_ts or 0.0, struct.unpack_from(order + "I", m, body)[0], ifaces[0][0])
        elif btype == 2 and blen >= 32:  # obsolete packet block
            iface, _, hi, lo, caplen, origlen = struct.unpack_from(order + "HHIIII", m, body)
            if caplen > blen - 32:
                info.problem = (f"damaged after packet {info.packets}: the packet block at byte {off:,} "
                                f"claims {caplen:,} bytes of packet in a block of {blen:,}")
                break
            if iface < len(ifaces):
                linktype, ticks = ifaces[iface]
                info.seen(((hi << 32) | lo) / ticks, origlen, linktype)
        off += blen
    return info


def tsresol(m: mmap.mmap, off: int, end: int, order: str) -> float:
    """Ticks per second from an interface's if_tsresol option (default microseconds)."""
    while off + 4 <= end:
        code, length = struct.unpack_from(order + "HH", m, off)
        if code == 0:
            break
        if code == 9 and length >= 1:
            v = m[off + 4]
            return float(2 ** (v & 0x7F)) if v & 0x80 else float(10 ** v)
        off += 4 + (length + 3) // 4 * 4
    return 1e6
