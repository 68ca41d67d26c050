"""The ``check`` command: report, results file, preview, JSON output and exit codes."""

from __future__ import annotations

import csv
import json
import os
import stat
from pathlib import Path
from types import ModuleType

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from support import Cli, generator

from .helpers import REPO, T0, csv_file, mapping_doc, write_mapping

T1 = "2025-01-01T00:10:00Z"
# The results file starts with these columns (later stages may add more after them).
RESULT_COLUMNS = ["source_file", "row_number", "state", "status", "field", "value", "error"]


@pytest.fixture
def mapping(tmp_path: Path) -> Path:
    doc = mapping_doc(
        events=[
            {"state": "STARTED", "timestamp": "ts"},
            {"state": "VIEWED", "timestamp": "vt", "when": {"column": "vt", "present": True}},
        ],
        skip=[{"column": "bot", "is_true": True}],
    )
    return write_mapping(tmp_path / "m.yaml", doc)


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """Two valid sessions (one viewed), one bot, one duplicate, two invalid rows."""
    return csv_file(
        tmp_path / "plays.csv",
        "sid,cid,ts,vt,bot",
        f"a,1,{T0},{T1},no",
        f"b,2,{T0},,no",
        f"c,3,{T0},,yes",
        f"a,1,{T0},,no",
        f"d,=1+2,{T0},,no",
        "e,5,yesterday,,no",
    )


def squeeze(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines()]


def test_report_text_has_the_counts(tmp_path: Path, mapping: Path, mixed: Path, cli: Cli) -> None:
    code, out, err = cli("check", mixed, "-m", mapping)
    assert code == 1
    assert err == ""
    lines = squeeze(out)
    assert lines[:7] == [
        "Rows read 6 (1 file)",
        "Valid events 3 STARTED 2, VIEWED 1",
        "Invalid events 2",
        "Rows skipped 2",
        "1 skip[0] bot is_true",
        "1 duplicate event (dedupe)",
        "Distinct sessions 2, contacts 2, media 1",
    ]
    assert lines[7] == "Invalid by reason:"
    assert "1 contactId: not an integer id" in lines
    assert f"e.g. {mixed}:5 STARTED value='=1+2'" in lines
    assert "1 occurredTimestamp: not a timestamp in the expected format" in lines
    assert f"e.g. {mixed}:6 STARTED value='yesterday'" in lines


def test_results_csv(tmp_path: Path, mapping: Path, mixed: Path, cli: Cli) -> None:
    results = tmp_path / "out" / "results.csv"
    results.parent.mkdir()
    code, out, _ = cli("check", mixed, "-m", mapping, "--results", results)
    assert code == 1
    assert out.splitlines()[-1] == f"Invalid events written to {results}"
    assert stat.S_IMODE(os.stat(results).st_mode) == 0o600
    with open(results, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:7] == RESULT_COLUMNS
    assert "payload" in rows[0]
    records = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert [(r["source_file"], r["row_number"], r["state"], r["status"], r["field"]) for r in records] == [
        (str(mixed), "5", "STARTED", "invalid", "contactId"),
        (str(mixed), "6", "STARTED", "invalid", "occurredTimestamp"),
    ]
    # A spreadsheet would run "=1+2" as a formula: the cell is neutralised with a quote.
    assert records[0]["value"] == "'=1+2"
    # One problem, one message: no "no contact" after the id that did not parse.
    assert records[0]["error"] == "contactId: not an integer id"
    assert json.loads(records[0]["payload"]) == {
        "mediaType": "VIDEO", "sessionId": "d", "state": "STARTED", "occurredTimestamp": 1_735_689_600_000,
        "externalId": "ext-1",
    }  # fmt: skip


def test_results_file_is_private_even_when_it_existed(tmp_path: Path, mapping: Path, mixed: Path, cli: Cli) -> None:
    results = tmp_path / "results.csv"
    results.write_text("old")
    results.chmod(0o644)
    cli("check", mixed, "-m", mapping, "--results", results)
    assert stat.S_IMODE(os.stat(results).st_mode) == 0o600
    assert "old" not in results.read_text()


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@"])
def test_formula_cells_are_neutralised(tmp_path: Path, mapping: Path, cli: Cli, prefix: str) -> None:
    value = f'{prefix}HYPERLINK("http://evil")'
    data = tmp_path / "plays.csv"
    with open(data, "w", newline="") as fh:
        csv.writer(fh).writerows([["sid", "cid", "ts", "vt", "bot"], ["a", value, T0, "", "no"]])
    results = tmp_path / "r.csv"
    code, _, _ = cli("check", data, "-m", mapping, "--results", results)
    assert code == 1
    with open(results, newline="") as fh:
        (record,) = list(csv.DictReader(fh))
    assert record["value"] == "'" + value
    assert record["field"] == "contactId"


def test_results_parquet_by_extension(tmp_path: Path, mapping: Path, mixed: Path, cli: Cli) -> None:
    results = tmp_path / "results.parquet"
    code, _, _ = cli("check", mixed, "-m", mapping, "--results", results)
    assert code == 1
    assert stat.S_IMODE(os.stat(results).st_mode) == 0o600
    table = pq.read_table(results)
    assert table.column_names[:7] == RESULT_COLUMNS
    assert table.schema.field("row_number").type == pa.int64()
    assert table.select(["row_number", "status", "field", "value"]).to_pylist() == [
        {"row_number": 5, "status": "invalid", "field": "contactId", "value": "=1+2"},  # Parquet is data, not a sheet
        {"row_number": 6, "status": "invalid", "field": "occurredTimestamp", "value": "yesterday"},
    ]


def test_results_path_that_cannot_be_created(tmp_path: Path, mapping: Path, mixed: Path, cli: Cli) -> None:
    results = tmp_path / "a-folder"
    results.mkdir()
    code, out, err = cli("check", mixed, "-m", mapping, "--results", results)
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"media-import: error: cannot create the results file {results} (Is a directory)",
        "  hint: check that its folder exists and is writable",
    ]


@pytest.mark.parametrize("n", [1, 3])
def test_preview_prints_n_payloads(tmp_path: Path, mapping: Path, mixed: Path, cli: Cli, n: int) -> None:
    code, out, _ = cli("check", mixed, "-m", mapping, "--preview", n)
    assert code == 1
    lines = out.splitlines()
    previews = [json.loads(line) for line in lines[:n]]
    assert lines[n].startswith("Rows read")
    expected = [("a", "STARTED"), ("a", "VIEWED"), ("b", "STARTED")][:n]
    assert [(p["sessionId"], p["state"]) for p in previews] == expected
    assert previews[0] == {
        "mediaType": "VIDEO", "sessionId": "a", "state": "STARTED", "occurredTimestamp": 1_735_689_600_000,
        "contactId": 1, "externalId": "ext-1",
    }  # fmt: skip


def test_negative_preview_is_a_config_error(tmp_path: Path, mapping: Path, mixed: Path, cli: Cli) -> None:
    code, out, err = cli("check", mixed, "-m", mapping, "--preview", "-1")
    assert (code, out) == (2, "")
    assert err.splitlines() == ["media-import: error: --preview must be 0 or more"]


def test_exit_0_when_everything_is_valid(tmp_path: Path, mapping: Path, cli: Cli) -> None:
    data = csv_file(tmp_path / "ok.csv", "sid,cid,ts,vt,bot", f"a,1,{T0},{T1},no", f"b,2,{T0},,yes")
    code, out, _ = cli("check", data, "-m", mapping)
    assert code == 0
    assert squeeze(out)[:4] == [
        "Rows read 2 (1 file)",
        "Valid events 2 STARTED 1, VIEWED 1",
        "Invalid events 0",
        "Rows skipped 1",
    ]
    assert "Invalid by reason:" not in out


def test_json_report(tmp_path: Path, mapping: Path, mixed: Path, cli: Cli) -> None:
    code, out, _ = cli("check", mixed, "-m", mapping, "--json")
    assert code == 1
    assert json.loads(out) == {
        "files": 1,
        "rows": 6,
        "events": {"STARTED": 2, "VIEWED": 1},
        "events_total": 3,
        "skipped": {"skip[0] bot is_true": 1, "duplicate event (dedupe)": 1},
        "duplicates": 1,
        "invalid": 2,
        "invalid_by_reason": {
            "contactId: not an integer id": 1,
            "occurredTimestamp: not a timestamp in the expected format": 1,
        },
        "distinct": {"sessions": 2, "contacts": 2, "media": 1, "exact": True},
    }


def _spoiled(gen: ModuleType, rows: int, seed: int, invalid_every: int, prefix: str) -> dict[int, set[str]]:
    """Data row number → the columns the generator spoiled, by comparing with the clean rows."""
    clean = gen.canonical(rows, seed=seed, prefix=prefix)
    dirty = gen.canonical(rows, seed=seed, invalid_every=invalid_every, prefix=prefix)
    spoiled: dict[int, set[str]] = {}
    for name in clean.column_names:
        differs = pc.fill_null(pc.not_equal(clean.column(name), dirty.column(name)), True)
        for i in pc.indices_nonzero(differs).to_pylist():
            spoiled.setdefault(i + 1, set()).add(name)
    return spoiled


def test_shipped_sample_data(tmp_path: Path, cli: Cli) -> None:
    gen = generator()
    # The committed samples are what the generator makes (see generate.samples()).
    h1 = gen.canonical(3000, seed=7, invalid_every=97)
    h2 = gen.canonical(2000, seed=8, prefix="h2")
    gen.write(h1, tmp_path / "h1.csv")
    sample_csv = REPO / "sample_data" / "generic" / "plays-2025-h1.csv"
    sample_parquet = REPO / "sample_data" / "generic" / "plays-2025-h2.parquet"
    assert (tmp_path / "h1.csv").read_bytes() == sample_csv.read_bytes()
    assert pq.read_table(sample_parquet).equals(h2)

    spoiled = _spoiled(gen, 3000, 7, 97, "s")
    assert len(spoiled) == 3000 // 97
    viewed = [bool(v) for v in h1.column("viewed_at").to_pylist()]
    # A spoiled row's STARTED event is invalid; its VIEWED event too unless only started_at was spoiled.
    invalid_events = sum(1 + (viewed[row - 1] and cols != {"started_at"}) for row, cols in spoiled.items())
    h2_viewed = sum(bool(v) for v in h2.column("viewed_at").to_pylist())

    results = tmp_path / "results.csv"
    code, out, _ = cli(
        "check",
        REPO / "sample_data" / "generic",
        "-m",
        REPO / "mappings" / "generic.yaml",
        "--results",
        results,
        "--json",
    )
    assert code == 1
    report = json.loads(out)
    assert report["rows"] == 5000
    assert report["files"] == 2
    assert report["invalid"] == invalid_events
    assert report["events"] == {
        "STARTED": 5000 - len(spoiled),
        "VIEWED": sum(viewed) + h2_viewed - (invalid_events - len(spoiled)),
    }
    with open(results, newline="") as fh:
        records = list(csv.DictReader(fh))
    assert len(records) == invalid_events
    assert {int(r["row_number"]) for r in records} == set(spoiled)
    assert {r["source_file"] for r in records} == {str(sample_csv)}
    assert {r["status"] for r in records} == {"invalid"}
