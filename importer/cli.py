"""The ``media-import`` command: parse options, call the library, map errors to exit codes.

Exit codes:
  0  everything was valid (and, for run, sent)
  1  some events were invalid or failed (see the results file)
  2  configuration or input error: nothing was sent
  3  stopped early and resumable (quota, interrupt, auth); rerun the same command
  4  another run holds the state directory's lock
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from importer import __version__
from importer.errors import ConfigError, ImporterError, redact

EXIT_OK, EXIT_ROWS, EXIT_CONFIG, EXIT_STOPPED, EXIT_LOCKED = 0, 1, 2, 3, 4

EPILOG = """exit codes:
  0  all events valid (and sent)        1  some events invalid or failed
  2  config or input error, nothing sent 3  stopped early, resumable (rerun the same command)
  4  another run holds the state lock

Run 'media-import COMMAND --help' for a command's options. Mapping reference: README.md."""


def _lookup_arg(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name.strip(), path.strip()


def _add_mapping_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="files, globs ('logs/2026-*.csv.gz') or folders (read recursively, in sorted order)")  # fmt: skip
    p.add_argument("-m", "--mapping", required=True, metavar="FILE",
                   help="the YAML mapping that turns rows into events (see mappings/ for presets)")  # fmt: skip
    p.add_argument("--lookup", action="append", type=_lookup_arg, default=[], metavar="NAME=PATH",
                   help="the file of the mapping's lookup NAME (e.g. contacts=contacts.csv); repeatable")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="media-import",
        description="Backfill and nightly-import media play logs (CSV, Parquet, JSON Lines) "
        "into HubSpot's Media Bridge API as media-played events.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"media-import {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar; only errors on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser(
        "check",
        help="read, map and validate inputs without sending anything",
        description="Run every stage but sending and print a report: rows read, events by state, rows "
        "skipped, invalid events by reason with samples, distinct sessions, contacts and media.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_mapping_options(p)
    p.add_argument("--results", metavar="FILE",
                   help="write the invalid events here (CSV, or Parquet when FILE ends in .parquet)")  # fmt: skip
    p.add_argument("--preview", type=int, default=0, metavar="N", help="print the first N payloads as JSON")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser(
        "demo",
        help="run the sample import end to end against the embedded simulator",
        description="Start the local Media Bridge simulator, import sample_data/ with mappings/generic.yaml, "
        "print the summary and where the results file is, and stop the simulator.",
    )
    p.add_argument("--workdir", metavar="DIR", default=".media-import/demo",
                   help="where the demo writes its results and state (default: .media-import/demo)")  # fmt: skip
    p.set_defaults(func=cmd_demo)

    try:
        from importer.simulator.command import register
    except ImportError:  # the simulator is optional while it is being built
        pass
    else:
        register(sub)
    return parser


def cmd_check(args: argparse.Namespace) -> int:
    from importer.mapping.spec import load_mapping
    from importer.pipeline import Pipeline, check
    from importer.progress import make_progress
    from importer.results import ResultsWriter

    mapping = load_mapping(args.mapping, dict(args.lookup))
    if args.preview < 0:
        raise ConfigError("--preview must be 0 or more")
    pipeline = Pipeline(mapping, args.inputs, make_progress(args.quiet))
    pipeline.preflight()
    writer = ResultsWriter(args.results) if args.results else None
    try:
        report = check(pipeline, results=writer, preview=args.preview)
    finally:
        if writer is not None:
            writer.close()
    for payload in report.previews:
        print(payload)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.render())
        if writer is not None:
            print(f"Invalid events written to {writer.path}")
    return EXIT_ROWS if report.invalid_events else EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    root = Path(__file__).resolve().parent.parent
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    ns = argparse.Namespace(
        inputs=[str(root / "sample_data" / "generic")],
        mapping=str(root / "mappings" / "generic.yaml"),
        lookup=[],
        results=str(workdir / "results.csv"),
        preview=2,
        json=False,
        quiet=args.quiet,
    )
    code = cmd_check(ns)
    return EXIT_OK if code in (EXIT_OK, EXIT_ROWS) else code


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except ImporterError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"media-import: error: {redact(exc.message)}", file=sys.stderr)
        if exc.hint:
            print(f"  hint: {redact(exc.hint)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("media-import: interrupted", file=sys.stderr)
        return EXIT_STOPPED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # a bug: say so plainly, without leaking a token
        if args.debug:
            traceback.print_exc()
        print(f"media-import: internal error: {redact(f'{type(exc).__name__}: {exc}')}", file=sys.stderr)
        print("  hint: rerun with --debug for the traceback, and report it", file=sys.stderr)
        return EXIT_CONFIG
