"""Geometry for the summary's charts, drawn as inline SVG by the templates (no script, no inline
style: the Content-Security-Policy forbids both)."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT = 600, 120


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str


def timeline(data: dict) -> list[Bar]:
    """One bar per time bucket, height by event count, with a label listing the counts by type."""
    buckets = data.get("buckets") or []
    if not buckets:
        return []
    totals = [sum(b.values()) for b in buckets]
    top = max(totals) or 1
    step = WIDTH / len(buckets)
    bars = []
    for i, (b, total) in enumerate(zip(buckets, totals, strict=True)):
        h = round(HEIGHT * total / top, 1)
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(b.items(), key=lambda kv: -kv[1])[:6])
        bars.append(Bar(round(i * step, 1), round(HEIGHT - h, 1), round(max(step - 1, 1), 1), h,
                        f"bucket {i + 1}: {total} events" + (f" ({kinds})" if kinds else "")))
    return bars


def shares(values: dict[str, int] | list[tuple[str, int]], width: int = 200) -> list[tuple[str, int, float]]:
    """(label, value, bar width) for a horizontal bar list, the largest value full width."""
    items = list(values.items()) if isinstance(values, dict) else list(values)
    top = max((v for _, v in items), default=0) or 1
    return [(k, v, round(width * v / top, 1)) for k, v in items]
