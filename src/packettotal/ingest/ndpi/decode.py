"""A captured frame -> where its IP packet starts and its five-tuple, read with `struct` in place
(no packet object: the helper does this for every packet of a capture). Pure; the frame is
attacker-controlled, so every offset is checked against its length."""

from __future__ import annotations

import struct

_VLANS = (0x8100, 0x88A8, 0x9100)
_PPPOE_SESSION = 0x8864
_IPV4, _IPV6 = 0x0800, 0x86DD
_V6_EXTENSIONS = (0, 43, 60)  # hop-by-hop, routing, destination options (fragment: 44, apart)
_PORTS = (6, 17, 132)  # TCP, UDP, SCTP
_H = struct.Struct("!H")
_HH = struct.Struct("!HH")

Tuple = tuple[int, bytes, int, bytes, int]  # proto, source, source port, destination, destination port


def ip_offset(linktype: int, frame: bytes) -> int:
    """Where the (outer) IP packet starts in the frame, or -1."""
    if linktype == 1:  # Ethernet, through VLAN tags and a PPPoE session
        return _ether(frame, 12)
    if linktype == 113:  # Linux cooked (SLL)
        return _ether(frame, 14)
    if linktype == 276:  # SLL2: the protocol comes first
        return _ether(frame, 0, start=20)
    if linktype == 0 and len(frame) > 4:  # BSD loopback: a host-order family
        return 4
    if linktype in (12, 14, 101, 228, 229):  # raw IP
        return 0
    return -1


def _ether(frame: bytes, at: int, start: int | None = None) -> int:
    """Follow the EtherType at `at` (the payload after it, or at `start`) to IPv4/IPv6."""
    body = at + 2 if start is None else start
    for _ in range(4):
        if len(frame) < at + 2:
            return -1
        kind = _H.unpack_from(frame, at)[0]
        if kind in (_IPV4, _IPV6):
            return body if len(frame) > body else -1
        if kind in _VLANS:
            at, body = body + 2, body + 4
        elif kind == _PPPOE_SESSION and len(frame) >= body + 8:
            ppp = _H.unpack_from(frame, body + 6)[0]
            return body + 8 if ppp in (0x0021, 0x0057) else -1
        else:
            return -1
    return -1


def five_tuple(packet: bytes | memoryview, at: int) -> Tuple | None:
    """The IP packet at `at`: (proto, source, source port, destination, destination port), raw
    addresses, ports 0 where there are none (fragments past the first, ICMP, ...); None if it is
    not IP or is cut inside its header."""
    n = len(packet)
    if n < at + 20:
        return None
    version = packet[at] >> 4
    if version == 4:
        ihl = (packet[at] & 0x0F) * 4
        proto = packet[at + 9]
        src, dst = bytes(packet[at + 12:at + 16]), bytes(packet[at + 16:at + 20])
        later_fragment = _H.unpack_from(packet, at + 6)[0] & 0x1FFF
        l4 = at + ihl
        if ihl < 20 or later_fragment:
            return proto, src, 0, dst, 0
    elif version == 6:
        if n < at + 40:
            return None
        proto, src, dst = packet[at + 6], bytes(packet[at + 8:at + 24]), bytes(packet[at + 24:at + 40])
        l4 = at + 40
        for _ in range(8):
            if proto in _V6_EXTENSIONS and n >= l4 + 8:
                proto, l4 = packet[l4], l4 + (packet[l4 + 1] + 1) * 8
            elif proto == 44 and n >= l4 + 8:  # fragment: only the first holds the ports
                later = _H.unpack_from(packet, l4 + 2)[0] >> 3
                proto, l4 = packet[l4], l4 + 8
                if later:
                    return proto, src, 0, dst, 0
            else:
                break
    else:
        return None
    if proto in _PORTS and n >= l4 + 4:
        sport, dport = _HH.unpack_from(packet, l4)
        return proto, src, sport, dst, dport
    return proto, src, 0, dst, 0
