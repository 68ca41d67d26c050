from __future__ import annotations

from collections.abc import Callable

import pytest

from importer.cli.main import main

CliResult = tuple[int, str, str]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``media-import`` in-process: (exit code, stdout, stderr), never a traceback."""

    def invoke(*args: object) -> CliResult:
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        assert "internal error" not in err
        return code, out, err

    return invoke
