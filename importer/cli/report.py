"""``media-import report`` and ``run --report FILE``: the run report as one HTML page."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("media_import")

EXAMPLES = """The page is one file that works offline: no script, no request, charts drawn as SVG. It holds
counts, input file names, row numbers and a few sample values per reason (as the results file
does), never a token, and no contact id of a sent event.

examples:
  media-import report -o report.html
  media-import report --state-dir /var/lib/media-import/state -o /srv/www/media-import.html
  media-import run exports/ -m mapping.yaml --results last-run.csv --report report.html"""


def register(sub: Any) -> None:
    """Add the ``report`` command, and ``--report FILE`` to ``run``."""
    p = sub.add_parser(
        "report",
        help="write an HTML report of a state directory: progress, days, sending, failures, coverage, runs",
        description="Write one self-contained HTML page about the backfill and nightly runs of a state "
        "directory: events sent of all known and days left at the daily quota, events by day and outcome, "
        "requests per window against the limit with 429s and retries, daily quota use, invalid and failed "
        "events by reason with samples, distinct contacts and media, and the run history.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--state-dir", default=".media-import", metavar="DIR", help="the state directory (default .media-import)"
    )
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write the HTML page")
    p.set_defaults(func=cmd_report)
    run = sub.choices.get("run")
    if run is not None:
        run.add_argument(
            "--report",
            metavar="FILE",
            help="at the end of the run, write the HTML report of the state directory to FILE "
            "(as 'media-import report' does)",
        )
        run.set_defaults(func=_with_report(run.get_default("func")))


def cmd_report(args: argparse.Namespace) -> int:
    from importer.dashboard import write_report

    path = write_report(args.state_dir, args.output)
    print(f"Report: {path}")
    return 0


def _with_report(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run_then_report(args: argparse.Namespace) -> int:
        code = run(args)
        if getattr(args, "report", None) and not getattr(args, "dry_run", False):
            from importer.dashboard import write_report

            # A report that cannot be written must not hide how the run went: warn, keep its exit code.
            try:
                path = write_report(args.state_dir, args.report)
            except Exception as exc:
                log.error("the report was not written: %s", exc)
            else:
                print(f"Report: {path}")
        return code

    return run_then_report
