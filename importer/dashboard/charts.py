"""The report's charts: matplotlib figures rendered to inline SVG.

Why matplotlib and SVG: the page must work offline, from a file, forever. matplotlib draws the
chart in Python and writes plain SVG, so the page needs no JavaScript at all (Vega-Lite through
altair would need vega, vega-lite and vega-embed inlined, about 1 MB of script, and a browser
that runs it; a print or a mail client may not). SVG text stays text (``svg.fonttype: none``):
it is selectable, searchable and read by screen readers, and it prints sharply.

Readable without colour: every series has a hatch pattern as well as an Okabe-Ito colour, and
bars carry their numbers. Every data mark gets an ``id`` starting with ``data-`` so a test (or a
reader of the source) can tell a chart with data from an empty frame.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, DateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from importer.dashboard.data import Bin, QuotaDay, Reason
from importer.dashboard.text import compact, number, percent

# Okabe-Ito colours (distinguishable with the common colour-vision deficiencies) plus a pattern each.
STYLE = {
    "sent": ("#009E73", "", "Sent"),
    "failed": ("#D55E00", "xxx", "Failed"),
    "invalid": ("#E69F00", "///", "Invalid"),
    "not_sent": ("#56B4E9", "--", "Not sent yet"),
}
INK = "#222222"
RC: dict[str, Any] = {
    "svg.fonttype": "none",  # text stays text in the SVG
    "font.family": "sans-serif",
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#555555",
    "axes.labelcolor": INK,
    "xtick.color": INK,
    "ytick.color": INK,
    "hatch.linewidth": 0.8,
    "legend.frameon": False,
}
WIDTH_IN = 9.0


@dataclass
class Chart:
    """One rendered chart: its SVG and the numbers behind it (shown as a table beside it)."""

    key: str
    title: str
    caption: str
    svg: str
    header: Sequence[str] = ()
    rows: Sequence[Sequence[str]] = field(default_factory=list)


@contextmanager
def _figure(key: str, height: float, rows: int = 1) -> Iterator[tuple[Figure, list[Axes]]]:
    settings: Any = {**RC, "svg.hashsalt": key}  # a salt per chart: ids stay unique in one page
    with rc_context(settings):
        fig = Figure(figsize=(WIDTH_IN, height), layout="constrained")
        axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0].tolist()
        yield fig, axes


def _svg(fig: Figure, key: str, title: str) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]  # no XML prolog or doctype inside HTML
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    label = f'<svg role="img" aria-labelledby="{key}-title"'
    text = text.replace("<svg", label, 1)
    text = re.sub(r"(<svg[^>]*>)", rf'\1<title id="{key}-title">{title}</title>', text, count=1)
    return text


def _mark(artists: Iterator[object] | list[object], key: str, series: str) -> None:
    for i, artist in enumerate(artists):
        artist.set_gid(f"data-{key}-{series}-{i}")  # type: ignore[attr-defined]


def _numbers(ax: Axes, axis: str = "y") -> None:
    fmt = FuncFormatter(lambda v, _: compact(v))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_locator(MaxNLocator(nbins=5, integer=True))


def _dates(ax: Axes, days: bool = False) -> None:
    """Date ticks; with ``days``, a short span is ticked at midnights only (a bar is one UTC day)."""
    low, high = ax.get_xlim()
    if days and high - low <= 16:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=int(high - low) + 1, integer=True))
        ax.xaxis.set_major_formatter(DateFormatter("%b %d"))  # type: ignore[no-untyped-call]
        return
    locator = AutoDateLocator(minticks=3, maxticks=9)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


def _bar_style(outcome: str) -> dict[str, object]:
    colour, hatch, _ = STYLE[outcome]
    return {"color": colour, "hatch": hatch, "edgecolor": INK, "linewidth": 0}


# -- the charts ----------------------------------------------------------------------------------
def progress(outcomes: dict[str, int]) -> Chart:
    key, title = "progress", "Every event known, by outcome"
    total = sum(outcomes.values())
    with _figure(key, 1.6) as (fig, (ax,)):
        left = 0
        for outcome in ("sent", "failed", "invalid", "not_sent"):
            n = outcomes.get(outcome, 0)
            label = f"{STYLE[outcome][2]}: {number(n)} ({percent(n, total)})"
            bars = ax.barh([0], [n], left=left, label=label, **_bar_style(outcome))  # type: ignore[arg-type]
            _mark(list(bars), key, outcome)
            if total and n / total > 0.12:
                ax.text(left + n / 2, 0, f"{STYLE[outcome][2]}\n{percent(n, total)}", ha="center", va="center",
                        color=INK, fontweight="bold",
                        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 2})  # fmt: skip
            left += n
        ax.set_xlim(0, max(total, 1))
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        _numbers(ax, "x")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=4, fontsize=9)
        svg = _svg(fig, key, title)
    rows = [(STYLE[o][2], number(outcomes.get(o, 0)), percent(outcomes.get(o, 0), total)) for o in STYLE]
    caption = f"{number(total)} events known: sent, failed, invalid (never sent) and not sent yet."
    return Chart(key, title, caption, svg, ("Outcome", "Events", "Share"), rows)


def by_day(points: list[tuple[int, str, int]]) -> Chart | None:
    """Events by the day they happened (occurredTimestamp, UTC), stacked by outcome."""
    key = "days"
    dated = [(d, o, n) for d, o, n in points if d >= 0]
    if not dated:
        return None
    days = np.array([d for d, _, _ in dated], dtype="int64")
    span = int(days.max() - days.min()) + 1
    unit, step, name = ("D", 1, "day") if span <= 180 else ("W", 7, "week") if span <= 3 * 365 else ("M", 30, "month")
    as_dates = days.astype("datetime64[D]")
    if unit == "W":
        buckets = (days - (days + 3) % 7).astype("datetime64[D]")  # Mondays (1970-01-01 was a Thursday)
    elif unit == "M":
        buckets = as_dates.astype("datetime64[M]").astype("datetime64[D]")
    else:
        buckets = as_dates
    axis = np.unique(buckets)
    index = {b: i for i, b in enumerate(axis.tolist())}
    counts = {o: np.zeros(len(axis), dtype="int64") for o in STYLE}
    for b, (_, outcome, n) in zip(buckets.tolist(), dated, strict=True):
        counts[outcome][index[b]] += n
    title = f"Events by {name} they happened, by outcome"
    with _figure(key, 3.2) as (fig, (ax,)):
        bottom = np.zeros(len(axis), dtype="int64")
        x = axis.astype("datetime64[D]")
        for outcome in STYLE:
            values = counts[outcome]
            if not values.any():
                continue
            bars = ax.bar(x, values, width=step * 0.9, bottom=bottom, label=STYLE[outcome][2], align="edge",
                          **_bar_style(outcome))  # type: ignore[arg-type]  # fmt: skip
            _mark(list(bars), key, outcome)
            bottom = bottom + values
        _dates(ax, days=True)
        _numbers(ax)
        ax.set_ylabel(f"events per {name}")
        ax.legend(loc="upper left", ncol=4, fontsize=9)
        ax.set_ylim(0, max(1, int(bottom.max())) * 1.2)
        svg = _svg(fig, key, title)
    rows = [
        (str(b), *(number(int(counts[o][i])) for o in STYLE))
        for i, b in enumerate(axis.astype("datetime64[D]").tolist())
    ]
    unknown = sum(n for d, _, n in points if d < 0)
    caption = f"Day of occurredTimestamp in UTC, one bar per {name}."
    if unknown:
        caption += (
            f" Not shown: {number(unknown)} events without a usable day (an invalid timestamp, or sent before "
            "this state directory kept the day)."
        )
    return Chart(key, title, caption, svg, (name.capitalize(), *(STYLE[o][2] for o in STYLE)), rows[-200:])


def _times(seconds: list[float]) -> np.ndarray:
    return np.array([int(s * 1000) for s in seconds], dtype="int64").astype("datetime64[ms]")


def sending(bins: list[Bin]) -> Chart | None:
    """Requests in the busiest window of each stretch against the limit; 429s and retries below."""
    key = "sending"
    if not bins:
        return None
    width = bins[0].seconds
    title = "Requests per rate-limit window against the learned limit; 429 answers and retries"
    with _figure(key, 4.2, rows=2) as (fig, (top, bottom)):
        starts, peaks, limits = [], [], []
        last_end = None
        for b in bins:
            if last_end is not None and b.start - last_end > width:  # an idle stretch: break the lines
                starts.append(last_end)
                peaks.append(np.nan)
                limits.append(np.nan)
            starts.append(b.start)
            peaks.append(float(b.peak))
            limits.append(np.nan if b.limit is None else float(b.limit))
            last_end = b.start + b.seconds
        x = _times(starts)
        (line,) = top.plot(x, peaks, color="#0072B2", drawstyle="steps-post", linewidth=1.6,
                           label="requests in the window", marker="o", markersize=2.5)  # fmt: skip
        _mark([line], key, "requests")
        if not np.all(np.isnan(limits)):
            (limit,) = top.plot(x, limits, color=INK, linestyle="--", drawstyle="steps-post", linewidth=1.2,
                                label="limit per window")  # fmt: skip
            _mark([limit], key, "limit")
        top.set_ylabel("requests")
        top.set_ylim(0, max(1.0, np.nanmax([*peaks, *limits])) * 1.25)
        top.legend(loc="upper left", ncol=2, fontsize=9)
        _numbers(top)
        bx = _times([b.start for b in bins])
        bar_w = width / 86_400 * 0.45  # in days, matplotlib's date unit
        limited = bottom.bar(bx, [b.rate_limited for b in bins], width=bar_w, align="edge", label="429 answers",
                             **_bar_style("failed"))  # type: ignore[arg-type]  # fmt: skip
        retried = bottom.bar(bx + np.timedelta64(int(width * 500), "ms"), [b.retries for b in bins], width=bar_w,
                             align="edge", label="retries", **_bar_style("invalid"))  # type: ignore[arg-type]  # fmt: skip
        _mark(list(limited), key, "429")
        _mark(list(retried), key, "retries")
        bottom.set_ylabel("count")
        bottom.legend(loc="upper left", ncol=2, fontsize=9)
        top_count = max([b.retries for b in bins] + [b.rate_limited for b in bins] + [1])
        bottom.set_ylim(0, top_count * 1.3)
        _numbers(bottom)
        _dates(bottom)
        svg = _svg(fig, key, title)
    rows = [
        (_stamp(b.start), number(b.peak), "—" if b.limit is None else number(b.limit), number(b.requests),
         number(b.rate_limited), number(b.retries))
        for b in bins
    ]  # fmt: skip
    stretch = "window" if bins and all(b.seconds == width for b in bins) and len(bins) < 400 else "stretch"
    caption = (
        f"Each point is the busiest rate-limit window in a {_span(width)} {stretch} (UTC); the dashed line is the "
        "limit learned from HubSpot's headers. Below: 429 answers and retries in the same stretch."
    )
    header = ("From (UTC)", "Busiest window", "Limit", "Requests", "429 answers", "Retries")
    return Chart(key, title, caption, svg, header, rows[-200:])


def quota(days: list[QuotaDay], daily: int | None, reserve: int | None) -> Chart | None:
    key = "quota"
    if not days:
        return None
    title = "Daily request quota used, per day (UTC)"
    x = np.array([d.day for d in days], dtype="int64").astype("datetime64[D]")
    with _figure(key, 3.0) as (fig, (ax,)):
        bars = ax.bar(x, [d.requests for d in days], width=0.6, label="requests by media-import",
                      **_bar_style("sent"))  # type: ignore[arg-type]  # fmt: skip
        _mark(list(bars), key, "requests")
        ax.bar_label(bars, labels=[compact(d.requests) for d in days], fontsize=8, padding=2)
        used = [np.nan if d.account_used is None else d.account_used for d in days]
        if not np.all(np.isnan(used)):
            (marks,) = ax.plot(x, used, linestyle="none", marker="D", color=INK, markersize=5,
                               label="used by every app of the account")  # fmt: skip
            _mark([marks], key, "account")
        ceiling = max([d.daily or 0 for d in days] + [daily or 0])
        if ceiling:
            ax.axhline(ceiling, color=INK, linestyle="--", linewidth=1.2, label=f"daily quota {number(ceiling)}")
            if reserve:
                ax.axhline(ceiling - reserve, color=INK, linestyle=":", linewidth=1.0,
                           label=f"stop point (reserve {number(reserve)})")  # fmt: skip
        ax.set_ylim(0, max([ceiling, *(d.requests for d in days), 1]) * 1.3)
        ax.set_xlim(x.min() - np.timedelta64(1, "D"), x.max() + np.timedelta64(1, "D"))
        _numbers(ax)
        _dates(ax, days=True)
        fig.legend(loc="outside lower center", ncol=4, fontsize=9)
        svg = _svg(fig, key, title)
    rows = [
        (str(np.datetime64(d.day, "D")), number(d.requests), "—" if d.daily is None else number(d.daily),
         "—" if d.account_used is None else number(d.account_used))
        for d in days
    ]  # fmt: skip
    caption = (
        "Requests this tool made each UTC day, the account's daily quota and, where HubSpot reported it, what "
        "every app of the account used (HubSpot resets the quota at midnight in the account's time zone)."
    )
    return Chart(key, title, caption, svg, ("Day (UTC)", "Requests", "Daily quota", "Account used"), rows[-200:])


def reasons(items: list[Reason]) -> Chart | None:
    key = "reasons"
    if not items:
        return None
    title = "Invalid and failed events by reason"
    shown = list(reversed(items))  # the largest at the top
    labels = [_short(f"{r.kind}: {r.reason}", 70) for r in shown]
    with _figure(key, 0.9 + 0.38 * len(shown)) as (fig, (ax,)):
        for kind in ("invalid", "failed"):
            ys = [i for i, r in enumerate(shown) if r.kind == kind]
            if not ys:
                continue
            bars = ax.barh(ys, [shown[i].count for i in ys], height=0.6, label=STYLE[kind][2],
                           **_bar_style(kind))  # type: ignore[arg-type]  # fmt: skip
            _mark(list(bars), key, kind)
            ax.bar_label(bars, labels=[number(shown[i].count) for i in ys], fontsize=8, padding=3)
        ax.set_yticks(range(len(shown)), labels)
        ax.set_xlim(0, max(r.count for r in shown) * 1.15)
        _numbers(ax, "x")
        ax.legend(loc="lower right", fontsize=9)
        svg = _svg(fig, key, title)
    rows = [(r.kind, r.reason, r.field or "", number(r.count)) for r in items]
    caption = "Invalid events never reach HubSpot; failed events were refused by HubSpot or outlasted the retries."
    return Chart(key, title, caption, svg, ("Kind", "Reason", "Field", "Events"), rows)


def media(top: list[tuple[str, int]], distinct: int) -> Chart | None:
    key = "media"
    if not top:
        return None
    title = f"The {len(top)} media with the most events sent"
    shown = list(reversed(top))
    with _figure(key, 0.9 + 0.32 * len(shown)) as (fig, (ax,)):
        bars = ax.barh(range(len(shown)), [n for _, n in shown], height=0.6, **_bar_style("sent"))  # type: ignore[arg-type]
        _mark(list(bars), key, "events")
        ax.bar_label(bars, labels=[number(n) for _, n in shown], fontsize=8, padding=3)
        ax.set_yticks(range(len(shown)), [_short(m, 40) for m, _ in shown])
        ax.set_xlim(0, max(n for _, n in shown) * 1.15)
        _numbers(ax, "x")
        svg = _svg(fig, key, title)
    caption = f"{number(distinct)} distinct media received events; the media id is mediaBridgeId or externalId."
    return Chart(key, title, caption, svg, ("Media", "Events sent"), [(m, number(n)) for m, n in top])


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _stamp(seconds: float) -> str:
    return str(np.datetime64(int(seconds), "s")).replace("T", " ")


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
