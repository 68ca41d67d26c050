"""What several test packages read back after a run: the results file, its summary, the outcome."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def results_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def summary_of(results: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(f"{results}.summary.json").read_text(encoding="utf-8"))
    return data


@dataclass
class Ran:
    """One ``media-import`` invocation: exit code, output, and where its results went."""

    code: int
    out: str
    err: str
    results: Path

    @property
    def summary(self) -> dict[str, Any]:
        return summary_of(self.results)

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = self.summary["counts"]
        return counts

    @property
    def rows(self) -> list[dict[str, str]]:
        return results_rows(self.results)
