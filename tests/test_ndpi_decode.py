"""ingest/ndpi/decode.py: where a frame's IP packet starts and its five-tuple, on frames built
with scapy (each link layer the helper reads) and cut ones."""

import socket

import pytest
from scapy.all import (
    ICMP,
    IP,
    TCP,
    UDP,
    Dot1AD,
    Dot1Q,
    Ether,
    IPv6,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    Loopback,
    PPPoE,
    raw,
)
from scapy.layers.l2 import CookedLinux
from scapy.layers.ppp import PPP

from packettotal.ingest.ndpi.decode import five_tuple, ip_offset

V4 = IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000, dport=443)
V6 = IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=5353, dport=53)
A4, B4 = socket.inet_aton("10.0.0.1"), socket.inet_aton("10.0.0.2")
A6, B6 = socket.inet_pton(socket.AF_INET6, "2001:db8::1"), socket.inet_pton(socket.AF_INET6, "2001:db8::2")


@pytest.mark.parametrize(("linktype", "frame", "start"), [
    (1, Ether() / V4, 14),
    (1, Ether() / Dot1Q(vlan=7) / V4, 18),
    (1, Ether() / Dot1AD(vlan=1) / Dot1Q(vlan=2) / V4, 22),
    (1, Ether() / PPPoE() / PPP(proto=0x0021) / V4, 22),
    (113, CookedLinux(proto=0x0800) / V4, 16),
    (0, Loopback(type=2) / V4, 4),
    (101, V4, 0),
])
def test_ipv4_behind_each_link_layer(linktype, frame, start):
    data = raw(frame)
    assert ip_offset(linktype, data) == start
    assert five_tuple(data, start) == (6, A4, 40000, B4, 443)


def test_ipv6_through_its_extension_headers():
    data = raw(IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrHopByHop() / UDP(sport=5353, dport=53))
    assert five_tuple(data, 0) == (17, A6, 5353, B6, 53)
    first = raw(IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrFragment(offset=0, m=1) / UDP(sport=1, dport=2))
    assert five_tuple(first, 0) == (17, A6, 1, B6, 2)
    later = raw(IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrFragment(offset=10, nh=17) / (b"x" * 16))
    assert five_tuple(later, 0) == (17, A6, 0, B6, 0)  # no ports past the first fragment


def test_no_ports_where_there_are_none():
    assert five_tuple(raw(IP(src="10.0.0.1", dst="10.0.0.2") / ICMP()), 0) == (1, A4, 0, B4, 0)
    later = raw(IP(src="10.0.0.1", dst="10.0.0.2", frag=100, proto=6) / (b"x" * 20))
    assert five_tuple(later, 0) == (6, A4, 0, B4, 0)


def test_cut_or_foreign_frames_are_refused():
    data = raw(Ether() / V6)
    for n in (0, 10, 13, 14, 30, 53):  # cut in the Ethernet header or in IPv6's (40 bytes)
        at = ip_offset(1, data[:n])
        assert at == -1 or five_tuple(data[:n], at) is None, n
    assert five_tuple(data, 14) == (17, A6, 5353, B6, 53)
    assert five_tuple(data[:14 + 40 + 2], 14) == (17, A6, 0, B6, 0)  # the ports cut off
    assert ip_offset(1, raw(Ether(type=0x0806) / (b"\0" * 28))) == -1  # ARP
    assert ip_offset(147, raw(V4)) == -1  # a link type it does not read
    assert five_tuple(b"\x50" + b"\0" * 40, 0) is None  # IP version 5
