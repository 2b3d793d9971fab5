"""Per-capture aggregates computed while records stream by: top talkers, protocol breakdown,
and a timeline of events. Pure: fed records, returns plain data for the summary."""

from __future__ import annotations

import datetime as dt
from collections import Counter

TIMELINE_BUCKETS = 60
TOP = 10
TALKERS_KEPT = 10_000  # addresses counted at once: past twice that, the smallest are let go
TIMES_KEPT = 200_000   # event times sampled for the timeline


class Aggregates:
    def __init__(self) -> None:
        self.talkers: Counter[str] = Counter()      # ip -> bytes (both directions, from flows)
        self.protocols: Counter[str] = Counter()    # app_proto (or transport) -> flows
        self.times: list[tuple[float, str]] = []    # (epoch, event_type), sampled

    def add(self, rec: dict) -> None:
        etype = rec.get("event_type")
        if etype == "flow":
            flow = f if isinstance(f := rec.get("flow"), dict) else {}
            size = sum(v for k in ("bytes_toserver", "bytes_toclient")
                       if isinstance(v := flow.get(k), int))
            for k in ("src_ip", "dest_ip"):
                if isinstance(rec.get(k), str):
                    self.talkers[rec[k]] += size
            if len(self.talkers) > 2 * TALKERS_KEPT:  # memory bounded; the top ten stay exact in practice
                self.talkers = Counter(dict(self.talkers.most_common(TALKERS_KEPT)))
            proto = rec.get("app_proto") if rec.get("app_proto") not in (None, "failed") else rec.get("proto")
            self.protocols[str(proto or "unknown")[:32]] += 1
        ts = rec.get("timestamp")
        if isinstance(ts, str) and len(self.times) < TIMES_KEPT:
            try:
                self.times.append((dt.datetime.fromisoformat(ts).timestamp(), str(etype)))
            except ValueError:
                pass

    def result(self) -> dict:
        return {"top_talkers": [{"ip": ip, "bytes": b} for ip, b in self.talkers.most_common(TOP)],
                "protocols": dict(self.protocols.most_common(20)), "timeline": self._timeline()}

    def _timeline(self) -> dict:
        if not self.times:
            return {"start": None, "end": None, "buckets": []}
        start = min(t for t, _ in self.times)
        end = max(t for t, _ in self.times)
        width = max((end - start) / TIMELINE_BUCKETS, 1e-6)
        buckets: list[Counter[str]] = [Counter() for _ in range(TIMELINE_BUCKETS)]
        for t, etype in self.times:
            buckets[min(int((t - start) / width), TIMELINE_BUCKETS - 1)][etype] += 1
        iso = lambda t: dt.datetime.fromtimestamp(t, dt.UTC).isoformat().replace("+00:00", "Z")  # noqa: E731
        return {"start": iso(start), "end": iso(end), "seconds_per_bucket": width,
                "buckets": [dict(b) for b in buckets]}
