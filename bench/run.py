"""``make bench``: ``python -m bench.run [--quick] [--part a|b|r|m] [--repeat N]``.

Prints a table of figures (median of the runs, each run, the baseline, the ratio, the target and
PASS/MISS) and writes every figure and raw run to ``bench/last-results.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench import part_a, part_b, part_media, part_report
from bench.data import ROOT
from bench.measure import git_revision
from bench.table import Figure, render

RESULTS = ROOT / "bench" / "last-results.json"
NOISY_CORES = 0.25


@dataclass(frozen=True)
class Settings:
    sizes: tuple[int, ...] = (1_000_000, 5_000_000)
    baseline_rows: int = 200_000
    repeat: int = 3
    pro_events: int = 1000  # 75 s of sending at 133 per 10 s
    background: float = 0.3
    sim_requests: int = 20_000
    report_events: int = 1_000_000
    media: int = 100_000


FULL = Settings()
QUICK = Settings(
    sizes=(100_000, 500_000),
    baseline_rows=50_000,
    repeat=1,
    pro_events=300,
    sim_requests=5000,
    report_events=100_000,
    media=100_000,
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _environment() -> dict[str, Any]:
    import numpy
    import pandas
    import pyarrow

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "pyarrow": pyarrow.__version__,
        "pandas": pandas.__version__,
        "numpy": numpy.__version__,
    }


def _other_loads(node: Any) -> Iterator[float]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "other_load_cores" and isinstance(value, int | float):
                yield float(value)
            else:
                yield from _other_loads(value)
    elif isinstance(node, list):
        for item in node:
            yield from _other_loads(item)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[1])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small inputs and one run each: about a minute, a smoke test (too short to judge the targets)",
    )
    parser.add_argument(
        "--part",
        choices=("a", "b", "r", "m", "all"),
        default="all",
        help="A: check, B: sending, R: report, M: media sync (default all)",
    )
    parser.add_argument("--repeat", type=int, help="runs per measurement (default 3, 1 with --quick)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file (default %(default)s)")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    if args.repeat is not None:
        if args.repeat < 1:
            parser.error("--repeat must be at least 1")
        settings = replace(settings, repeat=args.repeat)

    started = time.perf_counter()
    revision_at_start = git_revision()
    figures: list[Figure] = []
    raw: dict[str, Any] = {}
    if args.part in ("a", "all"):
        figs, raw["a"] = part_a.measure(settings.sizes, settings.baseline_rows, settings.repeat, log)
        figures += figs
    if args.part in ("b", "all"):
        figs, raw["b"] = part_b.measure(
            pro_events=settings.pro_events,
            background=settings.background,
            sim_requests=settings.sim_requests,
            repeat=settings.repeat,
            log=log,
        )
        figures += figs
    if args.part in ("r", "all"):
        figs, raw["r"] = part_report.measure(settings.report_events, settings.repeat, log)
        figures += figs
    if args.part in ("m", "all"):
        figs, raw["m"] = part_media.measure(settings.media, min(settings.repeat, 2), log)
        figures += figs
    elapsed = time.perf_counter() - started
    revision = git_revision()
    if revision != revision_at_start:
        revision = f"{revision_at_start} → {revision} (importer/ changed during the run)"
    loads = list(_other_loads(raw))

    print()
    print(f"media-import {revision}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(render(figures))
    missed = [f.name for f in figures if f.ok is False]
    print()
    print(
        f"{sum(f.ok is True for f in figures)} PASS, {len(missed)} MISS; medians of {settings.repeat} run(s); "
        f"{'quick' if args.quick else 'full'} settings; {elapsed / 60:.1f} min"
    )
    if loads:
        print(
            f"Other processes on the machine used {statistics.mean(loads):.2f} cores on average during the "
            f"measurements (max {max(loads):.2f})."
        )
        if max(loads) > NOISY_CORES:
            print("WARNING: the machine was not quiet: the runs that shared it are pessimistic (see other_load_cores).")
    document = {
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "revision": revision,
        "mode": "quick" if args.quick else "full",
        "part": args.part,
        "settings": asdict(settings),
        "elapsed_s": round(elapsed, 1),
        "environment": _environment(),
        "other_load_cores": {"mean": statistics.mean(loads), "max": max(loads)} if loads else None,
        "figures": [f.to_dict() for f in figures],
        "raw": raw,
    }
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"Figures written to {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
