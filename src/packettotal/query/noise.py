"""Values that tie captures together without telling anything about them: flow identifiers
(community ids, flow ids: each names one connection) and addresses every network uses alike
(multicast 224.0.0.0/4 and ff00::/8, 255.255.255.255, link-local 169.254.0.0/16 and fe80::/10,
the unspecified 0.0.0.0 and ::), and subnet broadcasts where a capture's DHCP told them
(ingest/broadcasts.py). Co-occurrence and similar-capture scores leave them out; pivots on them
still work. Pure."""

from __future__ import annotations

import functools
import ipaddress

KINDS = frozenset({"community_id", "flow_id"})
# a superset of the noisy IP values as SQL LIKE patterns (the database leaves them out; is_noise decides)
IP_PATTERNS = (*(f"{n}.%" for n in range(224, 240)), "169.254.%", "255.255.255.255", "0.0.0.0", "::",
               "ff%", "fe8%", "fe9%", "fea%", "feb%")


@functools.lru_cache(maxsize=65536)
def noise_ip(value: str) -> bool:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return False
    return (ip.is_multicast or ip.is_link_local or ip.is_unspecified
            or ip == ipaddress.IPv4Address("255.255.255.255"))


def is_noise(kind: str, value: str, broadcasts: frozenset[str] = frozenset()) -> bool:
    return kind in KINDS or (kind == "ip" and (noise_ip(value) or value in broadcasts))


def broadcasts_of(summaries: list[dict | None]) -> frozenset[str]:
    """The subnet broadcasts known from these captures' summaries (`broadcasts`)."""
    return frozenset(b for s in summaries for b in (s or {}).get("broadcasts") or ())
