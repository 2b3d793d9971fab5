"""A capture's subnet broadcast addresses, where its DHCP answers tell them (an address and its
subnet mask: 192.168.1.10 with 255.255.255.0 makes 192.168.1.255). Pivots leave them out of
co-occurrence and similarity like the fixed broadcast and multicast ranges (query/noise.py). Pure."""

from __future__ import annotations

import ipaddress

MAX_BROADCASTS = 64  # per capture


def broadcast(address: object, mask: object) -> str | None:
    """The broadcast address of `address`'s subnet under `mask` (None: not a usable IPv4 pair)."""
    if not isinstance(address, str) or not isinstance(mask, str):
        return None
    try:
        net = ipaddress.IPv4Network(f"{address}/{mask}", strict=False)
    except ValueError:
        return None
    return str(net.broadcast_address) if 0 < net.prefixlen < 31 and not net.network_address.is_unspecified else None


class Broadcasts:
    def __init__(self) -> None:
        self.found: set[str] = set()

    def add(self, rec: dict) -> None:
        dhcp = rec.get("dhcp")
        if rec.get("event_type") != "dhcp" or not isinstance(dhcp, dict) or len(self.found) >= MAX_BROADCASTS:
            return
        for key in ("assigned_ip", "client_ip"):
            if (b := broadcast(dhcp.get(key), dhcp.get("subnet_mask"))) is not None:
                self.found.add(b)

    def result(self) -> list[str]:
        return sorted(self.found)
