"""Unknown fields: a query naming a field nobody knows is answered with the nearest known ones
(`dns.rrnam` -> dns.rrname) rather than a silent nothing. Pure.

Known: the catalogue's fields and aliases, `capture`, the capture fields resolved in the database
(`tag:`, `finding:`, `geo.country:`, `ndpi.app:`, ...) and every path evetypes.py names (observables,
tab columns). EVE fields outside the catalogue still match exact values through the generic JSON
index, so a field under one of Suricata's top-level EVE keys (`dns.opcode`) is taken as such,
unless it is a near miss of a known field (`dns.rrnam`)."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from .. import evetypes
from . import fields as catalog
from .nodes import And, Node, Not, Or

NEAR = 0.85      # this close to a known field: a typo of it, not another EVE field
SUGGEST = 0.6    # the closest known fields suggested, at most SUGGESTIONS of them
SUGGESTIONS = 3
KNOWN: frozenset[str] = frozenset({
    *catalog.BY_NAME, *catalog.ALIASES, *catalog.SPECIAL, *catalog.CAPTURE_FIELDS,
    *(p for t in evetypes.ALL for fs in t.observables.values() for p in fs),
    *(p for t in evetypes.ALL for c in t.columns for p in c.paths)})
# Suricata 7's top-level EVE keys: the event types it writes (ingest/suricata.yaml.tmpl) and the
# members a record of any type may carry
EVE_ROOTS: frozenset[str] = frozenset({
    *(t.name for t in evetypes.TYPES), "files", "dcerpc", "nfs", "tftp", "ike", "rfb", "bittorrent_dht",
    "pgsql", "stats", "email", "frame", "timestamp", "flow_id", "parent_id", "pcap_cnt", "pcap_filename",
    "event_type", "src_ip", "src_port", "dest_ip", "dest_port", "proto", "app_proto", "app_proto_ts",
    "app_proto_tc", "app_proto_orig", "app_proto_expected", "community_id", "tx_id", "tx_guessed", "vlan",
    "in_iface", "direction", "ether", "tunnel", "host", "metadata", "payload", "payload_printable", "packet",
    "packet_info", "stream", "verdict", "capture", "icmp_type", "icmp_code", "response_icmp_type",
    "response_icmp_code", "ip_v", "tcp", "spi", "engine"})


def unknown(name: str) -> list[str] | None:
    """None for a field a query may name; else the known fields nearest to it (maybe none)."""
    if name in KNOWN:
        return None
    root = name.split(".", 1)[0]
    near = difflib.get_close_matches(name, KNOWN, n=SUGGESTIONS, cutoff=NEAR)
    if root in EVE_ROOTS and not near:
        return None
    return near or difflib.get_close_matches(name, KNOWN, n=SUGGESTIONS, cutoff=SUGGEST)


def fields_of(node: Node) -> Iterator[str]:
    """The field names a tree's leaves name, in order."""
    if isinstance(node, (And, Or)):
        for c in node.children:
            yield from fields_of(c)
    elif isinstance(node, Not):
        yield from fields_of(node.child)
    elif isinstance(field := getattr(node, "field", None), str):
        yield field


def first_unknown(node: Node) -> tuple[str, list[str]] | None:
    """The first unknown field of a tree and its suggestions."""
    for name in dict.fromkeys(fields_of(node)):
        near = unknown(name)
        if near is not None:
            return name, near
    return None


def message(name: str, near: list[str]) -> str:
    hint = f"did you mean {' or '.join(near)}?" if near else "see the field list (/fields)"
    return f"unknown field {name[:100]!r}; {hint}"
