"""Typed values of the query language, shared by the parser (which checks them where they were
typed, so an error names its position) and every backend (which converts them the same way).

Bounds are those every backend can hold: whole numbers fit a signed 64-bit integer, times lie
between 1970 (no capture format goes earlier) and 2262 (nanoseconds in 64 bits)."""

from __future__ import annotations

import datetime as dt
import ipaddress

from ..errors import QueryError

INT_MIN, INT_MAX = -(2 ** 63), 2 ** 63 - 1
TIME_MIN, TIME_MAX = dt.datetime(1970, 1, 1), dt.datetime(2262, 4, 11)
IP_MIN, IP_MAX = "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
_PREFIXES = (("%Y", "year"), ("%Y-%m", "month"), ("%Y-%m-%d", "day"), ("%Y-%m-%dT%H", "hour"),
             ("%Y-%m-%dT%H:%M", "minute"))
_STEPS = {"day": dt.timedelta(days=1), "hour": dt.timedelta(hours=1), "minute": dt.timedelta(minutes=1)}


def whole_number(value: str, field: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise QueryError(f"{field} expects a whole number, not {value[:40]!r}", expected="a number") from None
    if not INT_MIN <= n <= INT_MAX:
        raise QueryError(f"{field}: {value[:40]} is out of range (whole numbers go from {INT_MIN} to {INT_MAX})",
                         expected="a number that fits 64 bits, or * for an open end")
    return n


def time_span(value: str, field: str) -> tuple[dt.datetime, dt.datetime]:
    """A timestamp or a prefix of one (2020, 2020-02, 2020-02-05, 2020-02-05T12:29) -> [start, end)."""
    v = value.strip().replace(" ", "T")
    span = _prefix_span(v) or _instant(v)
    if span is None:
        raise QueryError(f"{field} expects a time such as 2020-02-05 or 2020-02-05T12:29:11, not {value[:40]!r}",
                         expected="an ISO 8601 date or time")
    start, end = span
    if start < TIME_MIN or end > TIME_MAX:
        raise QueryError(f"{field}: {value[:40]} is outside the times events can have "
                         f"({TIME_MIN:%Y-%m-%d} to {TIME_MAX:%Y-%m-%d})",
                         expected="a time in that span, or * for an open end")
    return start, end


def _prefix_span(v: str) -> tuple[dt.datetime, dt.datetime] | None:
    for fmt, step in _PREFIXES:
        try:
            start = dt.datetime.strptime(v, fmt)
        except ValueError:
            continue
        try:
            if step == "year":
                return start, start.replace(year=start.year + 1)
            if step == "month":
                return start, (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
            return start, start + _STEPS[step]
        except (ValueError, OverflowError):  # the span of year 9999 ends past what datetime holds
            return start, dt.datetime.max
    return None


def _instant(v: str) -> tuple[dt.datetime, dt.datetime] | None:
    try:
        t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        if t.tzinfo:
            t = t.astimezone(dt.UTC).replace(tzinfo=None)
        return t, t + dt.timedelta(microseconds=1)
    except (ValueError, OverflowError):
        return None


def ip_address(value: str, field: str) -> str:
    v = value.strip()
    _no_zone(v, field)
    try:
        return str(ipaddress.ip_address(v))
    except ValueError:
        raise QueryError(f"{field} expects an IP address or a CIDR network, not {value[:60]!r}",
                         expected="an address such as 10.0.0.5 or a network such as 10.0.0.0/8") from None


def network(value: str, field: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    v = value.strip()
    _no_zone(v, field)
    try:
        return ipaddress.ip_network(v, strict=False)
    except ValueError:
        raise QueryError(f"{value[:60]!r} is not a network in CIDR notation",
                         expected="an address/prefix such as 10.0.0.0/8 or 2001:db8::/32") from None


def _no_zone(v: str, field: str) -> None:
    if "%" in v:
        raise QueryError(f"{field}: {v[:60]!r} has a zone index ({v[v.index('%'):].split('/')[0][:20]}); events hold "
                         "addresses without one", expected="the address without its %zone")
