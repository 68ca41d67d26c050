"""``media-import simulate``: the simulator in the foreground, until Ctrl-C.

``register`` adds the subcommand to the importer's CLI; ``python -m importer.simulator`` (or this
module) runs it alone with its own parser.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import dataclasses
import json
import signal
import sys
from pathlib import Path
from typing import Any

from importer.errors import ConfigError, ImporterError
from importer.simulator.config import SimulatorConfig, normalize_contacts, parse_token_spec
from importer.simulator.server import serve

DEFAULT_PORT = 8750
_DEFAULTS = SimulatorConfig()
DESCRIPTION = """\
Run a local imitation of HubSpot's Media Bridge API (events/media-played, media-played-percent),
the contacts batch read and the OAuth token endpoint, with HubSpot's rate limits, error bodies
and injectable faults. Point the importer's base URL at the printed address.

Inspection (no token, never rate-limited): GET /__sim/events?sessionId=..&state=..&contactId=..
&since=N&limit=N, GET /__sim/stats, POST /__sim/reset, GET|POST /__sim/config.
"""

EXAMPLES = """\
examples:
  media-import simulate --port 8787
  media-import simulate --port 8787 --burst 100 --window-ms 10000 --daily 250000
  media-import simulate --port 0 --error-rate 0.05 --latency-ms 50 --seed 7"""


def add_options(parser: argparse.ArgumentParser) -> None:
    d = _DEFAULTS
    net = parser.add_argument_group("server")
    net.add_argument("--host", default=d.host, help="address to listen on (default: %(default)s)")
    net.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="port to listen on; 0 picks a free one (default: %(default)s)",
    )
    net.add_argument("--portal-id", type=int, default=d.portal_id, help="portalId in answers (default: %(default)s)")
    net.add_argument(
        "--app-id",
        type=int,
        default=d.app_id,
        help="providerId in answers, the app's id (default: %(default)s)",
    )
    net.add_argument(
        "--record",
        dest="record_path",
        metavar="FILE",
        help="also append every accepted event to FILE as JSON Lines (emptied by POST /__sim/reset)",
    )
    net.add_argument("--log-requests", action="store_true", help="print one line per API request to stderr")

    auth = parser.add_argument_group("authentication")
    auth.add_argument(
        "--token",
        action="append",
        metavar="T[:SCOPES]",
        help="accept bearer token T; repeatable. 'T' has every scope, 'T:media_bridge.write,"
        "crm.objects.contacts.read' exactly those, 'T:' none (default: demo-token with every scope)",
    )
    auth.add_argument("--client-id", help="OAuth client_id accepted by POST /oauth/v1/token")
    auth.add_argument("--client-secret", help="OAuth client_secret accepted by POST /oauth/v1/token")
    auth.add_argument("--refresh-token", help="OAuth refresh_token accepted by POST /oauth/v1/token")
    auth.add_argument(
        "--token-ttl-s",
        type=float,
        default=d.token_ttl_s,
        help="lifetime of issued OAuth access tokens in seconds; expired ones get 401 "
        "EXPIRED_AUTHENTICATION (default: %(default)s)",
    )

    limits = parser.add_argument_group("rate limits")
    limits.add_argument(
        "--burst",
        type=int,
        default=d.burst,
        help="requests per rolling window; 0 = unlimited (default: %(default)s)",
    )
    limits.add_argument(
        "--window-ms",
        type=int,
        default=d.window_ms,
        help="length of the rolling window in ms (default: %(default)s)",
    )
    limits.add_argument(
        "--daily",
        type=int,
        help="daily request quota (resets at midnight in --timezone); unset or 0 = none (default: none)",
    )
    limits.add_argument(
        "--timezone",
        default=d.timezone,
        help="the account's time zone, where the daily quota resets at midnight, e.g. America/New_York "
        "(default: %(default)s)",
    )
    limits.add_argument(
        "--retry-after-429",
        dest="retry_after_on_429",
        action="store_true",
        help="add Retry-After (seconds) to 429 answers; off by default because HubSpot does not document it",
    )

    faults = parser.add_argument_group("latency and faults")
    faults.add_argument("--latency-ms", type=float, default=d.latency_ms, help="fixed delay per API answer in ms")
    faults.add_argument("--jitter-ms", type=float, default=d.jitter_ms, help="extra random delay, 0..N ms")
    faults.add_argument("--seed", type=int, help="random seed: the same seed gives the same faults in order")
    faults.add_argument(
        "--error-rate",
        type=float,
        default=d.error_rate,
        help="share of requests answered 500/502/503/504 (0..1)",
    )
    faults.add_argument(
        "--drop-rate",
        type=float,
        default=d.drop_rate,
        help="share of requests whose connection is closed with no answer (0..1)",
    )
    faults.add_argument(
        "--slow-rate",
        type=float,
        default=d.slow_rate,
        help="share of requests answered only after --slow-ms; such a request is processed (and a 200 "
        "recorded) only if the client is still connected then",
    )
    faults.add_argument(
        "--slow-ms", type=float, default=d.slow_ms, help="delay of a slow answer in ms (default: %(default)s)"
    )
    faults.add_argument("--locked-rate", type=float, default=d.locked_rate, help="share of requests answered 423")
    faults.add_argument("--migration-rate", type=float, default=d.migration_rate, help="share of requests answered 477")
    faults.add_argument(
        "--fault-retry-after-s", type=int, help="add Retry-After: N to 423 and 477 answers (default: none)"
    )
    faults.add_argument(
        "--storm-every-s",
        type=float,
        help="start a 429 storm (every request answered 429) every N seconds, first after N (default: none)",
    )
    faults.add_argument(
        "--storm-duration-s",
        type=float,
        default=d.storm_duration_s,
        help="length of each 429 storm in seconds (default: %(default)s)",
    )
    faults.add_argument(
        "--storm-first-s",
        type=float,
        help="start the first 429 storm after N seconds (default: --storm-every-s)",
    )
    faults.add_argument(
        "--background-load",
        type=float,
        default=d.background_load,
        help="share of the burst window another integration of the account keeps busy, e.g. 0.3 (default: %(default)s)",
    )

    media = parser.add_argument_group("media objects")
    media.add_argument(
        "--media-objects",
        choices=("strict", "lenient"),
        default=d.media_objects,
        help="strict (default): an event whose mediaBridgeId or externalId names no media object is refused "
        "with a 400; lenient: any media id is accepted. Objects are created through the CRM objects API or the "
        "dated Media Bridge objects API, and listed at GET /__sim/media",
    )

    data = parser.add_argument_group("contacts (for POST /crm/v3/objects/contacts/batch/read)")
    data.add_argument("--contact", action="append", metavar="EMAIL=ID", help="a known contact; repeatable")
    data.add_argument(
        "--contacts-file",
        metavar="FILE",
        help="known contacts: a CSV with columns email,id or a JSON {email: id}",
    )


def _read_contacts(args: argparse.Namespace) -> dict[str, int]:
    pairs: list[tuple[str, int]] = []
    try:
        if args.contacts_file:
            path = Path(args.contacts_file)
            if path.suffix.lower() == ".json":
                pairs += [(str(k), int(v)) for k, v in json.loads(path.read_text()).items()]
            else:
                with path.open(newline="") as fh:
                    pairs += [(row["email"], int(row["id"])) for row in csv.DictReader(fh)]
        for spec in args.contact or []:
            email, sep, cid = spec.rpartition("=")
            if not sep:
                raise ValueError(f"--contact {spec!r} is not EMAIL=ID")
            pairs.append((email, int(cid)))
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise ConfigError(f"cannot read the contacts: {exc}", hint="use EMAIL=ID, or a CSV with email,id") from exc
    return normalize_contacts(pairs)


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """The ``SimulatorConfig`` the parsed options describe; ``ConfigError`` lists every problem."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(SimulatorConfig):
        if f.name not in ("tokens", "contacts") and hasattr(args, f.name):
            values[f.name] = getattr(args, f.name)
    if args.token:
        values["tokens"] = dict(parse_token_spec(spec) for spec in args.token)
    values["contacts"] = _read_contacts(args)
    config = SimulatorConfig(**values)
    problems = config.problems()
    if problems:
        raise ConfigError("invalid simulator options: " + "; ".join(problems), hint="see `simulate --help`")
    return config


def config_to_args(config: SimulatorConfig) -> list[str]:
    """Command-line options that rebuild ``config`` (used to start it in a subprocess)."""
    args = ["--port", str(config.port)]
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name in ("port", "tokens", "contacts") or value == getattr(_DEFAULTS, f.name) or value is None:
            continue
        flag = {"record_path": "--record", "retry_after_on_429": "--retry-after-429"}.get(
            f.name, "--" + f.name.replace("_", "-")
        )
        args += [flag] if value is True else [flag, str(value)]
    for token, scopes in config.tokens.items():
        args += ["--token", token if scopes is None else f"{token}:{','.join(sorted(scopes))}"]
    for email, contact_id in config.contacts.items():
        args += ["--contact", f"{email}={contact_id}"]
    return args


def run_simulate(args: argparse.Namespace) -> int:
    """Serve in the foreground until SIGINT/SIGTERM; 0 on a clean stop."""
    config = config_from_args(args)

    def on_ready(url: str) -> None:
        print(f"Media Bridge simulator listening on {url}")
        token = config.first_token()
        if token is not None:
            print(f"  token:   {token}   (a local test token: Authorization: Bearer {token})")
        if config.oauth_enabled:
            print(f"  OAuth:   POST {url}/oauth/v1/token, client_id {config.client_id}")
        print(f"  inspect: {url}/__sim/stats  {url}/__sim/events")
        print("Press Ctrl-C to stop.", flush=True)

    def access_log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            # Not possible off the main thread or on Windows: Ctrl-C then ends asyncio.run instead.
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
        await serve(config, stop, on_ready, access_log if args.log_requests else None)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        raise ConfigError(
            f"the simulator cannot listen on {config.host}:{config.port}: {exc.strerror or exc}",
            hint="choose another --port, or --port 0 for a free one",
        ) from exc
    print("simulator stopped", flush=True)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="run a local HubSpot Media Bridge simulator",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_options(parser)
    parser.set_defaults(func=run_simulate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m importer.simulator",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_simulate(args)
    except ImporterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
