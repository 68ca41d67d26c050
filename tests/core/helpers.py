"""Shared helpers for the core-pipeline tests: write inputs, build mappings, run ``check``."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from support import ms

from importer.mapping.report import Report
from importer.mapping.spec import parse_mapping
from importer.run.pipeline import Pipeline, check
from importer.state.results import ResultsWriter, read_results

REPO = Path(__file__).resolve().parents[2]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

BASE_FIELDS: dict[str, Any] = {
    "sessionId": "sid",
    "mediaType": {"const": "VIDEO"},
    "contactId": "cid",
    "externalId": {"const": "ext-1"},
}
BASE_EVENTS: list[dict[str, Any]] = [{"state": "STARTED", "timestamp": "ts"}]
T0 = "2025-01-01T00:00:00Z"


def mapping_doc(
    fields: dict[str, Any] | None = None,
    events: list[dict[str, Any]] | None = None,
    **top: Any,
) -> dict[str, Any]:
    """A minimal valid mapping; ``fields`` entries override (None removes a base field)."""
    merged = {**BASE_FIELDS, **(fields or {})}
    doc: dict[str, Any] = {
        "fields": {k: v for k, v in merged.items() if v is not None},
        "events": events if events is not None else BASE_EVENTS,
    }
    doc.update(top)
    return doc


def write_mapping(path: Path, doc: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def write_rows(path: Path, rows: Sequence[dict[str, Any]], *, encoding: str = "utf-8") -> Path:
    """Write rows in the format the file name says (.csv/.tsv/.parquet/.jsonl/.ndjson, optionally .gz)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.name.lower()
    gz = name.endswith(".gz")
    base = name.removesuffix(".gz")
    if base.endswith(".parquet"):
        pq.write_table(pa.Table.from_pylist(list(rows)), path)
        return path
    if base.endswith((".jsonl", ".ndjson")):
        data = "".join(json.dumps(r) + "\n" for r in rows).encode(encoding)
    else:
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter="\t" if base.endswith(".tsv") else ",", lineterminator="\n")
        header = list(rows[0])
        writer.writerow(header)
        for r in rows:
            writer.writerow(["" if r.get(h) is None else r.get(h) for h in header])
        data = buf.getvalue().encode(encoding)
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def csv_file(path: Path, header: str, *lines: str) -> Path:
    """A CSV from a header line and data lines (written verbatim)."""
    return write_text(path, "\n".join([header, *lines]) + "\n")


@dataclass
class Outcome:
    report: Report
    payloads: list[dict[str, Any]]
    invalid: list[dict[str, Any]]

    @property
    def skipped(self) -> dict[str, int]:
        return dict(self.report.skipped)


_runs = 0


def run(
    doc: dict[str, Any],
    inputs: Sequence[Path | str],
    tmp_path: Path,
    *,
    base_dir: Path | None = None,
    lookup_paths: dict[str, str] | None = None,
) -> Outcome:
    """Parse ``doc``, run ``check`` over ``inputs`` and return the payloads and invalid records."""
    global _runs
    _runs += 1
    mapping = parse_mapping(doc, base_dir=base_dir or tmp_path, lookup_paths=lookup_paths)
    pipeline = Pipeline(mapping, [str(p) for p in inputs])
    results = tmp_path / f"results-{_runs}.parquet"
    with ResultsWriter(results) as writer:
        report = check(pipeline, results=writer, preview=1_000_000)
    invalid = read_results(results).to_pylist()
    return Outcome(report, [json.loads(p) for p in report.previews], invalid)


def column(outcome: Outcome, name: str) -> list[Any]:
    """One payload field across all valid events (None where omitted)."""
    return [p.get(name) for p in outcome.payloads]


__all__ = ["ms"]
