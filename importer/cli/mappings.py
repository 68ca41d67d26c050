"""``media-import mappings``: the presets that ship with the tool, and ``--show NAME`` to adapt one."""

from __future__ import annotations

import argparse
from typing import Any

from importer.errors import ConfigError

EXAMPLES = """\
examples:
  media-import mappings
  media-import mappings --show mux-data-views > my-mapping.yaml
  media-import check views.csv -m mux-data-views --lookup contacts=contacts.csv"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "mappings",
        help="list the mapping presets that ship with media-import",
        description="List the shipped mapping presets with what each reads. Use one by name "
        "(-m mux-data-views) from any directory, or print it with --show to adapt a copy.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--show", metavar="NAME", help="print the preset NAME (its YAML, with the comments)")
    p.set_defaults(func=cmd_mappings)


def cmd_mappings(args: argparse.Namespace) -> int:
    from importer.mapping.presets import find_preset, presets

    if args.show:
        preset = find_preset(args.show)
        if preset is None:
            names = ", ".join(p.name for p in presets())
            raise ConfigError(f"no preset named {args.show!r}", hint=f"the presets are: {names}")
        print(preset.read_text(), end="")
        return 0
    found = presets()
    width = max(len(p.name) for p in found)
    print("Mapping presets (use one with -m NAME; media-import mappings --show NAME prints it):")
    for p in found:
        print(f"  {p.name:<{width}}  {p.description}")
    return 0
