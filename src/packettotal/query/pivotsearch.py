"""A lone indicator typed as a search is answered by its pivot (correlate.pivot): its captures as
a search's groups, so that a search's callers read them the same way. Pure."""

from __future__ import annotations

import datetime as dt

from ..errors import QueryError


def groups(pivot: dict, sort: str) -> list[dict]:
    """The pivot's captures as search groups: `hits` are the indicator's occurrences in the
    capture, `found_in` the event types it was seen in. sort: hits, newest, oldest."""
    out = [{"capture_id": c["capture_id"], "hits": c["count"], "found_in": c["found_in"], "name": c["name"],
            "submitted_at": c["submitted_at"], "labels": c["labels"]} for c in pivot["captures"]]
    if sort == "hits":
        out.sort(key=lambda g: -g["hits"])
    elif sort in ("newest", "oldest"):
        out.sort(key=lambda g: g["submitted_at"] or dt.datetime.min, reverse=sort == "newest")
    else:
        raise QueryError(f"sort must be hits, newest or oldest, not {sort[:20]!r}")
    return out
