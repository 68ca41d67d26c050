"""Part A: ``check`` throughput and memory against the naive pandas ``iterrows`` baseline."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.data import label
from bench.measure import median, run_worker
from bench.table import Figure

PART = "A  check: read → map → validate → dedupe → encode, no sending"
BASELINE_RATIO = 10.0
PER_CORE_ROWS = 200_000
RSS_GROWTH = 1.25
RSS_LIMIT_MB = 300.0


def measure(
    sizes: Sequence[int], baseline_rows: int, repeat: int, log: Callable[[str], None]
) -> tuple[list[Figure], dict[str, Any]]:
    # Generated in a child process too, so this one stays small.
    made = run_worker(["generate", *map(str, sizes), "--baseline-rows", str(baseline_rows)], show_log=True)
    paths = {k: Path(v) for k, v in made.items() if isinstance(v, str)}
    raw: dict[str, list[dict[str, Any]]] = {}
    slice_key = f"slice-{label(baseline_rows)}"
    keys = [f"{kind}-{label(n)}" for n in sizes for kind in ("csv", "parquet")]
    # Round-robin over the inputs so that a slow minute of the machine spreads over all of them.
    for rep in range(1, repeat + 1):
        for key in keys:
            log(f"check {paths[key].name} (run {rep}/{repeat}) ...")
            raw.setdefault(key, []).append(run_worker(["check", str(paths[key])]))
            log(_brief(raw[key][-1]))
        log(f"baseline {paths[slice_key].name} (run {rep}/{repeat}) ...")
        raw.setdefault("baseline", []).append(run_worker(["baseline", str(paths[slice_key])]))
        log(_brief(raw["baseline"][-1]))
    log(f"check {paths[slice_key].name} (same counts as the baseline?) ...")
    raw["check-slice"] = [run_worker(["check", str(paths[slice_key])])]
    log(_brief(raw["check-slice"][-1]))
    return figures(raw, sizes, baseline_rows), {"inputs": {k: _describe(p) for k, p in paths.items()}, "runs": raw}


def _describe(path: Path) -> dict[str, Any]:
    return {"path": str(path), "bytes": path.stat().st_size}


def _brief(r: dict[str, Any]) -> str:
    return (
        f"  {r['rows']:,} rows in {r['wall_s']:.2f} s ({r['rows'] / r['wall_s']:,.0f} rows/s), "
        f"cpu {r['cpu_s']:.2f} s, peak RSS {r['peak_rss_mb']:.0f} MB"
    )


def _rate(runs: list[dict[str, Any]], time_key: str) -> list[float]:
    return [r["rows"] / r[time_key] for r in runs]


def figures(raw: dict[str, list[dict[str, Any]]], sizes: Sequence[int], baseline_rows: int) -> list[Figure]:
    out: list[Figure] = []
    base_runs = _rate(raw["baseline"], "wall_s")
    base = median(base_runs)
    base_text = f"{base:,.0f} rows/s"
    base_cpu = median(_rate(raw["baseline"], "cpu_s"))
    out.append(
        Figure(
            PART,
            f"baseline: pandas iterrows, CSV {label(baseline_rows)}",
            base,
            "rows/s",
            base_runs,
            note=f"the naive baseline runs on a {label(baseline_rows)}-row slice (the head of the larger files); "
            f"on {label(max(sizes))} rows it would take about {max(sizes) / base / 60:.0f} min. "
            f"cpu {median([r['cpu_s'] for r in raw['baseline']]):.1f} s, "
            f"peak RSS {median([r['peak_rss_mb'] for r in raw['baseline']]):.0f} MB",
        )
    )
    for n in sizes:
        for kind in ("csv", "parquet"):
            runs = raw[f"{kind}-{label(n)}"]
            walls = _rate(runs, "wall_s")
            value = median(walls)
            cpu = median([r["cpu_s"] for r in runs])
            out.append(
                Figure(
                    PART,
                    f"check {kind.upper()} {label(n)} rows/s",
                    value,
                    "rows/s",
                    walls,
                    baseline=base_text,
                    ratio=value / base,
                    target=f"≥ {BASELINE_RATIO:g}× baseline",
                    ok=value / base >= BASELINE_RATIO,
                    note=f"check {kind.upper()} {label(n)}: wall {median([r['wall_s'] for r in runs]):.2f} s, "
                    f"cpu {cpu:.2f} s ({cpu / median([r['wall_s'] for r in runs]):.2f} cores busy); "
                    f"{runs[0]['rows']:,} rows → {sum(runs[0]['events'].values()):,} valid events, "
                    f"{runs[0]['invalid']:,} invalid",
                )
            )
    for n in sizes:
        for kind in ("csv", "parquet"):
            runs = raw[f"{kind}-{label(n)}"]
            per_cpu = _rate(runs, "cpu_s")
            value = median(per_cpu)
            parquet = kind == "parquet"
            out.append(
                Figure(
                    PART,
                    f"check {kind.upper()} {label(n)} rows per CPU-second",
                    value,
                    "rows/s/core",
                    per_cpu,
                    baseline=f"{base_cpu:,.0f} rows/s/core",
                    ratio=value / base_cpu,
                    target=f"≥ {PER_CORE_ROWS:,}" if parquet else "",
                    ok=(value >= PER_CORE_ROWS) if parquet else None,
                )
            )
    small, large = min(sizes), max(sizes)
    for kind in ("csv", "parquet"):
        rss_small = [r["peak_rss_mb"] for r in raw[f"{kind}-{label(small)}"]]
        rss_large = [r["peak_rss_mb"] for r in raw[f"{kind}-{label(large)}"]]
        s, big = median(rss_small), median(rss_large)
        out.append(Figure(PART, f"peak RSS check {kind.upper()} {label(small)}", s, "MB", rss_small))
        out.append(
            Figure(
                PART,
                f"peak RSS check {kind.upper()} {label(large)}",
                big,
                "MB",
                rss_large,
                baseline=f"{s:,.0f} MB at {label(small)}",
                ratio=big / s,
                target=f"≤ {RSS_GROWTH:g}× and ≤ {RSS_LIMIT_MB:g} MB",
                ok=big / s <= RSS_GROWTH and big <= RSS_LIMIT_MB,
            )
        )
    mine, theirs = raw["check-slice"][0], raw["baseline"][0]
    same = all(mine[k] == theirs[k] for k in ("rows", "events", "invalid", "duplicates"))
    out.append(
        Figure(
            PART,
            f"same counts as the baseline on {label(baseline_rows)}",
            None,
            "",
            target="equal",
            ok=same,
            note=f"check: {mine['events']} valid, {mine['invalid']} invalid, {mine['duplicates']} duplicates; "
            f"baseline: {theirs['events']} valid, {theirs['invalid']} invalid, {theirs['duplicates']} duplicates. "
            f"check on this slice alone: {mine['rows'] / mine['wall_s']:,.0f} rows/s "
            f"({mine['rows'] / mine['wall_s'] / median(base_runs):.1f}× the baseline)",
        )
    )
    return out
