"""Fixtures of the nightly-run tests.

``night``: a ``Nights`` helper: one simulator, one state directory, one inputs folder, and
``run(...)`` for the same scheduled command every night.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import Cli, CliResult

from importer.simulator import Simulator

from .helpers import MAPPING, summary_of


@dataclass
class Nights:
    """The same ``media-import run`` every night over a growing folder, against one simulator."""

    sim: Simulator
    cli: Cli
    root: Path

    @property
    def inputs(self) -> Path:
        return self.root / "inputs"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def results(self) -> Path:
        return self.root / "results.csv"

    def command(self, *extra: object, inputs: object | None = None, base_url: str | None = None) -> list[str]:
        return [
            "run",
            str(inputs if inputs is not None else self.inputs),
            "--mapping",
            str(MAPPING),
            "--results",
            str(self.results),
            "--state-dir",
            str(self.state),
            "--base-url",
            base_url or self.sim.url,
            "--rate",
            "none",
            *[str(e) for e in extra],
        ]

    def run(self, *extra: object, **kw: Any) -> CliResult:
        return self.cli(*self.command(*extra, **kw))

    def media_sync(self) -> None:
        """The inputs' media objects, created before a night whose point is the events' faults."""
        r = self.cli("media", "sync", self.inputs, "-m", MAPPING, "--state-dir", self.state,
                     "--base-url", self.sim.url, "--rate", "none", "-q")  # fmt: skip
        assert r.code in (0, 1) and "failed 0" in r.out, r.out + r.err

    def summary(self) -> dict[str, Any]:
        return summary_of(self.results)


@pytest.fixture
def night(
    make_simulator: Callable[..., Simulator], cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Nights]:
    sim = make_simulator(burst=0)
    for name in ("HUBSPOT_CLIENT_ID", "HUBSPOT_CLIENT_SECRET", "HUBSPOT_REFRESH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", sim.token)
    nights = Nights(sim, cli, tmp_path)
    nights.inputs.mkdir()
    yield nights
