"""The console's tabs: which event types get one, their titles, and the columns of their tables
(declared with the types in evetypes.py). Pure data and pure functions; templates render what
these return."""

from __future__ import annotations

from dataclasses import dataclass

from .. import evetypes
from ..evetypes import ENDS, TIME, Column
from ..ingest.threats import severity_label
from ..records import values_at

MAX_CELL = 300  # characters shown in a cell; the row's JSON view holds the rest


@dataclass(frozen=True)
class Tab:
    key: str        # URL segment: the EVE event type, or "summary"
    title: str
    columns: tuple[Column, ...] = ()


_KNOWN: tuple[Tab, ...] = tuple(Tab(t.name, t.title or t.name, t.columns) for t in evetypes.tabbed())
KNOWN = {t.key: t for t in _KNOWN}
SUMMARY = Tab("summary", "Summary")
HIDDEN = frozenset({"stats"})  # Suricata's counters: shown in the summary, not as a tab
ALWAYS = frozenset({"alert"})  # Malicious activity: shown without alerts too, to say why there are none


def generic(event_type: str) -> Tab:
    """A tab for an event type without its own columns: the endpoints and the app-layer record."""
    return Tab(event_type, event_type.upper() if len(event_type) <= 4 else event_type.capitalize(),
               (TIME, *ENDS, Column("Details", (event_type,))))


def counts_of(summary: dict) -> dict[str, int]:
    """Records per tab: the EVE counts, the protocol-event rules' alerts moved from Malicious
    activity (alert) to Strange activity (anomaly) where the analysis told them apart, and the
    detectors' findings counted with Strange activity."""
    counts = dict(summary.get("counts") or {})
    if "threats" in summary:
        counts["alert"], counts["anomaly"] = summary["alerts"], summary["anomalies"]
    if summary.get("findings"):
        counts["anomaly"] = counts.get("anomaly", 0) + len(summary["findings"])
    return counts


def tabs_for(counts: dict[str, int]) -> list[tuple[Tab, int]]:
    """Summary first, then the well-known tabs in PacketTotal's order, then the rest by name;
    only the event types the capture has, and those shown ALWAYS."""
    present = {t: n for t, n in counts.items() if n and t not in HIDDEN} | {t: counts.get(t, 0) for t in ALWAYS}
    out = [(SUMMARY, 0)]
    out += [(t, present[t.key]) for t in _KNOWN if t.key in present]
    out += [(generic(t), present[t]) for t in sorted(present) if t not in KNOWN]
    return out


def tab(event_type: str) -> Tab:
    return KNOWN.get(event_type) or generic(event_type)


def cell(rec: dict, column: Column) -> list[str]:
    """The values of one cell as display strings (each bounded)."""
    out: list[str] = []
    for path in column.paths:
        for v in values_at(rec, path, scalars=False):
            if isinstance(v, dict):
                out.append(_brief(v))
            elif path == "alert.severity" and v is not None:
                out.append(severity_label(v))
            elif path == "timestamp" and isinstance(v, str):
                out.append(short_time(v))
            elif v is not None:
                out.append(str(v))
    return [v if len(v) <= MAX_CELL else v[:MAX_CELL] + "…" for v in out[:20]]


def short_time(ts: str) -> str:
    """An EVE timestamp as a cell shows it: date and time apart (they fit two narrow lines), the
    offset left out when it is UTC's."""
    date, sep, time = ts.partition("T")
    if not sep:
        return ts
    return f"{date} {time.removesuffix('+0000').removesuffix('Z')}"


def _brief(obj: dict) -> str:
    parts = []
    for k, v in obj.items():
        if isinstance(v, (dict, list)):
            continue
        parts.append(f"{k}={v}")
    return " ".join(parts)
