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

from .helpers import MAPPING, REPO

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
