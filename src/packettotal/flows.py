"""One flow of a capture: its EVE records, its packets and its payload (the read side of the flow
page, the API and the CLI). Everything here comes from packets: callers escape it."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dpkt

from .errors import NotFound, QueryError
from .ingest import flowpackets

FLOW_REF = r"^(\d{1,20}|1:[A-Za-z0-9+/_\-]{27}=)$"  # a flow_id, or a community id (also URL-safe: - and _)
MAX_EVENTS = 1000   # records of one flow listed
PACKETS_PAGE = 100  # packet lines per page (at most)
PAYLOAD_PAGE = 16_384  # payload bytes of one direction per page (at most)
MAX_LAYERS = 8_000  # characters of one packet's decoded layers
MAX_CUT_FLOWS = 1000  # flows of one filtered pcap
WINDOW = 1.0  # seconds either side of the flow record's start and end whose packets belong to it
_TCP_FLAGS = "FSRPAUEC"


@dataclass(frozen=True)
class Flow:
    capture_id: str
    ref: str          # as asked for
    events: list[dict]  # in time order
    truncated: bool     # more than MAX_EVENTS records
    record: dict | None  # the flow record (Suricata's), when there is one
    first: dict          # the record the five-tuple is read from: the flow record, else the first

    @property
    def key(self) -> str | None:
        return flowpackets.key_of_record(self.first)

    @property
    def window(self) -> tuple[float | None, float | None]:
        f = (self.record or {}).get("flow") or {}
        start, end = _ts(f.get("start")), _ts(f.get("end"))
        return (start - WINDOW if start is not None else None, end + WINDOW if end is not None else None)

    def summary(self) -> dict:
        r, f = self.first, (self.record or {}).get("flow") or {}
        start, end = _ts(f.get("start")), _ts(f.get("end"))
        return {
            "flow_id": r.get("flow_id"), "community_id": r.get("community_id"), "proto": r.get("proto"),
            "src_ip": r.get("src_ip"), "src_port": r.get("src_port"), "dest_ip": r.get("dest_ip"),
            "dest_port": r.get("dest_port"), "app_proto": (self.record or r).get("app_proto"),
            "start": f.get("start"), "end": f.get("end"),
            "duration": round(end - start, 6) if start is not None and end is not None else None,
            "state": f.get("state"), "reason": f.get("reason"),
            "to_server": {"packets": f.get("pkts_toserver"), "bytes": f.get("bytes_toserver")},
            "to_client": {"packets": f.get("pkts_toclient"), "bytes": f.get("bytes_toclient")},
            "events": len(self.events), "truncated": self.truncated,
        }


def query_for(ref: str) -> str:
    if not re.match(FLOW_REF, ref):
        raise QueryError(f"{ref[:80]!r} is neither a flow_id (digits) nor a community id (1:...=)")
    if ref.isdigit():
        return f"flow_id:{ref}"
    return 'community_id:"' + ref.replace("-", "+").replace("_", "/") + '"'


def assemble(capture_id: str, ref: str, page) -> Flow:
    events = sorted((e["event"] for e in page.events), key=lambda e: str(e.get("timestamp", "")))
    if not events:
        raise NotFound(f"capture {capture_id[:12]} has no flow {ref[:80]}")
    record = next((e for e in events if e.get("event_type") == "flow"), None)
    return Flow(capture_id, ref, events, page.total > len(events), record, record or events[0])


def _ts(text) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
    except ValueError:
        return None


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _client(flow: Flow) -> tuple[str, int]:
    return str(ipaddress.ip_address(flow.first["src_ip"])), int(flow.first.get("src_port") or 0)


def packet_lines(flow: Flow, capture: Path, index: Path, offset: int = 0, limit: int = PACKETS_PAGE,
                 layers: bool = False) -> dict:
    """One page of the flow's packets: time, direction, flags, length, a summary (and with
    `layers`, each packet's decoded layers, as scapy shows them)."""
    client = _client(flow)
    lines, total = [], 0
    start, end = flow.window
    for n, p in enumerate(flowpackets.read_packets(capture, index, _key(flow), start, end)):
        total += 1
        if n < offset or n >= offset + limit:
            continue
        line = {"n": n + 1, "time": _iso(p.ts), "length": len(p.data), "direction": "", "flags": "",
                "summary": "undecodable"}
        ip = flowpackets.ip_layer(p.linktype, p.data)
        if ip is not None:
            proto, src, sport, dst, dport = flowpackets.ends_of(ip)
            line["direction"] = "to server" if (src, sport) == client else "to client"
            line["flags"], line["summary"] = _describe(ip.data, src, sport, dst, dport)
        if layers:
            line["layers"] = _layers(p.linktype, p.data)
        lines.append(line)
    return {"total": total, "offset": offset, "packets": lines}


def _describe(l4, src: str, sport: int, dst: str, dport: int) -> tuple[str, str]:
    if isinstance(l4, dpkt.tcp.TCP):
        flags = "".join(c for i, c in enumerate(_TCP_FLAGS) if l4.flags & (1 << i))
        return flags, f"TCP {src}:{sport} → {dst}:{dport} seq={l4.seq} ack={l4.ack} win={l4.win} len={len(l4.data)}"
    if isinstance(l4, dpkt.udp.UDP):
        return "", f"UDP {src}:{sport} → {dst}:{dport} len={len(l4.data)}"
    if isinstance(l4, dpkt.icmp.ICMP | dpkt.icmp6.ICMP6):
        return "", f"ICMP {src} → {dst} type={l4.type} code={l4.code}"
    return "", f"{type(l4).__name__} {src} → {dst}"


def _layers(linktype: int, data: bytes) -> str:
    from scapy.config import conf  # scapy loads slowly: only when layers are asked for
    cls: Any = conf.l2types.get(linktype)
    if cls is None:
        return f"link type {linktype}: not decoded"
    try:
        text = cls(data).show(dump=True) or ""
    except Exception as exc:  # scapy on a malformed packet: the line above still stands
        return f"not decoded: {type(exc).__name__}"
    return text if len(text) <= MAX_LAYERS else text[:MAX_LAYERS] + "\n… (cut)"


def _key(flow: Flow) -> str:
    key = flow.key
    if key is None:
        raise NotFound(f"flow {flow.ref[:80]} has no five-tuple to find its packets by")
    return key


def payload(flow: Flow, capture: Path, index: Path, offset: int = 0, limit: int = PAYLOAD_PAGE) -> dict:
    """Each direction's payload from `offset`, up to `limit` bytes: TCP in sequence order (each byte
    once, retransmissions dropped), other protocols' datagrams as they came."""
    client = _client(flow)
    segments: dict[str, list[tuple[int, bytes]]] = {"to server": [], "to client": []}
    tcp = False
    start, end = flow.window
    for p in flowpackets.read_packets(capture, index, _key(flow), start, end):
        ip = flowpackets.ip_layer(p.linktype, p.data)
        if ip is None:
            continue
        _, src, sport, _, _ = flowpackets.ends_of(ip)
        l4 = ip.data
        side = "to server" if (src, sport) == client else "to client"
        if isinstance(l4, dpkt.tcp.TCP):
            tcp = True
            if l4.data or l4.flags & dpkt.tcp.TH_SYN:
                segments[side].append((l4.seq + (1 if l4.flags & dpkt.tcp.TH_SYN else 0), bytes(l4.data)))
        elif isinstance(l4, dpkt.udp.UDP | dpkt.icmp.ICMP):
            segments[side].append((0, bytes(l4.data)))
    out = {}
    for side, segs in segments.items():
        data = _in_order(segs) if tcp else b"".join(d for _, d in segs)
        page = data[offset:offset + limit]
        out[side] = {"bytes": len(data), "offset": offset, "length": len(page), "text": as_text(page),
                     "hex": hexdump(page, offset)}
    return {"reassembled": tcp, "directions": out}


def _in_order(segs: list[tuple[int, bytes]]) -> bytes:
    """TCP segments (sequence number, data) -> the stream: by sequence (relative to the first,
    modulo 2^32), overlaps kept once."""
    if not segs:
        return b""
    base = segs[0][0]
    out, upto = bytearray(), 0
    for rel, data in sorted(((s - base) % (1 << 32), d) for s, d in segs if d):
        if rel + len(data) <= upto:
            continue
        out += data[max(0, upto - rel):]
        upto = max(upto, rel + len(data))
    return bytes(out)


def as_text(data: bytes) -> str:
    """Printable ASCII, tabs and line ends as they are; every other byte a '.'."""
    return "".join(chr(b) if 32 <= b < 127 or b in (9, 10, 13) else "." for b in data)


def _printable(data: bytes) -> str:
    return "".join(chr(b) if 32 <= b < 127 else "." for b in data)


def hexdump(data: bytes, start: int = 0) -> str:
    lines = []
    for i in range(0, len(data), 16):
        row = data[i:i + 16]
        lines.append(f"{start + i:08x}  {row.hex(' '):<47}  {_printable(row)}")
    return "\n".join(lines)
