"""``media-import help TOPIC``: the reference documents that travel with the tool."""

from __future__ import annotations

import argparse
from typing import Any

# Topic → the README section it prints (README.md ships inside the package, so one text serves both).
TOPICS = {"mapping": "Mapping reference", "exit-codes": "Exit codes"}

EXAMPLES = """\
examples:
  media-import help mapping
  media-import help mapping | less
  media-import help exit-codes"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "help",
        help="print a reference: the mapping language (mapping) or the exit codes (exit-codes)",
        description="Print a reference document. 'mapping' is the whole mapping language: fields, "
        "timestamps, events, conditions, row filters, dedupe and lookups, with examples.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("topic", choices=sorted(TOPICS), metavar="TOPIC", help="mapping or exit-codes")
    p.set_defaults(func=cmd_help)


def cmd_help(args: argparse.Namespace) -> int:
    from importer._data import readme_section

    print(readme_section(TOPICS[args.topic]), end="")
    return 0
