"""The documentation stays true: every command and option has help, the README names the commands."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import pytest

from importer.cli.main import build_parser, main

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    return [("media-import", build_parser()), *_subcommands().items()]


def test_there_are_subcommands() -> None:
    assert {"check", "demo"} <= set(_subcommands())


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_every_subcommand_help_works(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: media-import {command}")


def test_top_level_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in _subcommands():
        assert f"    {command} " in out


@pytest.mark.parametrize(("name", "parser"), _parsers(), ids=[n for n, _ in _parsers()])
def test_every_option_has_help(name: str, parser: argparse.ArgumentParser) -> None:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            missing += [f"{name} {c.dest}" for c in action._choices_actions if not (c.help or "").strip()]
            continue
        if action.help == argparse.SUPPRESS:
            continue
        if not (action.help or "").strip():
            missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


@pytest.mark.skipif(not README.exists(), reason="README.md not written yet")
def test_readme_opens_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert "make demo" in text
    assert "make test" in text
    # The two commands come first, before any other section.
    first_section = text.find("\n## ")
    assert 0 <= text.find("make demo") < first_section
    assert 0 <= text.find("make test") < first_section


@pytest.mark.skipif(not README.exists(), reason="README.md not written yet")
@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_readme_mentions_every_subcommand(command: str) -> None:
    assert f"media-import {command}" in README.read_text(encoding="utf-8")


def _examples(parser: argparse.ArgumentParser) -> list[str]:
    help_text = parser.format_help()
    assert "\n\nexamples:\n" in help_text, f"{parser.prog}: --help has no examples, after a blank line"
    block = help_text.rsplit("\nexamples:\n", 1)[1]
    return [line.strip() for line in block.strip().splitlines()]


@pytest.mark.parametrize(("name", "parser"), _parsers(), ids=[n for n, _ in _parsers()])
def test_every_help_ends_with_two_or_three_examples_that_parse(name: str, parser: argparse.ArgumentParser) -> None:
    examples = _examples(parser)
    assert 2 <= len(examples) <= 3
    for example in examples:
        words = shlex.split(example)
        assert words[0] == "media-import"
        # What follows a pipe or a redirection is the shell's, not ours.
        cut = next((i for i, w in enumerate(words) if w in ("|", ">")), len(words))
        args = build_parser().parse_args(words[1:cut])
        assert callable(args.func)
    if name != "media-import":
        assert any(e.startswith(f"media-import {name}") for e in examples)
