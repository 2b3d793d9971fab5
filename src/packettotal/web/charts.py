"""Geometry for the summary's charts, drawn as inline SVG by the templates (no script, no inline
style: the Content-Security-Policy forbids both)."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT = 600, 120
MARK = 8  # the strip above the bars where buckets with alerts are marked
GAP = 1.0  # between two bars, at most a fifth of a bar's step


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    alerts: int = 0


def timeline(data: dict) -> list[Bar]:
    """One bar per time bucket, height by event count, with a label listing the counts by type.
    The bars span the axis: the first starts at 0, the last ends at WIDTH (the summary's start and
    end times), the gaps only between them."""
    buckets = data.get("buckets") or []
    if not buckets:
        return []
    buckets = [{k: n for k, n in b.items() if isinstance(n, int)} for b in buckets]
    totals = [sum(b.values()) for b in buckets]
    top = max(totals) or 1
    step = WIDTH / len(buckets)
    gap = min(GAP, step / 5) if len(buckets) > 1 else 0.0
    width = (WIDTH - gap * (len(buckets) - 1)) / len(buckets)
    room = HEIGHT - MARK - 2
    bars = []
    for i, (b, total) in enumerate(zip(buckets, totals, strict=True)):
        h = round(room * total / top, 1)
        alerts = b.get("alert", 0)
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(b.items(), key=lambda kv: -kv[1])[:6])
        bars.append(Bar(round(i * (width + gap), 3), round(HEIGHT - h, 1), round(width, 3), h,
                        f"bucket {i + 1}: {total} events" + (f" ({kinds})" if kinds else ""), alerts))
    return bars


def shares(values: dict[str, int] | list[tuple[str, int]], width: int = 200) -> list[tuple[str, int, float]]:
    """(label, value, bar width) for a horizontal bar list, the largest value full width."""
    items = list(values.items()) if isinstance(values, dict) else list(values)
    top = max((v for _, v in items), default=0) or 1
    return [(k, v, round(width * v / top, 1)) for k, v in items]
