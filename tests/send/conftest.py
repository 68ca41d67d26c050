"""Fixtures of the sender tests: ``media-import`` in-process and as a child process.

Simulators come from tests/conftest.py (``simulator``, ``make_simulator``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from importer.cli.main import main

from .helpers import MAPPING, REPO, Ran

ENV_NAMES = ("HUBSPOT_ACCESS_TOKEN", "HUBSPOT_CLIENT_ID", "HUBSPOT_CLIENT_SECRET", "HUBSPOT_REFRESH_TOKEN")


def run_args(
    base_url: str, inputs: list[Path], results: Path, state: Path, *extra: object, rate: str = "none"
) -> list[str]:
    return [
        "run",
        *[str(p) for p in inputs],
        "-m",
        str(MAPPING),
        "--results",
        str(results),
        "--state-dir",
        str(state),
        "--base-url",
        base_url,
        "--rate",
        rate,
        "-q",
        *[str(e) for e in extra],
    ]


class Cli:
    """``media-import`` in this process, with the HubSpot variables set per call."""

    def __init__(self, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp = tmp_path
        self.state = tmp_path / "state"
        self._capsys = capsys
        self._monkeypatch = monkeypatch
        self._n = 0
        for name in ENV_NAMES:
            monkeypatch.delenv(name, raising=False)

    def env(self, **values: str | None) -> None:
        for name, value in values.items():
            if value is None:
                self._monkeypatch.delenv(name, raising=False)
            else:
                self._monkeypatch.setenv(name, value)

    def __call__(self, *args: object, check: bool = True) -> tuple[int, str, str]:
        """Exit code, stdout, stderr; with ``check``, neither a traceback nor an internal error."""
        self._capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = self._capsys.readouterr()
        if check:
            assert "Traceback" not in out + err
            assert "internal error" not in out + err, err
        return code, out, err

    def run(
        self,
        base_url: str,
        *inputs: Path,
        extra: tuple[object, ...] = (),
        rate: str = "none",
        results: Path | None = None,
        check: bool = True,
    ) -> Ran:
        self._n += 1
        results = results or self.tmp / f"results-{self._n}.csv"
        args = run_args(base_url, list(inputs), results, self.state, *extra, rate=rate)
        code, out, err = self(*args, check=check)
        return Ran(code, out, err, results)

    def media_sync(self, base_url: str, *inputs: Path) -> None:
        """``media sync`` of the inputs' media objects: tests whose point is the events' faults create the
        media first, on a fault-free simulator, as a first backfill would."""
        code, out, err = self("media", "sync", *inputs, "-m", MAPPING, "--state-dir", self.state,
                              "--base-url", base_url, "--rate", "none", "-q")  # fmt: skip
        assert code in (0, 1) and "failed 0" in out, out + err  # 1: some media are invalid (their rows are)


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(tmp_path, capsys, monkeypatch)


class Child:
    """``python -m importer ...`` as a child process; stdout and stderr go to files in ``tmp``."""

    def __init__(self, tmp: Path, args: list[str], env: dict[str, str], name: str) -> None:
        self.stdout_path = tmp / f"{name}.stdout"
        self.stderr_path = tmp / f"{name}.stderr"
        self._out = open(self.stdout_path, "wb")  # noqa: SIM115
        self._err = open(self.stderr_path, "wb")  # noqa: SIM115
        full_env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
        full_env.update(env)
        full_env["PYTHONPATH"] = str(REPO)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "importer", *args],
            cwd=tmp,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=self._err,
        )

    def wait(self, timeout: float = 60.0) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._out.close()
            self._err.close()

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Any]:
    """Start ``python -m importer ARGS`` with ``env`` (no other HubSpot variables); killed at teardown."""
    children: list[Child] = []

    def start(args: list[str], env: dict[str, str], name: str | None = None) -> Child:
        child = Child(tmp_path, args, env, name or f"child-{len(children) + 1}")
        children.append(child)
        return child

    yield start
    for child in children:
        if child.proc.poll() is None:
            child.proc.kill()
        child.wait(10)
