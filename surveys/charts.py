"""A small server-rendered SVG trend chart (no JavaScript, no chart library)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from surveys.instruments import Instrument

WIDTH, HEIGHT = 600, 180
PAD_L, PAD_R, PAD_T, PAD_B = 36, 10, 10, 24


@dataclass
class Chart:
    width: int
    height: int
    line: str  # polyline points
    dots: list[tuple[float, float, bool]]  # x, y, low
    threshold_y: float | None
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, datetime]]
    lo: float
    hi: float


def trend_chart(points, inst: Instrument, now: datetime, weeks: int = 8) -> Chart:
    lo, hi = float(inst.score.get("min", 0)), float(inst.score.get("max", 1))
    start = now - timedelta(weeks=weeks)
    span = (now - start).total_seconds()
    inner_w, inner_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B

    def x(at: datetime) -> float:
        return round(PAD_L + inner_w * max(0.0, (at - start).total_seconds()) / span, 1)

    def y(v: float) -> float:
        return round(PAD_T + inner_h * (1 - (v - lo) / ((hi - lo) or 1)), 1)

    dots = [(x(p.at), y(p.score), p.low) for p in points]
    threshold = inst.low_threshold
    ticks = sorted({lo, hi, *([float(threshold)] if threshold is not None else [])})
    return Chart(
        WIDTH,
        HEIGHT,
        " ".join(f"{a},{b}" for a, b, _ in dots),
        dots,
        y(float(threshold)) if threshold is not None else None,
        [(y(t), f"{t:g}") for t in ticks],
        [(x(start + timedelta(weeks=w)), start + timedelta(weeks=w)) for w in range(0, weeks + 1, 2)],
        lo,
        hi,
    )
