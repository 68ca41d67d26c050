"""The task runner CI calls: pytest's exit codes reach make unchanged, "no tests collected" included."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_test_fails_when_no_test_is_collected() -> None:
    up_to_date = subprocess.run(["make", "-q", ".venv/.installed"], cwd=REPO, capture_output=True)
    if up_to_date.returncode != 0:
        pytest.skip(".venv is being set up again; make test would reinstall it under this run")
    args = "PYTEST_ARGS=tests/test_docs.py -k no_test_has_this_name -p no:cacheprovider"
    proc = subprocess.run(["make", "-s", "test", args], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert "deselected" in proc.stdout, proc.stdout + proc.stderr
    assert proc.returncode != 0


def test_ci_runs_lint_and_the_tests() -> None:
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "make lint test" in script
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "exit 0" not in makefile  # no exit code of pytest is turned into a pass
