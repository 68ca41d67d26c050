"""The commands of README's "Bring your platform's export" run as printed, through the CLI."""

from __future__ import annotations

import re
import shlex

import pytest

from importer.cli.main import main

from .helpers import REPO

SECTION = "## Bring your platform's export"


def readme_commands() -> list[list[str]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    block = re.search(r"```\n(.*?)```", section, re.S)
    assert block is not None
    lines = block.group(1).replace("\\\n", " ").splitlines()
    return [shlex.split(line) for line in lines if line.strip()]


def test_there_is_a_command_per_preset() -> None:
    mappings = sorted(c[c.index("-m") + 1] for c in readme_commands())
    assert mappings == sorted(f"mappings/{p.name}" for p in (REPO / "mappings").glob("*.yaml") if p.stem != "generic")


@pytest.mark.parametrize("command", readme_commands(), ids=lambda c: c[c.index("-m") + 1])
def test_command_runs(command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(REPO)
    assert command[:2] == ["media-import", "check"]
    code = main([*command[1:], "--json"])
    out, err = capsys.readouterr()
    # Each sample holds one viewer missing from its lookup file, on purpose: exit code 1.
    assert (code, err) == (1, "")
    assert "\"contactId: not found in lookup 'contacts'\"" in out
