"""Data that ships with the tool: the mapping presets, the demo's sample data and the README.

``mappings``, ``sample_data`` and ``README.md`` here are symbolic links to the folders and the
file at the top of the repository, where people edit them. Read them through
``importlib.resources.files("importer._data")``: in a source checkout or an editable install the
links lead to the repository; a wheel or sdist holds real copies, as building follows the links
(``[tool.setuptools.package-data]`` in pyproject.toml names what goes in).
"""

from __future__ import annotations

import re
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from importer.errors import ConfigError


def resource(*parts: str) -> Traversable:
    """A shipped file or folder, e.g. ``resource("mappings", "generic.yaml")``."""
    node = files(__name__)
    for part in parts:
        node = node / part
    return node


def resource_path(*parts: str) -> Path:
    """A shipped file or folder as a path on disk, for readers that need one (the sample data)."""
    node = resource(*parts)
    if not isinstance(node, Path):  # only a zipped install (zipapp, egg) gives something else
        raise ConfigError(
            f"{'/'.join(parts)}: the installed media-import is not unpacked on disk",
            hint="install it with pip or pipx (a wheel), not as a zip",
        )
    return node


def readme_section(title: str) -> str:
    """The README's section called ``title`` (any level), up to the next heading of its level or above."""
    text = resource("README.md").read_text(encoding="utf-8")
    found = re.search(rf"^(#+) {re.escape(title)}\n", text, re.M)
    if found is None:
        raise ConfigError(f"README.md has no section '{title}'", hint="the installed copy may be damaged; reinstall")
    level = len(found.group(1))
    end = re.compile(rf"^#{{1,{level}}} ", re.M).search(text, found.end())
    return text[found.start() : end.start() if end else len(text)].rstrip() + "\n"
