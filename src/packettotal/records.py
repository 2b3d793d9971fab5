"""Pure helpers over EVE records (nested dicts and lists)."""

from __future__ import annotations

import datetime as dt
import functools

_SCALARS = (str, int, float, bool)


@functools.lru_cache(maxsize=1024)
def _parts(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def values_at(rec: object, path: str, scalars: bool = True) -> list:
    """All values at a dotted path, descending through lists (dns.answers.rdata); by default
    only the scalar ones."""
    parts = _parts(path)
    cur = rec
    for i, part in enumerate(parts):  # fast path: dicts all the way down
        if isinstance(cur, dict):
            cur = cur.get(part)
            if cur is None:
                return []
        elif isinstance(cur, list):
            return _through_lists([cur], parts[i:], scalars)
        else:
            return []
    items = cur if isinstance(cur, list) else [cur]
    return items if not scalars else [v for v in items if isinstance(v, _SCALARS)]


def _through_lists(cur: list, parts: tuple[str, ...], scalars: bool) -> list:
    for part in parts:
        nxt = []
        for c in cur:
            for item in (c if isinstance(c, list) else [c]):
                if isinstance(item, dict) and part in item:
                    v = item[part]
                    nxt.extend(v if isinstance(v, list) else [v])
        cur = nxt
        if not cur:
            return []
    return cur if not scalars else [v for v in cur if isinstance(v, _SCALARS)]


def eve_time(ts: float) -> str | None:
    """A packet's time in EVE's form; None for a time no date holds (a pcapng's 64-bit stamp can
    be anything)."""
    try:
        return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")
    except (OverflowError, OSError, ValueError):
        return None
