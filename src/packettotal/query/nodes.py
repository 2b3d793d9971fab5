"""The backend-neutral query tree. Values stay typed: a wildcard is a tuple of parts, a CIDR is
an ip_network; each backend escapes for itself."""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass


class Sign(enum.Enum):
    """A wildcard sign; members keep their identity through pickling (trees cross processes)."""
    ANY = "*"
    ONE = "?"


ANY, ONE = Sign.ANY, Sign.ONE


@dataclass(frozen=True)
class Term:
    field: str | None  # None: free text over all fields
    value: str


@dataclass(frozen=True)
class Wildcard:
    field: str | None
    parts: tuple[str | Sign, ...]  # str literals, ANY, ONE

    def regex(self) -> str:
        import re
        return "".join(re.escape(p) if isinstance(p, str) else ".*" if p is ANY else "." for p in self.parts)


@dataclass(frozen=True)
class Phrase:
    field: str | None
    value: str


@dataclass(frozen=True)
class Range:
    field: str
    low: str | None
    high: str | None
    include_low: bool = True
    include_high: bool = True


@dataclass(frozen=True)
class Cidr:
    field: str
    network: ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Exists:
    field: str


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class MatchAll:
    pass


@dataclass(frozen=True)
class Captures:
    """Events of these captures (what a label query becomes once labels are looked up)."""
    ids: frozenset[str]


Node = Term | Wildcard | Phrase | Range | Cidr | Exists | And | Or | Not | MatchAll | Captures
