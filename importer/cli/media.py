"""``media-import media sync``: create in HubSpot the media objects the inputs' events refer to."""

from __future__ import annotations

import argparse
import json
from typing import Any

from importer.cli import options as cli_options
from importer.errors import EXIT_OK, EXIT_ROWS, ConfigError

EXAMPLES = """A first backfill: 'media sync' (or the first 'run', which syncs media first), then 'run'.

examples:
  media-import media sync exports/ -m mappings/mux-data-views.yaml --dry-run
  media-import media sync exports/ -m mappings/mux-data-views.yaml --object-type VIDEO=2-1234567
  media-import media sync exports/ -m my-mapping.yaml --update --state-dir /var/lib/media-import"""


def _object_type(text: str) -> tuple[str, str]:
    media_type, sep, object_type = text.partition("=")
    if not sep or not media_type.strip() or not object_type.strip():
        raise argparse.ArgumentTypeError(f"expected MEDIATYPE=OBJECTTYPE (e.g. VIDEO=2-1234567), got {text!r}")
    return media_type.strip().upper(), object_type.strip()


def add_object_type_option(p: argparse.ArgumentParser | Any) -> None:
    p.add_argument(
        "--object-type",
        action="append",
        type=_object_type,
        default=[],
        metavar="TYPE=OBJECT",
        help="the CRM object type of a media type, over the mapping's media.object_types "
        "(e.g. VIDEO=2-1234567 or VIDEO=a123_Videos); repeatable",
    )


def add_run_options(p: argparse.ArgumentParser) -> None:
    """``run``'s media options."""
    g = p.add_argument_group("media objects (mappings with a media: section)")
    g.add_argument(
        "--no-media-sync",
        dest="media_sync",
        action="store_false",
        help="do not create missing media objects before sending; events take the ids the state directory "
        "already has, and the others go with their externalId alone",
    )
    add_object_type_option(g)


def media_options(args: argparse.Namespace, *, update: bool = False) -> Any:
    from importer.mapping.spec import MEDIA_TYPES
    from importer.run.options import MediaOptions

    types = dict(args.object_type)
    unknown = sorted(set(types) - set(MEDIA_TYPES))
    if unknown:
        raise ConfigError(
            f"--object-type: unknown media type {', '.join(unknown)}", hint=f"use {', '.join(MEDIA_TYPES)}"
        )
    return MediaOptions(sync=getattr(args, "media_sync", True), update=update, object_types=types)


def register(sub: Any) -> None:
    media = sub.add_parser(
        "media",
        help="media objects in HubSpot: create those the inputs' events refer to",
        description="Media objects: every event names a media object that must exist in HubSpot first.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    media_sub = media.add_subparsers(dest="media_command", metavar="ACTION")
    media_sub.required = True
    p = media_sub.add_parser(
        "sync",
        help="create the media objects of the inputs that HubSpot lacks, and record their ids",
        description="Read the inputs for their distinct media (by the events' externalId, described by the "
        "mapping's media: section), list the objects HubSpot has, create the missing ones and record "
        "externalId -> id in --state-dir. A second sync asks nothing about media it already knows.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cli_options.add_common_options(p, argparse.SUPPRESS)  # --debug / --quiet after the action's name too
    cli_options.add_mapping_options(p)
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="send nothing: count the distinct media, those the state knows and those a sync would create",
    )
    p.add_argument(
        "--update",
        action="store_true",
        help="also update (PATCH) known objects whose described properties changed since they were sent",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_object_type_option(p)
    cli_options.add_send_options(p)
    p.set_defaults(func=cmd_media_sync, force=False, results_all=False)


def cmd_media_sync(args: argparse.Namespace) -> int:
    from importer.hubspot.auth import Credentials
    from importer.mapping.spec import load_mapping
    from importer.run.media import sync_command
    from importer.run.pipeline import Pipeline

    mapping = load_mapping(args.mapping, dict(args.lookup))
    if mapping.media is None:
        raise ConfigError(
            f"{args.mapping} has no media: section",
            hint="describe the media objects in the mapping (README: 'Media objects'), e.g. media: {title: name}",
        )
    run = cli_options.run_options(args, "media sync")
    credentials = None
    if not args.dry_run:
        credentials = Credentials.from_options(args.token_file, args.client_id, args.client_secret, args.refresh_token)
    pipeline = Pipeline(mapping, args.inputs)
    report = sync_command(pipeline, run, credentials, media_options(args, update=args.update), dry_run=args.dry_run)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.render_plan() if args.dry_run else report.render())
    return EXIT_ROWS if report.failed or report.invalid else EXIT_OK
