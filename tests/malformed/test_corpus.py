"""The malformed corpus through ``check``, ``run --dry-run`` and ``run`` against the simulator.

Whatever the input or the mapping, a user sees either a report or one clear error that names
the file (and the row, line or YAML path): never a traceback, an "internal error" or an
"Exception ignored"; no case hangs (each runs under a timeout); and a run that exits 2 ("nothing
was sent") has sent nothing: the simulator received no request at all.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from importer.simulator import Simulator

from .conftest import Invoke
from .corpus import (
    EITHER,
    INPUT_MAPPING,
    READ,
    REFUSED,
    InputCase,
    MappingCase,
    input_cases,
    mapping_cases,
    rich_data,
)

pytestmark = pytest.mark.timeout(60)

INPUTS = input_cases()
MAPPINGS = mapping_cases()
# A problem of a mapping starts with where it is: a line, a YAML path, or the option.
_WHERE = re.compile(r"^  - (line \d+, column \d+: |[\w\-\[\].]+: |--lookup: |expected a mapping |aliases |the file )")


def test_the_corpus_is_large_and_deterministic() -> None:
    assert len(INPUTS) >= 150
    assert len(MAPPINGS) >= 50
    assert len({c.id for c in INPUTS}) == len(INPUTS)
    assert len({c.id for c in MAPPINGS}) == len(MAPPINGS)
    again = input_cases()
    for first, second in zip(INPUTS, again, strict=True):
        assert {k: v for k, v in first.files.items() if isinstance(v, bytes)} == {
            k: v for k, v in second.files.items() if isinstance(v, bytes)
        }
    families = Counter(c.family for c in INPUTS)
    assert len(families) >= 15, families
    assert Counter(c.expect for c in INPUTS)[REFUSED] >= 50


def assert_clear(code: int, out: str, err: str, root: Path, expect: str, needle: str) -> None:
    """What the user sees is a report, or one error line naming a file of the case (and a hint)."""
    seen = out + err
    assert "Traceback" not in seen, err
    assert "internal error" not in seen, err
    assert "Exception ignored" not in seen, err
    assert code in (0, 1, 2, 3), (code, err)
    if code == 2:
        # run reports a stop on an input it met while reading after its summary, on stdout.
        stopped = [line for line in out.splitlines() if line.startswith("Stopped early: ")]
        if err or not stopped:
            lines = err.rstrip("\n").split("\n")
        else:
            after = out[out.index(stopped[0]) :].split("\n")
            lines = after[:2] if after[1].startswith("  hint: ") else after[:1]
        assert lines[0].startswith(("media-import: error: ", "Stopped early: ")), err
        assert str(root) in lines[0], f"the error names no file of the case: {lines[0]}"
        if lines[0].endswith("in the mapping:"):
            problems = [line for line in lines[1:] if line.startswith("  - ")]
            assert problems, err
            for line in problems:
                assert _WHERE.match(line), f"a problem without its place: {line}"
        else:
            assert all(line.startswith("  hint: ") for line in lines[1:]), err
        assert needle in "\n".join(lines), f"expected {needle!r} in: {lines}"
    if expect == READ:
        assert code in (0, 1), err
        assert needle in err, f"expected the warning {needle!r} in: {err}"  # e.g. a header-only file
    elif expect == REFUSED:
        assert code == 2, (code, out[-500:], err)
    else:
        assert expect == EITHER


@pytest.fixture
def simulator(make_simulator: Callable[..., Simulator]) -> Simulator:
    """No burst window: a case that reads thousands of rows sends them at once."""
    return make_simulator(burst=0)


def _input_case(case: InputCase, tmp_path: Path) -> tuple[Path, Path, Path]:
    root = tmp_path / "case"
    target = case.write(root)
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(yaml.safe_dump(INPUT_MAPPING), encoding="utf-8")
    return root, target, mapping


@pytest.mark.parametrize("case", INPUTS, ids=lambda c: c.id)
def test_check_input(case: InputCase, tmp_path: Path, cli: Invoke) -> None:
    root, target, mapping = _input_case(case, tmp_path)
    code, out, err = cli("check", target, "-m", mapping)
    assert_clear(code, out, err, root, case.expect, case.needle)
    if code in (0, 1):
        assert "Valid events" in out


@pytest.mark.parametrize("case", INPUTS, ids=lambda c: c.id)
def test_dry_run_input(case: InputCase, tmp_path: Path, cli: Invoke) -> None:
    root, target, mapping = _input_case(case, tmp_path)
    code, out, err = cli("run", "--dry-run", target, "-m", mapping, "--results", tmp_path / "results.csv")
    assert_clear(code, out, err, root, case.expect, case.needle)


@pytest.mark.parametrize("case", INPUTS, ids=lambda c: c.id)
def test_run_input(
    case: InputCase, tmp_path: Path, cli: Invoke, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, target, mapping = _input_case(case, tmp_path)
    code, out, err = _run(cli, simulator, monkeypatch, tmp_path, target, mapping)
    # Sending may start before a broken file is met; the exit code then says it was not "nothing".
    expect = REFUSED if case.expect == REFUSED and _refused_before_sending(case) else EITHER
    assert_clear(code, out, err, root, expect, case.needle if code == 2 else "")
    if code == 2:
        assert simulator.client.stats()["requests_total"] == 0, "exit 2 says nothing was sent"


@pytest.mark.parametrize("case", MAPPINGS, ids=lambda c: c.id)
def test_mapping(
    case: MappingCase, tmp_path: Path, cli: Invoke, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "case"
    mapping = case.write(root)
    data = root / "plays.csv"
    data.write_bytes(rich_data())
    code, out, err = cli("check", data, "-m", mapping)
    assert_clear(code, out, err, root, case.expect, case.needle)
    checked = code
    code, out, err = _run(cli, simulator, monkeypatch, tmp_path, data, mapping)
    assert_clear(code, out, err, root, case.expect, case.needle)
    if code == 2:
        assert simulator.client.stats()["requests_total"] == 0, "exit 2 says nothing was sent"
    assert (code == 2) == (checked == 2), "check and run disagree on whether the mapping is usable"


def _run(
    cli: Invoke, simulator: Simulator, monkeypatch: pytest.MonkeyPatch, tmp: Path, target: Path, mapping: Path
) -> tuple[int, str, str]:
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", simulator.token)
    return cli(
        "run",
        target,
        "-m",
        mapping,
        "--results",
        tmp / "results.csv",
        "--state-dir",
        tmp / "state",
        "--base-url",
        simulator.url,
        "--rate",
        "none",
        "-q",
    )


def _refused_before_sending(case: InputCase) -> bool:
    """Broken files whose problem shows only past their first rows may be met after sending started."""
    return not case.id.startswith(("gzip/truncated", "gzip/corrupt", "encoding/invalid-late"))
