"""Fixtures shared by every test folder.

``simulator``: a fresh Media Bridge simulator per test (a real server on a free loopback port,
served from a thread; starting one takes about a millisecond, so isolation is free). It has
``.url``, ``.token`` (every scope) and ``.client`` (a ``SimulatorClient``: ``events``, ``stats``,
``reset``, ``configure``).

``make_simulator(**config)``: the same with ``SimulatorConfig`` fields set, e.g.
``make_simulator(burst=5, window_ms=500)``, and ``clock=`` (a ``ManualClock`` or ``ScaledClock``)
for the simulator's time; every simulator it made is stopped after the test.

``cli``: ``media-import`` in this process (``support.Cli``): ``cli(*args)`` gives (code, out, err),
``cli.run(base_url, *inputs)`` a ``Ran``; HubSpot variables are cleared first.

Media objects are strict (an event naming no object is refused): every simulator starts with the
objects the sample generator's ``media_bridge_id`` values name (``sample_objects``), as an account
would have them; the samples' ``external_id`` media are created by the runs themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import Cli

from importer.clock import SYSTEM, Clock
from importer.simulator import Simulator, SimulatorConfig
from importer.simulator.media import fixture_objects, sample_objects


@pytest.fixture
def make_simulator() -> Iterator[Callable[..., Simulator]]:
    started: list[Simulator] = []

    def make(clock: Clock = SYSTEM, **config: Any) -> Simulator:
        simulator = Simulator(SimulatorConfig(**config), clock=clock).start()
        started.append(simulator)
        simulator.client.seed_media(sample_objects() + fixture_objects())
        return simulator

    yield make
    for simulator in started:
        simulator.stop()


@pytest.fixture
def simulator(make_simulator: Callable[..., Simulator]) -> Simulator:
    return make_simulator()


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(tmp_path, capsys, monkeypatch)
