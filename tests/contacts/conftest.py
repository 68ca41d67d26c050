"""Fixtures of the contact-resolution and quartile tests (simulators come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from importer.simulator import Simulator

from .helpers import RecordingProxy


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
