"""Fixtures of the contact-resolution and quartile tests (simulators come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from importer.simulator import Simulator

from .helpers import Cli, RecordingProxy


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(tmp_path, capsys, monkeypatch)


@pytest.fixture
def make_proxy() -> Iterator[Callable[[Simulator], RecordingProxy]]:
    made: list[RecordingProxy] = []

    def make(sim: Simulator) -> RecordingProxy:
        proxy = RecordingProxy(sim)
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.close()
