"""NetBIOS names from the name service (NBNS, UDP 137), which Suricata 7 does not parse: each
packet's question and resource-record names decoded from their first-level encoding (RFC 1001
14.1: `FHEPFCELEHFCEPFFFACACACACACACABN` -> `WORKGROUP`, suffix 0x1d), and the names a node-status
answer lists. Pure over bytes; `Names.packet` is fed the packets the flow index walks already
(ingest/flowpackets.py), `scan` walks a capture for itself. Bounded: names per packet, distinct
names per capture; a name's bytes outside printable ASCII are shown as `\\xNN`.
"""

from __future__ import annotations

import struct
from pathlib import Path

import dpkt

from ..records import eve_time
from . import flowpackets

PORT = 137
MAX_NAMES = 2_000     # distinct (name, suffix, kind, sender) per capture
MAX_PER_PACKET = 64   # names read from one packet (questions, records, a node status's list)
OPCODES = {0: "query", 5: "registration", 6: "release", 7: "wack", 8: "refresh", 9: "refresh"}
NBSTAT = 0x21


def decode_name(encoded: bytes) -> tuple[str, int] | None:
    """A first-level-encoded name (32 letters A..P) -> (name, suffix), or None."""
    if len(encoded) != 32 or any(not 0x41 <= b <= 0x50 for b in encoded):
        return None
    raw = bytes(((encoded[i] - 0x41) << 4) | (encoded[i + 1] - 0x41) for i in range(0, 32, 2))
    return printable(raw[:15].rstrip(b" \x00")), raw[15]


def printable(raw: bytes) -> str:
    return "".join(chr(b) if 0x20 <= b < 0x7F and b != 0x5C else f"\\x{b:02x}" for b in raw)


def _label_name(data: bytes, off: int) -> tuple[bytes | None, int]:
    """The first label of an encoded name at `off` (scope labels and pointers followed past), and
    the offset after the name; (None, -1) when it runs off the packet."""
    first: bytes | None = None
    end, jumps = -1, 0
    while off < len(data):
        n = data[off]
        if n == 0:
            return first, end if end >= 0 else off + 1
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(data) or jumps > 4:
                return None, -1
            if end < 0:
                end = off + 2
            off, jumps = ((n & 0x3F) << 8) | data[off + 1], jumps + 1
            continue
        if off + 1 + n > len(data):
            return None, -1
        if first is None:
            first = data[off + 1:off + 1 + n]
        off += 1 + n
    return None, -1


def names_of(payload: bytes) -> list[tuple[str, int, str]]:
    """(name, suffix, kind) of each name an NBNS packet carries."""
    if len(payload) < 12:
        return []
    _, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", payload)
    response, opcode = bool(flags & 0x8000), (flags >> 11) & 0xF
    kind = "answer" if response and opcode == 0 else OPCODES.get(opcode, f"opcode {opcode}")
    out: list[tuple[str, int, str]] = []
    off = 12
    for i in range(min(qd + an + ns + ar, MAX_PER_PACKET)):
        label, off = _label_name(payload, off)
        if off < 0:
            break
        question = i < qd
        if label is not None and (decoded := decode_name(label)):
            out.append((*decoded, kind))
        if question:
            off += 4
            continue
        if off + 10 > len(payload):
            break
        rtype, _, _, rdlength = struct.unpack_from("!HHIH", payload, off)
        rdata = payload[off + 10:off + 10 + rdlength]
        off += 10 + rdlength
        if rtype == NBSTAT and response and rdata:
            out += _node_status(rdata)
    return out[:MAX_PER_PACKET]


def _node_status(rdata: bytes) -> list[tuple[str, int, str]]:
    """A node-status answer's names: a count, then 15 bytes of name, its suffix and 2 of flags each."""
    out = []
    for i in range(min(rdata[0], MAX_PER_PACKET)):
        entry = rdata[1 + 18 * i:1 + 18 * i + 18]
        if len(entry) < 16:
            break
        out.append((printable(entry[:15].rstrip(b" \x00")), entry[15], "status"))
    return out


class Names:
    """The distinct names of a capture: (name, suffix, kind, sender) -> first seen, count."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, int, str, str], list] = {}
        self.dropped = 0

    def packet(self, ts: float, ip: dpkt.ip.IP | dpkt.ip6.IP6) -> None:
        udp = ip.data
        if not isinstance(udp, dpkt.udp.UDP) or PORT not in (udp.sport, udp.dport) or not udp.data:
            return
        sender = flowpackets.ends_of(ip)[1]
        for name, suffix, kind in names_of(bytes(udp.data)):
            key = (name, suffix, kind, sender)
            if (seen := self.seen.get(key)) is not None:
                seen[1] += 1
            elif len(self.seen) < MAX_NAMES:
                self.seen[key] = [ts, 1]
            else:
                self.dropped += 1

    def rows(self) -> list[dict]:
        return [{"name": name, "suffix": suffix, "kind": kind, "ip": ip, "first_seen": eve_time(first) or "",
                 "count": count}
                for (name, suffix, kind, ip), (first, count) in self.seen.items()]


def observables(capture_id: str, rows: list[dict]) -> list[dict]:
    """The names as observables (kind `netbios_name`, pivoted like any value), one per name."""
    out: dict[str, dict] = {}
    for r in rows:
        o = out.setdefault(r["name"], {"capture_id": capture_id, "kind": "netbios_name", "value": r["name"],
                                       "field": "nbns.name", "count": 0, "first_seen": r["first_seen"] or None,
                                       "last_seen": r["first_seen"] or None})
        o["count"] += r["count"]
        if r["first_seen"]:
            o["first_seen"] = min(o["first_seen"] or r["first_seen"], r["first_seen"])
            o["last_seen"] = max(o["last_seen"] or r["first_seen"], r["first_seen"])
    return [o for name, o in out.items() if name]


def scan(capture: Path, names: Names) -> None:
    """Every NBNS packet of a capture into `names` (when the flow index, which feeds them as it
    walks, exists already)."""
    for p in flowpackets.walk(capture):
        if isinstance(p, flowpackets.Packet) and (ip := flowpackets.ip_layer(p.linktype, p.data)) is not None:
            names.packet(p.ts, ip)


def label(name: str, suffix: int) -> str:
    """`WORKGROUP<1d>`, as names are usually written."""
    return f"{name}<{suffix:02x}>"
