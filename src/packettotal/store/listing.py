"""The capture list's filters as SQL conditions on `captures` (each served by an index: see the
tables' declarations in db.py and docs/benchmarks.md)."""

from __future__ import annotations

import sqlalchemy as sa

from ..listing import CaptureFilter
from .db import capture_stats, captures, labels


def contains(text: str) -> str:
    """A LIKE pattern (`\\` escapes) matching names holding `text`, case-insensitively."""
    return "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def conditions(f: CaptureFilter) -> list[sa.ColumnElement[bool]]:
    c = captures.c
    out: list[sa.ColumnElement[bool]] = []
    if f.text:
        out.append(sa.func.lower(c.name).like(contains(f.text), escape="\\"))
    if f.label:
        lb = labels.c
        held = sa.select(lb.capture_id).where(lb.value_lower == f.label.lower())
        if f.label_kind:
            held = held.where(lb.kind == f.label_kind)
        out.append(c.id.in_(held))
    if f.status:
        out.append(c.status == f.status)
    if f.hidden:
        out.append(c.id.not_in(sorted(f.hidden)))
    if f.only is not None:
        out.append(c.id.in_(sorted(f.only)))
    if f.has_alerts is not None:  # probed per capture: the newest-first scan stops at the page's end
        s = capture_stats.c
        alerted = sa.exists().where(s.capture_id == c.id, s.alerts > 0)
        out.append(alerted if f.has_alerts else ~alerted)
    for column, start, end in ((c.submitted_at, f.submitted_from, f.submitted_to),
                               (c.finished_at, f.analysed_from, f.analysed_to)):
        if start is not None:
            out.append(column >= start)
        if end is not None:
            out.append(column < end)
    return out
