"""Fixtures of the contact-resolution and quartile tests (simulators come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from importer.simulator import Simulator

from .helpers import RecordingProxy


@pytest.fixture
def make_simulator(make_simulator: Callable[..., Simulator]) -> Callable[..., Simulator]:
    """The root fixture's simulators, with the media objects these tests' rows name (vid-0 … vid-999)
    already in the account: their mappings have no media: section, so the runs create none."""

    def make(**config: Any) -> Simulator:
        sim = make_simulator(**config)
        sim.client.seed_media([{"externalId": f"vid-{i}", "mediaType": "VIDEO", "title": f"Video {i}"}
                               for i in range(1000)])  # fmt: skip
        return sim

    return make


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
