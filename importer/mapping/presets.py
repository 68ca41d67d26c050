"""The mapping presets that ship with the tool (``mappings/`` in the repository), found by name.

``--mapping mux-data-views`` works from any directory: a ``--mapping`` value that is not a file
and has no folder in it names a preset.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources.abc import Traversable

from importer._data import resource

SUFFIX = ".yaml"


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    file: Traversable

    def read_text(self) -> str:
        return self.file.read_text(encoding="utf-8")


def presets() -> list[Preset]:
    """Every shipped preset, by name; the description is the first line of its header comment."""
    found = []
    for entry in resource("mappings").iterdir():
        if entry.name.endswith(SUFFIX) and entry.is_file():
            found.append(Preset(entry.name.removesuffix(SUFFIX), _description(entry), entry))
    return sorted(found, key=lambda p: p.name)


def find_preset(name: str) -> Preset | None:
    """The preset called ``name`` (with or without ``.yaml``), or None."""
    if "/" in name or "\\" in name:
        return None
    wanted = name.removesuffix(SUFFIX)
    return next((p for p in presets() if p.name == wanted), None)


def _description(entry: Traversable) -> str:
    with entry.open("r", encoding="utf-8") as fh:
        first = fh.readline().strip()
    return first.lstrip("#").strip() if first.startswith("#") else ""
