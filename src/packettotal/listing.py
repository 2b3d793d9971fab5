"""The capture list's filters (the /captures page, GET /api/v1/captures): read and checked here,
turned into SQL by store/listing.py."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .errors import QueryError
from .query.fields import LABEL_KINDS

STATUSES = ("queued", "running", "indexing", "done", "failed")  # indexing: analysed, in the spool
MAX_TEXT = 200  # characters of the name filter and of a label filter


@dataclass(frozen=True)
class CaptureFilter:
    text: str | None = None          # in the name, case-insensitive
    label_kind: str | None = None    # None: a label of any kind
    label: str | None = None         # a label's value, case-insensitive
    status: str | None = None
    has_alerts: bool | None = None   # threat alerts counted by the last analysis
    submitted_from: dt.datetime | None = None  # UTC, inclusive
    submitted_to: dt.datetime | None = None    # UTC, exclusive
    analysed_from: dt.datetime | None = None   # finished_at
    analysed_to: dt.datetime | None = None
    hidden: frozenset[str] = frozenset()      # captures the viewer may not see (auth/visibility.py)
    only: frozenset[str] | None = None        # None: any; else only these (a scoped name match: store/scoped.py)

    @property
    def empty(self) -> bool:
        return self == CaptureFilter()


def make(text: str | None = None, label: str | None = None, status: str | None = None,
         has_alerts: bool | None = None, submitted_from: str | None = None, submitted_to: str | None = None,
         analysed_from: str | None = None, analysed_to: str | None = None) -> CaptureFilter:
    """A filter from what a form or a query string gives (blank: no filter); raises QueryError."""
    text = " ".join((text or "").split()) or None
    if text is not None and len(text) > MAX_TEXT:
        raise QueryError(f"the name filter is at most {MAX_TEXT} characters")
    status = (status or "").strip() or None
    if status is not None and status not in STATUSES:
        raise QueryError(f"status is one of {', '.join(STATUSES)}, not {status[:20]!r}")
    kind, value = _label(label)
    return CaptureFilter(text, kind, value, status, has_alerts,
                         _moment(submitted_from, "submitted_from"), _moment(submitted_to, "submitted_to", end=True),
                         _moment(analysed_from, "analysed_from"), _moment(analysed_to, "analysed_to", end=True))


def _label(text: str | None) -> tuple[str | None, str | None]:
    """`Emotet` (any kind) or `family:Emotet`."""
    text = " ".join((text or "").split())
    if not text:
        return None, None
    if len(text) > MAX_TEXT:
        raise QueryError(f"the label filter is at most {MAX_TEXT} characters")
    kind, sep, value = text.partition(":")
    if sep and kind.strip().lower() in LABEL_KINDS and value.strip():
        kind = kind.strip().lower()
        return (None if kind == "tag" else kind), value.strip()
    return None, text


def _moment(text: str | None, name: str, end: bool = False) -> dt.datetime | None:
    """A date (`2026-12-02`: the whole day, so an end is the next midnight) or an ISO 8601 time
    (UTC unless it says otherwise), as the naive UTC the database keeps."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        if len(text) == 10:
            day = dt.datetime.combine(dt.date.fromisoformat(text), dt.time())
            return day + dt.timedelta(days=1) if end else day
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(f"{name} is a date (2026-12-02) or an ISO 8601 time, not {text[:40]!r}") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment
