"""One measurement in a fresh process: ``python -m bench.worker KIND ...`` prints one JSON line.

``wall_s`` and ``cpu_s`` (every thread of the process) cover the measured work only, not the
interpreter start or the imports; ``peak_rss_mb`` is the whole process's peak (imports included).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.data import MAPPING
from bench.measure import peak_rss_mb


def _timed(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = work()
    out["wall_s"] = time.perf_counter() - wall
    out["cpu_s"] = time.process_time() - cpu
    return out


def check(path: str, mapping_path: str) -> dict[str, Any]:
    from importer.mapping.spec import load_mapping
    from importer.run.pipeline import Pipeline, check

    def work() -> dict[str, Any]:
        pipeline = Pipeline(load_mapping(mapping_path), [path])
        report = check(pipeline).to_dict()
        return {k: report[k] for k in ("rows", "events", "invalid", "duplicates")}

    return _timed(work)


def baseline(path: str) -> dict[str, Any]:
    from bench.baseline import check_baseline

    return _timed(lambda: check_baseline(path))


def send(args: argparse.Namespace) -> dict[str, Any]:
    from importer.hubspot.auth import Credentials
    from importer.hubspot.pacing import Rate
    from importer.mapping.spec import load_mapping
    from importer.run.options import RunOptions
    from importer.run.pipeline import Pipeline
    from importer.run.runner import Runner

    options = RunOptions(base_url=args.url, state_dir=args.state_dir, concurrency=args.concurrency)
    if args.rate == "none":
        options.rate = None
    elif args.rate != "default":
        options.rate = Rate.parse(args.rate)
    pipeline = Pipeline(load_mapping(args.mapping), [args.input])

    def work() -> dict[str, Any]:
        runner = Runner(options, Credentials(args.token), args.results)
        summary = runner.run(pipeline)
        rate = runner.limiter.rate
        return {
            "summary": summary.to_dict(),
            "final_rate": None if rate is None else f"{rate.limit}/{rate.window_s:g}s",
            "adapted_from_headers": runner.limiter.adapted_from_headers,
        }

    return _timed(work)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.worker")
    sub = parser.add_subparsers(dest="kind", required=True)
    p = sub.add_parser("check")
    p.add_argument("input")
    p.add_argument("--mapping", default=str(MAPPING))
    p = sub.add_parser("baseline")
    p.add_argument("input")
    p = sub.add_parser("generate", help="write the inputs of part A (sizes in rows)")
    p.add_argument("sizes", type=int, nargs="+")
    p.add_argument("--baseline-rows", type=int, required=True)
    p = sub.add_parser("send")
    p.add_argument("input")
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--mapping", default=str(MAPPING))
    p.add_argument("--rate", default="default", help="N/WINDOW, 'none', or 'default' (RunOptions' default)")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--state-dir")
    p.add_argument("--results")
    args = parser.parse_args(argv)
    if args.kind == "check":
        out = check(args.input, args.mapping)
    elif args.kind == "baseline":
        out = baseline(args.input)
    elif args.kind == "generate":
        from bench.data import check_inputs

        paths = check_inputs(args.sizes, args.baseline_rows, lambda m: print(m, file=sys.stderr, flush=True))
        out = {k: str(v) for k, v in paths.items()}
    else:
        out = send(args)
    out["peak_rss_mb"] = peak_rss_mb()
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
