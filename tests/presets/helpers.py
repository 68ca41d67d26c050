"""Shared helpers for the preset tests: run a shipped mapping over its sample, read the raw sample.

Expected payloads are written out by hand from the sample rows; times are converted here with
``datetime`` and hash ids with pandas directly, never through the importer's own code.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from support import ms

from importer.mapping.report import Report
from importer.mapping.spec import load_mapping
from importer.run.pipeline import Pipeline, check
from importer.state.results import ResultsWriter, read_results

REPO = Path(__file__).resolve().parents[2]
MAPPINGS = REPO / "mappings"
SAMPLES = REPO / "sample_data"
NOT_FOUND = "not found in lookup 'contacts'"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def stable_id(*parts: str) -> str:
    """The contract of ``{hash: [...]}``: SipHash-2-4 keyed ``media-import-v1!`` (pandas'
    ``hash_array``) of the parts joined by U+001F, as 16 hex digits."""
    joined = np.array(["\x1f".join(parts)], dtype=object)
    value = pd.util.hash_array(joined, encoding="utf8", hash_key="media-import-v1!", categorize=False)[0]
    return f"{int(value):016x}"


def read_lookup(path: Path, key: str) -> dict[str, int]:
    """A contacts lookup file as key → contact id."""
    with path.open(encoding="utf-8", newline="") as fh:
        return {row[key]: int(float(row["contact_id"])) for row in csv.DictReader(fh)}


@dataclass
class Checked:
    """What ``check`` made of a sample: the report, every valid payload and every invalid record."""

    report: Report
    payloads: list[dict[str, Any]]
    invalid: list[dict[str, Any]]

    def session(self, session_id: str) -> dict[str, dict[str, Any]]:
        """The valid payloads of one session by state; each state may appear once only."""
        found = [p for p in self.payloads if p["sessionId"] == session_id]
        by_state = {p["state"]: p for p in found}
        assert len(by_state) == len(found), f"{session_id}: a state was kept twice"
        return by_state

    def invalid_for(self, value: str) -> list[dict[str, Any]]:
        """The invalid records whose reported value (the lookup key, the bad text…) is ``value``."""
        return [r for r in self.invalid if r["value"] == value]

    def mentions(self, session_id: str) -> bool:
        """Whether any valid or invalid event came from this session."""
        invalid = [json.loads(r["payload"]) for r in self.invalid if r["payload"]]
        return any(p.get("sessionId") == session_id for p in [*self.payloads, *invalid])


def check_preset(preset: str, inputs: Sequence[Path], lookup: Path, results: Path) -> Checked:
    """Run ``check`` with ``mappings/<preset>.yaml`` and ``--lookup contacts=<lookup>``."""
    mapping = load_mapping(MAPPINGS / f"{preset}.yaml", {"contacts": str(lookup)})
    pipeline = Pipeline(mapping, [str(p) for p in inputs])
    with ResultsWriter(results) as writer:
        report = check(pipeline, results=writer, preview=1_000_000)
    return Checked(report, [json.loads(p) for p in report.previews], read_results(results).to_pylist())


__all__ = ["ms"]
