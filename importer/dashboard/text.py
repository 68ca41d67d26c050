"""Numbers and times as people read them: 1,234,567; 1.2M; 95.3%; 2026-11-02 02:30 UTC; 3 min 5 s."""

from __future__ import annotations

import time


def number(n: float) -> str:
    return f"{round(n):,}"


def compact(n: float) -> str:
    """Axis ticks: 950, 12k, 1.2M."""
    value = abs(n)
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            text = f"{n / size:.1f}".removesuffix(".0")
            return f"{text}{suffix}"
    return f"{n:,.0f}"


def percent(part: float, whole: float) -> str:
    if not whole:
        return "0%"
    share = 100 * part / whole
    if 0 < share < 0.1:
        return "<0.1%"
    if 99.9 < share < 100:
        return ">99.9%"
    return f"{share:.1f}%".replace(".0%", "%")


def when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))
