"""Geometry of the admin page's chart, drawn by the template as inline SVG (no JavaScript)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

from .history import Sample

WIDTH, HEIGHT = 640, 170
LEFT, RIGHT, TOP, BOTTOM = 44, 40, 10, 24


def _points(coords: list[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)


def chart(samples: Sequence[Sample], now: float, span: float | None = None) -> dict[str, Any]:
    """Utilisation (% of pool_size + max_overflow checked out) and waiting threads over ``span`` s.

    Without ``span`` the chart covers the samples there are, in whole
    minutes from one to ten, so a young process's line is not a sliver.

    Returns coordinates in a WIDTH x HEIGHT box: ``utilisation`` and
    ``waiting`` are SVG polyline points, ``timeouts`` the x of each sample in
    which a checkout timed out, plus the axes' ticks.
    """
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    if span is None:
        oldest = min((s.time for s in samples), default=now)
        span = float(min(10, max(1, math.ceil((now - oldest) / 60))) * 60)
    start = now - span
    shown = [s for s in samples if s.time >= start]
    max_waiting = max([1, *(s.waiting for s in shown)])

    def x(t: float) -> float:
        return LEFT + (t - start) / span * plot_w

    def y(fraction: float) -> float:
        return TOP + (1 - min(max(fraction, 0.0), 1.0)) * plot_h

    utilisation = [(x(s.time), y(s.checked_out / s.capacity if s.capacity else 0)) for s in shown]
    waiting = [(x(s.time), y(s.waiting / max_waiting)) for s in shown]
    timeouts = [
        round(x(cur.time), 1)
        for prev, cur in itertools.pairwise(shown)
        if cur.timeouts > prev.timeouts
    ]
    minutes = max(1, int(span // 60))
    step = max(1, minutes // 5)
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "top": TOP,
        "bottom": HEIGHT - BOTTOM,
        "mid_x": (LEFT + WIDTH - RIGHT) // 2,
        "mid_y": (TOP + HEIGHT - BOTTOM) // 2,
        "enough": len(shown) >= 2,
        "samples": len(shown),
        "span_minutes": minutes,
        "utilisation": _points(utilisation),
        "waiting": _points(waiting),
        "timeouts": timeouts,
        "max_waiting": max_waiting,
        "y_ticks": [
            {"y": round(y(f), 1), "label": f"{int(f * 100)}%", "right": _count(f * max_waiting)}
            for f in (0.0, 0.5, 1.0)
        ],
        "x_ticks": [
            {"x": round(x(now - m * 60), 1), "label": "now" if m == 0 else f"-{m} min"}
            for m in range(minutes, -1, -step)
        ]
        if minutes > 1
        else [
            {"x": round(x(now - s), 1), "label": "now" if s == 0 else f"-{s} s"}
            for s in (60, 45, 30, 15, 0)
        ],
        "latest": shown[-1] if shown else None,
    }


def _count(value: float) -> str:
    return f"{value:g}" if value == int(value) else ""
