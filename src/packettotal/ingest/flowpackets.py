"""The packets of one flow, straight from the stored capture.

`build_index` walks a capture once (at analysis) and writes, per normalised five-tuple, the file
offset of each of its packets into a small SQLite file beside the capture; `cut` then reads only
those packets. A pcap cut is a pcap with the capture's header (so its link type and timestamp
resolution); a pcapng cut is a pcapng with the capture's section and interface blocks, copied as
they are. Packets are decoded with dpkt.
"""

from __future__ import annotations

import ipaddress
import mmap
import sqlite3
import struct
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import dpkt

from .capfile import MAX_RECORD, PCAP_MAGICS, PCAPNG_SHB, capture_format, tsresol

PROTOCOLS = {"TCP": 6, "UDP": 17, "ICMP": 1, "IPv6-ICMP": 58, "SCTP": 132, "GRE": 47}
_HEADER_BLOCKS = (PCAPNG_SHB, 1)  # section header, interface description
_IP = (dpkt.ip.IP, dpkt.ip6.IP6)


@dataclass(frozen=True)
class Packet:
    offset: int      # of its record (pcap) or block (pcapng) in the file
    size: int        # of that record or block, header included
    ts: float
    linktype: int
    data: bytes      # the captured bytes


def flow_key(proto: int, a: str, a_port: int, b: str, b_port: int) -> str:
    """The same key for both directions of a connection: its ends in a fixed order."""
    ends = sorted([(ipaddress.ip_address(a), a_port), (ipaddress.ip_address(b), b_port)],
                  key=lambda e: (e[0].version, int(e[0]), e[1]))
    return f"{proto} " + " ".join(f"{ip.compressed}/{port}" for ip, port in ends)


def key_of_record(rec: dict) -> str | None:
    """The key of an EVE record's connection, or None when it has no usable five-tuple."""
    proto = PROTOCOLS.get(str(rec.get("proto", "")), None)
    if proto is None and str(rec.get("proto", "")).isdigit():
        proto = int(rec["proto"])
    try:
        return flow_key(proto or 0, rec["src_ip"], int(rec.get("src_port") or 0),
                        rec["dest_ip"], int(rec.get("dest_port") or 0)) if proto else None
    except (KeyError, ValueError, TypeError):
        return None


def ip_layer(linktype: int, data: bytes) -> dpkt.ip.IP | dpkt.ip6.IP6 | None:
    """The packet's (outer) IP layer, decoded by dpkt, or None."""
    try:
        if linktype == 1:
            layer = dpkt.ethernet.Ethernet(data)
        elif linktype == 113:
            layer = dpkt.sll.SLL(data)
        elif linktype == 276:
            layer = dpkt.sll2.SLL2(data)
        elif linktype == 0:
            layer = dpkt.loopback.Loopback(data)
        elif linktype == 9:
            layer = dpkt.ppp.PPP(data)
        elif linktype in (12, 14, 101, 228, 229) and data:
            layer = dpkt.ip.IP(data) if data[0] >> 4 == 4 else dpkt.ip6.IP6(data)
        else:
            return None
    except (dpkt.UnpackError, struct.error, ValueError, IndexError):
        return None
    for _ in range(5):  # VLAN, PPPoE and PPP wrappers
        if isinstance(layer, _IP):
            return layer
        layer = getattr(layer, "data", None)
        if isinstance(layer, bytes | None):
            return None
    return None


def ends_of(ip: dpkt.ip.IP | dpkt.ip6.IP6) -> tuple[int, str, int, str, int]:
    """proto, source, source port, destination, destination port (ports 0 where there are none)."""
    l4 = ip.data
    proto = _proto(ip)
    sport = dport = 0
    if isinstance(l4, dpkt.tcp.TCP | dpkt.udp.UDP):
        sport, dport = l4.sport, l4.dport
    return proto, _addr(ip.src), sport, _addr(ip.dst), dport


def _proto(ip: dpkt.ip.IP | dpkt.ip6.IP6) -> int:
    """The transport protocol: for IPv6, past its extension headers."""
    return getattr(ip, "p", None) or ip.nxt


def _raw_key(ip: dpkt.ip.IP | dpkt.ip6.IP6) -> tuple:
    """flow_key's order (family, address, port) on the raw addresses: both directions alike."""
    l4 = ip.data
    sport, dport = (l4.sport, l4.dport) if isinstance(l4, dpkt.tcp.TCP | dpkt.udp.UDP) else (0, 0)
    a, b = (len(ip.src), ip.src, sport), (len(ip.dst), ip.dst, dport)
    return (_proto(ip), *(sorted((a, b))))


def _addr(raw: bytes) -> str:
    return str(ipaddress.ip_address(raw))


def walk(path: Path) -> Iterator[Packet | tuple[int, int]]:
    """Each packet of a pcap or pcapng file in file order; for pcapng also (offset, size) of each
    section and interface block. Stops quietly where the file stops making sense (validation
    has said where)."""
    with open(path, "rb") as f:
        yield from walk_file(f)


def walk_file(f: BinaryIO) -> Iterator[Packet | tuple[int, int]]:
    """`walk` of an open capture file (the nDPI helper is given one, not a path)."""
    with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        kind = capture_format(m[:4])
        if kind == "pcap":
            yield from _walk_pcap(m)
        elif kind == "pcapng":
            yield from _walk_pcapng(m)


def _walk_pcap(m: mmap.mmap) -> Iterator[Packet]:
    if len(m) < 24:
        return
    order, divisor = PCAP_MAGICS[struct.unpack("<I", m[:4])[0]]
    snaplen, network = struct.unpack_from(order + "II", m, 16)
    linktype, limit = network & 0x0FFFFFFF, max(snaplen, MAX_RECORD)
    rec = struct.Struct(order + "IIII")
    off, end = 24, len(m)
    while off + 16 <= end:
        sec, frac, incl, _ = rec.unpack_from(m, off)
        if incl > limit or off + 16 + incl > end:
            return
        yield Packet(off, 16 + incl, sec + frac / divisor, linktype, m[off + 16:off + 16 + incl])
        off += 16 + incl


def _walk_pcapng(m: mmap.mmap) -> Iterator[Packet | tuple[int, int]]:
    order, off, end = "<", 0, len(m)
    ifaces: list[tuple[int, float]] = []
    while off + 12 <= end:
        btype = struct.unpack_from(order + "I", m, off)[0]
        if btype == PCAPNG_SHB:
            order = "<" if m[off + 8:off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            ifaces = []
        blen = struct.unpack_from(order + "I", m, off + 4)[0]
        if blen < 12 or blen % 4 or off + blen > end:
            return
        body = off + 8
        if btype in _HEADER_BLOCKS:
            yield off, blen
            if btype == 1 and blen >= 20:
                linktype = struct.unpack_from(order + "H", m, body)[0]
                ifaces.append((linktype, tsresol(m, body + 8, off + blen - 4, order)))
        elif btype == 6 and blen >= 32:
            iface, hi, lo, caplen, _ = struct.unpack_from(order + "IIIII", m, body)
            if caplen > blen - 32 or iface >= len(ifaces):
                return
            linktype, ticks = ifaces[iface]
            yield Packet(off, blen, ((hi << 32) | lo) / ticks, linktype, m[body + 20:body + 20 + caplen])
        off += blen


def build_index(capture: Path, dest: Path, visit: Callable[[float, Any], None] | None = None) -> int:
    """Write the index of `capture` to `dest` (a new SQLite file); the number of flows in it.
    `visit(ts, ip)`: called with each packet's IP layer on the way (ingest/netbios.py)."""
    flows: dict[str, array] = {}
    by_raw: dict[tuple, array] = {}  # the same lists by the packet's own bytes: flow_key once a flow
    headers = array("Q")
    for p in walk(capture):
        if isinstance(p, tuple):
            headers.extend(p)
            continue
        ip = ip_layer(p.linktype, p.data)
        if ip is None:
            continue
        if visit is not None:
            visit(p.ts, ip)
        raw = _raw_key(ip)
        if (offs := by_raw.get(raw)) is None:
            offs = by_raw[raw] = flows.setdefault(flow_key(*ends_of(ip)), array("Q"))
        offs.append(p.offset)
    db = sqlite3.connect(dest)
    try:
        with db:
            db.execute("CREATE TABLE flows (key TEXT PRIMARY KEY, offsets BLOB NOT NULL) WITHOUT ROWID")
            db.execute("CREATE TABLE headers (blocks BLOB NOT NULL)")  # pcapng: (offset, size) pairs
            db.executemany("INSERT INTO flows VALUES (?, ?)", ((k, v.tobytes()) for k, v in flows.items()))
            db.execute("INSERT INTO headers VALUES (?)", (headers.tobytes(),))
    finally:
        db.close()
    return len(flows)


def offsets(index: Path, key: str) -> list[int]:
    db = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT offsets FROM flows WHERE key = ?", (key,)).fetchone()
        return array("Q", row[0]).tolist() if row else []
    finally:
        db.close()


def _header_blocks(index: Path) -> list[tuple[int, int]]:
    db = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
    try:
        flat = array("Q", db.execute("SELECT blocks FROM headers").fetchone()[0])
    finally:
        db.close()
    return list(zip(flat[::2], flat[1::2], strict=True))


def read_packets(capture: Path, index: Path, key: str, start: float | None = None,
                 end: float | None = None) -> Iterator[Packet]:
    """The flow's packets in file order, reading only them; with start/end only those in that
    time window (a five-tuple reused later is another flow)."""
    with open(capture, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        kind = capture_format(m[:4])
        order = "<"
        if kind == "pcap":
            order, divisor = PCAP_MAGICS[struct.unpack("<I", m[:4])[0]]
            linktype = struct.unpack_from(order + "I", m, 20)[0] & 0x0FFFFFFF
        else:
            ifaces = _interfaces(m, _header_blocks(index))
        for off in offsets(index, key):
            if kind == "pcap":
                sec, frac, incl, _ = struct.unpack_from(order + "IIII", m, off)
                p = Packet(off, 16 + incl, sec + frac / divisor, linktype, m[off + 16:off + 16 + incl])
            else:
                p = _epb(m, off, ifaces)
            if (start is None or p.ts >= start) and (end is None or p.ts <= end):
                yield p


def _interfaces(m: mmap.mmap, blocks: list[tuple[int, int]]) -> dict[int, tuple[str, list[tuple[int, float]]]]:
    """Per section header's offset: its byte order and interfaces (link type, ticks)."""
    sections: dict[int, tuple[str, list[tuple[int, float]]]] = {}
    current: list[tuple[int, float]] = []
    order = "<"
    for off, size in blocks:
        if struct.unpack_from("<I", m, off)[0] == PCAPNG_SHB:
            order = "<" if m[off + 8:off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            current = []
            sections[off] = (order, current)
        elif size >= 20:
            current.append((struct.unpack_from(order + "H", m, off + 8)[0],
                            tsresol(m, off + 16, off + size - 4, order)))
    return sections


def _epb(m: mmap.mmap, off: int, sections: dict[int, tuple[str, list[tuple[int, float]]]]) -> Packet:
    section = max(s for s in sections if s < off)
    order, ifaces = sections[section]
    blen, iface, hi, lo, caplen = struct.unpack_from(order + "IIIII", m, off + 4)
    linktype, ticks = ifaces[iface]
    return Packet(off, blen, ((hi << 32) | lo) / ticks, linktype, m[off + 28:off + 28 + caplen])


def cut(capture: Path, index: Path, flows: list[tuple[str, float | None, float | None]]) -> Iterator[bytes]:
    """The packets of these flows (key, start, end: as `read_packets`), each once and in file order,
    as a capture file of the capture's own format, in pieces."""
    with open(capture, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        if capture_format(m[:4]) == "pcap":  # records' headers read in place: no packet decoded or copied
            order, divisor = PCAP_MAGICS[struct.unpack("<I", m[:4])[0]]
            record = struct.Struct(order + "III").unpack_from
            spans = []
            for key, start, end in flows:  # each flow's offsets are in file order already
                window = start is not None or end is not None
                for off in offsets(index, key):
                    sec, frac, incl = record(m, off)
                    if window:
                        ts = sec + frac / divisor
                        if (start is not None and ts < start) or (end is not None and ts > end):
                            continue
                    spans.append((off, 16 + incl))
            if len(flows) > 1:
                spans = sorted(set(spans))
            yield m[:24]
        else:
            spans = sorted({(p.offset, p.size) for key, start, end in flows
                            for p in read_packets(capture, index, key, start, end)} | set(_header_blocks(index)))
        yield from _coalesced(m, spans)


def _coalesced(m: mmap.mmap, spans: list[tuple[int, int]]) -> Iterator[bytes]:
    """The bytes of these (offset, size) spans in order, adjacent ones read as one."""
    begin = end = -1
    for off, size in spans:
        if off != end:
            if end > begin:
                yield m[begin:end]
            begin = off
        end = off + size
    if end > begin:
        yield m[begin:end]
