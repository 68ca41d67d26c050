"""The options ``run``, ``retry``, ``check``, ``demo`` and ``media sync`` share, and the ``RunOptions``
a command's arguments make (checked here, before any request)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from importer.errors import ConfigError

if TYPE_CHECKING:
    from importer.run.options import RunOptions


def lookup_arg(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name.strip(), path.strip()


def add_mapping_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="files, globs ('logs/2026-*.csv.gz') or folders (read recursively, in sorted order)",
    )
    p.add_argument(
        "-m",
        "--mapping",
        required=True,
        metavar="FILE",
        help="the YAML mapping that turns rows into events, or a preset's name such as mux-data-views "
        "(media-import mappings lists them; media-import help mapping explains the language)",
    )
    p.add_argument(
        "--lookup",
        action="append",
        type=lookup_arg,
        default=[],
        metavar="NAME=PATH",
        help="the file of the mapping's lookup NAME (e.g. contacts=contacts.csv); repeatable",
    )


def add_send_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("connection")
    g.add_argument(
        "--base-url",
        default=None,
        metavar="URL",
        help="HubSpot API base URL (default https://api.hubapi.com; plain http only to loopback)",
    )
    g.add_argument(
        "--token-file",
        metavar="FILE",
        help="read the private app token from FILE (default: the HUBSPOT_ACCESS_TOKEN variable)",
    )
    g.add_argument("--client-id", metavar="ID", help="OAuth client id (or HUBSPOT_CLIENT_ID)")
    g.add_argument(
        "--client-secret",
        metavar="SECRET",
        help="OAuth client secret (or HUBSPOT_CLIENT_SECRET; prefer the variable: options show in ps)",
    )
    g.add_argument("--refresh-token", metavar="TOKEN", help="OAuth refresh token (or HUBSPOT_REFRESH_TOKEN)")
    g = p.add_argument_group("pacing and retries")
    g.add_argument("--concurrency", type=int, default=8, metavar="N", help="requests in flight at once (default 8)")
    g.add_argument(
        "--rate",
        default="100/10s",
        metavar="N/WINDOW",
        help="starting rate limit, adapted to HubSpot's headers: N requests per window, the window in "
        "ms, s, m or h (100/10s, 10/1m, 5000/1h; default 100/10s, the smallest documented burst; "
        "'none' for no client-side limit)",
    )
    g.add_argument(
        "--daily-reserve",
        default="5%",
        metavar="PCT",
        help="share of the daily quota left for the account's other integrations (default 5%%)",
    )
    g.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds to wait for an answer (default 60: HubSpot's slow spells take tens of seconds)",
    )
    g.add_argument(
        "--on-timeout",
        choices=("hold", "retry"),
        default="hold",
        help="an event whose request got no answer in time may have arrived: 'hold' records it as "
        "possibly_sent and does not send it again (default: a duplicate play cannot be removed from "
        "HubSpot); 'retry' sends it again, now and on later runs (at worst one duplicate each)",
    )
    g.add_argument(
        "--max-attempts",
        type=int,
        default=6,
        metavar="N",
        help="attempts per event on 5xx, dropped connections and timeouts (default 6); 429s never count",
    )
    g.add_argument(
        "--max-retry-time",
        type=float,
        default=300.0,
        metavar="S",
        help="give up retrying an event after S seconds, 429s included (default 300)",
    )
    g.add_argument(
        "--wait-for-quota",
        action="store_true",
        help="when the daily quota is used up, wait until it resets (midnight in --account-timezone) and go "
        "on, instead of stopping with exit 3: a multi-day backfill runs hands-off",
    )
    g.add_argument(
        "--account-timezone",
        default="UTC",
        metavar="ZONE",
        help="the HubSpot account's time zone (IANA name, e.g. America/New_York; default UTC): its daily "
        "quota resets at midnight there",
    )
    g.add_argument(
        "--http2",
        action="store_true",
        help="speak HTTP/2 to HubSpot (needs the h2 package: pip install 'httpx[http2]')",
    )
    g.add_argument(
        "--state-dir",
        default=".media-import",
        metavar="DIR",
        help="where the journal lives (default .media-import in the working directory)",
    )


def run_options(args: argparse.Namespace, command: str) -> RunOptions:
    from importer.hubspot.pacing import Rate
    from importer.hubspot.sender import DEFAULT_BASE_URL, RetryPolicy, check_base_url
    from importer.run.options import RunOptions

    if args.concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    if args.max_attempts < 1:
        raise ConfigError("--max-attempts must be at least 1")
    if not args.timeout > 0:
        raise ConfigError("--timeout must be more than 0 seconds")
    from importer.hubspot.pacing import zone

    zone(args.account_timezone)
    rate = None
    if str(args.rate).lower() != "none":
        try:
            rate = Rate.parse(args.rate)
        except ValueError as exc:
            raise ConfigError(f"--rate: {exc}") from None
    reserve_text = str(args.daily_reserve).strip()
    try:
        reserve = float(reserve_text.rstrip("%")) / (100 if reserve_text.endswith("%") else 1)
    except ValueError:
        raise ConfigError(f"--daily-reserve: expected a share such as 5% or 0.05, got {reserve_text!r}") from None
    if not 0 <= reserve < 1:
        raise ConfigError("--daily-reserve must be between 0% and 100%")
    return RunOptions(
        base_url=check_base_url(args.base_url or DEFAULT_BASE_URL),
        state_dir=args.state_dir,
        concurrency=args.concurrency,
        rate=rate,
        daily_reserve=reserve,
        timeout_s=args.timeout,
        retry=RetryPolicy(max_attempts=args.max_attempts, max_seconds=args.max_retry_time),
        force=args.force,
        results_all=args.results_all,
        command=command,
        http2=args.http2,
        on_timeout=args.on_timeout,
        wait_for_quota=args.wait_for_quota,
        account_timezone=args.account_timezone,
    )


def add_common_options(p: argparse.ArgumentParser, default: Any) -> None:
    p.add_argument("--debug", action="store_true", default=default, help="show tracebacks for errors")
    quiet = "no progress bar; only errors (and what a stop waits for) on stderr"
    p.add_argument("-q", "--quiet", action="store_true", default=default, help=quiet)
    p.add_argument(
        "--log-file",
        metavar="FILE",
        default=default,
        help="also write the log (info and up) to FILE, for unattended runs",
    )
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=default,
        help="log lines as text (default) or one JSON object per line",
    )
