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
import errno
import json
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from importer import __version__
from importer.cli import help as help_command
from importer.cli import mappings
from importer.cli import media as media_cli
from importer.cli import options as cli_options
from importer.cli import report as report_command
from importer.errors import EXIT_CONFIG, EXIT_OK, EXIT_ROWS, EXIT_STOPPED, ConfigError, ImporterError, redact

if TYPE_CHECKING:
    from importer.state.summary import RunSummary

log = logging.getLogger("media_import")

EPILOG = """exit codes:
  0  all events valid (and sent)        1  some events invalid or failed
  2  config or input error, nothing sent 3  stopped early, resumable (rerun the same command)
  4  another run holds the state lock

Run 'media-import COMMAND --help' for a command's options and examples.
Mapping reference: media-import help mapping. Presets: media-import mappings."""

# Each command's help ends with its examples, after the exit codes.
TOP_EXAMPLES = """

examples:
  media-import demo
  media-import check exports/ -m mux-data-views --lookup contacts=contacts.csv
  media-import run exports/ -m my-mapping.yaml --results results.csv --dry-run"""

CHECK_EXAMPLES = """

examples:
  media-import check exports/plays.csv -m my-mapping.yaml --preview 3
  media-import check views.csv -m mux-data-views --lookup contacts=contacts.csv --results invalid.csv
  media-import check 'exports/2026-*.parquet' -m my-mapping.yaml --json"""
RUN_EXAMPLES = """

examples:
  media-import run exports/ -m my-mapping.yaml --results results.csv --dry-run --daily-limit 250000
  media-import run exports/ -m my-mapping.yaml --results results.csv --rate 190/10s
  media-import run exports/ -m my-mapping.yaml --results last.csv --since last --state-dir /var/lib/media-import"""
STATUS_EXAMPLES = """

examples:
  media-import status
  media-import status --state-dir /var/lib/media-import --runs 3
  media-import status --json"""
RETRY_EXAMPLES = """

examples:
  media-import retry results.csv
  media-import retry results.csv --results results-2.csv --rate 50/10s
  media-import retry results.csv --base-url http://127.0.0.1:8787"""
DEMO_EXAMPLES = """
examples:
  media-import demo
  media-import demo --workdir /tmp/media-import-demo
  media-import demo --quiet"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="media-import",
        description="Backfill and nightly-import media play logs (CSV, Parquet, JSON Lines) "
        "into HubSpot's Media Bridge API as media-played events.",
        epilog=EPILOG + TOP_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"media-import {__version__}")
    cli_options.add_common_options(parser, argparse.SUPPRESS)
    parser.set_defaults(debug=False, quiet=False, log_file=None, log_format="text")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # Every subcommand takes --debug / --quiet too, before or after its name.
    common = argparse.ArgumentParser(add_help=False)
    cli_options.add_common_options(common, argparse.SUPPRESS)
    original_add_parser = sub.add_parser

    def add_parser(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return original_add_parser(name, parents=[common, *kwargs.pop("parents", [])], **kwargs)

    sub.add_parser = add_parser  # type: ignore[method-assign]
    sub.required = True

    p = sub.add_parser(
        "check",
        help="read, map and validate inputs without sending anything",
        description="Run every stage but sending and print a report: rows read, events by state, rows "
        "skipped, invalid events by reason with samples, distinct sessions, contacts and media.",
        epilog=EPILOG + CHECK_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cli_options.add_mapping_options(p)
    p.add_argument(
        "--results", metavar="FILE", help="write the invalid events here (CSV, or Parquet when FILE ends in .parquet)"
    )
    p.add_argument("--preview", type=int, default=0, metavar="N", help="print the first N payloads as JSON")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--state-dir",
        default=".media-import",
        metavar="DIR",
        help="where contacts resolved through HubSpot are cached, for mappings with a hubspot lookup "
        "(default .media-import)",
    )
    p.set_defaults(func=cmd_check)

    p = sub.add_parser(
        "run",
        help="send the events of the inputs to HubSpot (resumable, exactly once)",
        description="Read, map and validate the inputs, then send each valid event to HubSpot's Media Bridge "
        "API, paced by its rate-limit headers and retried when the failure is transient. The journal in "
        "--state-dir records every sent event: rerunning the same command sends only what is left.",
        epilog=EPILOG + RUN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cli_options.add_mapping_options(p)
    p.add_argument(
        "--results",
        required=True,
        metavar="FILE",
        help="results file: every invalid, failed or unsent event with reason and payload "
        "(CSV, or Parquet by extension); a FILE.summary.json is written beside it",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="do everything but send: the check report plus the pacing plan (time and quota days)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="send again events the journal says were sent, and read files the manifest says are done",
    )
    p.add_argument("--results-all", action="store_true", help="also list sent and skipped events in the results")
    p.add_argument(
        "--daily-limit",
        type=int,
        metavar="N",
        help="with --dry-run: the account's daily request limit, for the days-of-quota plan "
        "(default: what HubSpot reported in the last run)",
    )
    g = p.add_argument_group("nightly runs")
    g.add_argument(
        "--since",
        metavar="TIME",
        help="only events at or after TIME (ISO 8601 or epoch ms) minus --lookback; "
        "'last' = the newest event time of the previous run",
    )
    g.add_argument(
        "--lookback",
        type=float,
        default=24.0,
        metavar="HOURS",
        help="with --since: also take events up to HOURS older, for late rows (default 24; the journal "
        "keeps them from being sent twice)",
    )
    g.add_argument(
        "--no-retry-failed",
        dest="retry_leftovers",
        action="store_false",
        help="do not re-drive events earlier runs left not_sent or transiently failed (default: re-drive)",
    )
    g.add_argument(
        "--retry-terminal",
        action="store_true",
        help="also re-drive events HubSpot refused (4xx) in earlier runs",
    )
    g.add_argument(
        "--recheck-contacts",
        type=float,
        default=24.0,
        metavar="HOURS",
        help="with a source: hubspot lookup, ask again for emails HubSpot did not know when that answer is "
        "older than HOURS (default 24; 0 = every run); found contacts are never asked again",
    )
    cli_options.add_send_options(p)
    media_cli.add_run_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "status",
        help="show the last runs, totals and pending events of a state directory",
        description="Print the run history of a state directory: each run's start, duration, counts by "
        "status and exit code, the totals, events still pending, and the last known quota.",
        epilog=EPILOG + STATUS_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--state-dir", default=".media-import", metavar="DIR", help="the state directory (default .media-import)"
    )
    p.add_argument("--runs", type=int, default=10, metavar="N", help="how many recent runs to list (default 10)")
    p.add_argument("--json", action="store_true", help="print it as JSON")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "retry",
        help="send again the failed and not_sent events of a results file",
        description="Resend the failed / not_sent payloads of a results file through the same limiter and "
        "journal (an event sent since is skipped); with --on-timeout retry also the possibly_sent ones.",
        epilog=EPILOG + RETRY_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("results_in", metavar="RESULTS", help="a results file written by run or retry")
    p.add_argument("--results", metavar="FILE", help="where to write this retry's results (default: RESULTS.retry.csv)")
    p.add_argument("--force", action="store_true", help="send even events the journal says were sent")
    p.add_argument("--results-all", action="store_true", help="also list sent and skipped events in the results")
    cli_options.add_send_options(p)
    p.set_defaults(func=cmd_retry)

    p = sub.add_parser(
        "demo",
        help="run the sample import end to end against the embedded simulator",
        description="Start the local Media Bridge simulator, import the shipped sample data with the generic "
        "preset, print the summary and where the results file is, and stop the simulator. The sample holds "
        "invalid rows on purpose (they are what the results file lists), so the demo exits 0 when every "
        "other event was sent, and 1 if any event failed or was not sent.",
        epilog=DEMO_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--workdir",
        metavar="DIR",
        default=".media-import/demo",
        help="where the demo writes its results and state (default: .media-import/demo)",
    )
    p.set_defaults(func=cmd_demo)

    try:
        from importer.simulator.command import register
    except ImportError:  # the simulator is optional while it is being built
        pass
    else:
        register(sub)
    mappings.register(sub)
    media_cli.register(sub)
    help_command.register(sub)
    report_command.register(sub)
    return parser


def cmd_check(args: argparse.Namespace) -> int:
    from importer.run.commands import check_inputs
    from importer.run.progress import make_progress

    progress = make_progress(args.quiet)
    report = check_inputs(args.mapping, args.inputs, lookups=dict(args.lookup), results=args.results,
                          state_dir=args.state_dir, preview=args.preview, progress=progress)  # fmt: skip
    for payload in report.previews:
        print(payload)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.render())
        if report.media_objects is not None:
            print(report.media_objects.render_plan())
        if args.results:
            print(f"Invalid events written to {args.results}")
    return EXIT_ROWS if report.invalid_events else EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from importer.hubspot.auth import Credentials
    from importer.mapping.spec import load_mapping
    from importer.run.commands import dry_run, resolve_since, run_import
    from importer.run.progress import make_progress

    options = cli_options.run_options(args, "run " + " ".join(args.inputs))
    options.retry_leftovers = args.retry_leftovers
    options.retry_terminal = args.retry_terminal
    options.recheck_contacts_s = args.recheck_contacts * 3600
    options.lookback_s = args.lookback * 3600
    options.media = media_cli.media_options(args)
    resolve_since(options, args.since)
    if args.dry_run:
        mapping = load_mapping(args.mapping, dict(args.lookup))
        report, plan = dry_run(options, mapping, args.inputs, args.results, args.daily_limit, make_progress(args.quiet))
        print(report.render())
        print(plan)
        return EXIT_ROWS if report.invalid_events else EXIT_OK

    def credentials() -> Credentials:
        return Credentials.from_options(args.token_file, args.client_id, args.client_secret, args.refresh_token)

    summary = run_import(options, credentials, args.mapping, args.inputs, args.results,
                         lookups=dict(args.lookup), progress=make_progress(args.quiet))  # fmt: skip
    print(summary.render())
    print(f"Results: {args.results} (summary: {args.results}.summary.json)")
    log.info("run finished with exit code %d: %s", summary.exit_code, json.dumps(summary.to_dict()))
    return summary.exit_code


def cmd_status(args: argparse.Namespace) -> int:
    from importer.run.commands import format_status, status

    report = status(args.state_dir, args.runs)
    print(json.dumps(report, indent=2, default=str) if args.json else format_status(report))
    return EXIT_OK


def cmd_retry(args: argparse.Namespace) -> int:
    from importer.hubspot.auth import Credentials
    from importer.run.commands import retry_results
    from importer.run.progress import make_progress

    options = cli_options.run_options(args, f"retry {args.results_in}")
    credentials = Credentials.from_options(args.token_file, args.client_id, args.client_secret, args.refresh_token)
    summary, out = retry_results(options, credentials, args.results_in, args.results, make_progress(args.quiet))
    print(summary.render())
    print(f"Results: {out}")
    return summary.exit_code


def cmd_demo(args: argparse.Namespace) -> int:
    import shlex

    from importer.run.commands import demo
    from importer.run.progress import make_progress

    summary, stats, results, sample = demo(Path(args.workdir), make_progress(args.quiet))
    print(summary.render())
    print(f"The simulator accepted {stats['accepted_events']:,} events ({stats['duplicates']} duplicates).")
    print(f"Results: {results} (the invalid sample rows, with reasons); summary: {results}.summary.json")
    print(f"Next: media-import check {shlex.quote(str(sample))} -m generic --preview 3")
    return demo_exit_code(summary)


def demo_exit_code(summary: RunSummary) -> int:
    """The sample's invalid rows are there on purpose: the demo went well when everything else was sent."""
    if summary.exit_code == EXIT_ROWS and not summary.counts.get("failed") and not summary.counts.get("not_sent"):
        return EXIT_OK
    return summary.exit_code


class _PrivateFileHandler(logging.FileHandler):
    """The log file: appended to, created 0600, never through a symbolic link."""

    def _open(self) -> Any:
        try:
            fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ConfigError(
                    f"the log file {self.baseFilename} is a symbolic link: refusing to follow it",
                    hint="give the path of a regular file",
                ) from None
            raise
        os.fchmod(fd, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "message": redact(record.getMessage()),
        }
        return json.dumps(entry)


def _setup_logging(quiet: bool, log_file: str | None = None, log_format: str = "text") -> None:
    """Warnings (errors with --quiet, and what a stop is waiting for) on stderr; everything from info up
    in --log-file."""
    logger = logging.getLogger("media_import")
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(logging.INFO)
    make: Any = _JsonFormatter if log_format == "json" else _RedactingFormatter
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.WARNING)
    if quiet:  # errors only, and the answers to a Ctrl-C or SIGTERM (marked ``always``)
        stderr.addFilter(lambda r: r.levelno >= logging.ERROR or bool(getattr(r, "always", False)))
    stderr.setFormatter(make("media-import: %(levelname)s: %(message)s"))
    logger.addHandler(stderr)
    if log_file:
        try:
            Path(log_file).parent.mkdir(parents=True, exist_ok=True)
            handler = _PrivateFileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot open the log file {log_file} ({exc.strerror or exc})") from None
        handler.setFormatter(make("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)


def _log_to_files(level: int, message: str) -> None:
    """Errors printed on stderr go to the --log-file too."""
    logger = logging.getLogger("media_import")
    record = logger.makeRecord(logger.name, level, __file__, 0, redact(message), (), None)
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _setup_logging(args.quiet, args.log_file, args.log_format)
        code: int = args.func(args)
        return code
    except ImporterError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"media-import: error: {redact(exc.message)}", file=sys.stderr)
        _log_to_files(logging.ERROR, exc.message + (f" (hint: {exc.hint})" if exc.hint else ""))
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
