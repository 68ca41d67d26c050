"""``media-import`` in-process for the malformed corpus, with what a user would see checked."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest

from importer.cli.main import main

Invoke = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Exit code, stdout, stderr; an exception printed as "Exception ignored" counts as stderr too."""
    for name in ("HUBSPOT_ACCESS_TOKEN", "HUBSPOT_CLIENT_ID", "HUBSPOT_CLIENT_SECRET", "HUBSPOT_REFRESH_TOKEN"):
        monkeypatch.delenv(name, raising=False)

    def invoke(*args: object) -> tuple[int, str, str]:
        unraisable: list[str] = []

        def hook(info: Any) -> None:
            unraisable.append(f"Exception ignored in: {info.object!r}: {info.exc_type.__name__}: {info.exc_value}")

        previous, sys.unraisablehook = sys.unraisablehook, hook
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        finally:
            sys.unraisablehook = previous
        out, err = capsys.readouterr()
        return code, out, err + "".join(f"{line}\n" for line in unraisable)

    return invoke
