"""Figures: one row per measured quantity, with its baseline, ratio, target and verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Figure:
    part: str
    name: str
    value: float | None
    unit: str
    runs: list[float] = field(default_factory=list)
    baseline: str = ""
    ratio: float | None = None
    target: str = ""
    ok: bool | None = None  # None: no target, information only
    note: str = ""

    @property
    def verdict(self) -> str:
        return "" if self.ok is None else ("PASS" if self.ok else "MISS")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["verdict"] = self.verdict or None
        return out


def number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "%":
        return f"{value:.2f}%"
    if abs(value) >= 10_000:
        text = f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:,.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def _runs(values: Sequence[float]) -> str:
    if len(values) < 2:
        return ""
    return " / ".join(number(v) for v in values)


def render(figures: Sequence[Figure]) -> str:
    header = ("Measure", "Median", "Runs", "Baseline", "Ratio", "Target", "Result")
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    part = None
    sections: list[int] = []
    for f in figures:
        if f.part != part:
            part = f.part
            sections.append(len(rows))
        name = f.name
        if f.note:
            notes.append(f.note)
            name += f" [{len(notes)}]"
        ratio = "" if f.ratio is None else f"{f.ratio:.2f}×"
        rows.append((name, number(f.value, f.unit), _runs(f.runs), f.baseline, ratio, f.target, f.verdict))
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in (0, 2, 3, 5, 6) else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    for i, r in enumerate(rows):
        if i in sections:
            title = figures[i].part
            out.append(f"-- {title} " + "-" * max(0, sum(widths) + 2 * len(widths) - len(title) - 4))
        out.append(line(r))
    if notes:
        out.append("")
        out.extend(f"[{i}] {n}" for i, n in enumerate(notes, start=1))
    return "\n".join(out)
