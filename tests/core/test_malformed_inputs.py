"""Malformed inputs through the CLI: one clear message naming the file, exit 2, never a traceback.

Bad rows (not bad files) become results records and the run goes on (exit 1).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import Cli

from importer.state.results import read_results

from .helpers import REPO, T0, csv_file, mapping_doc, write_mapping, write_rows, write_text

GOOD = f"sid,cid,ts\na,1,{T0}\n"


@pytest.fixture
def mapping(tmp_path: Path) -> Path:
    return write_mapping(tmp_path / "m.yaml", mapping_doc())


def error_lines(err: str) -> list[str]:
    return err.rstrip("\n").split("\n")


def test_unreadable_file(tmp_path: Path, mapping: Path, cli: Cli) -> None:
    path = csv_file(tmp_path / "locked.csv", "sid,cid,ts", f"a,1,{T0}")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as root: chmod 000 does not make the file unreadable")
        code, out, err = cli("check", path, "-m", mapping)
    finally:
        path.chmod(0o600)
    assert code == 2
    assert error_lines(err) == [f"media-import: error: {path}: cannot open (Permission denied)"]
    assert out == ""


def test_truncated_gzip(tmp_path: Path, mapping: Path, cli: Cli) -> None:
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(gzip.compress(GOOD.encode())[:-12])
    code, out, err = cli("check", path, "-m", mapping)
    assert code == 2
    assert error_lines(err) == [
        f"media-import: error: {path}: not a readable gzip file "
        "(Compressed file ended before the end-of-stream marker was reached)",
        "  hint: the file may be truncated or not gzip at all",
    ]
    assert out == ""


def test_truncated_gzip_past_the_first_block(tmp_path: Path, mapping: Path, cli: Cli) -> None:
    body = "sid,cid,ts\n" + "".join(f"s{i},{i},{T0}\n" for i in range(1, 20_000))
    full = gzip.compress(body.encode())
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(full[: len(full) // 2])
    code, _, err = cli("check", path, "-m", mapping)
    assert code == 2
    (line,) = error_lines(err)
    assert line.startswith(f"media-import: error: {path}: ")
    assert line.endswith("Truncated compressed stream")


@pytest.mark.parametrize("name", ["cut.csv.gz", "cut.jsonl.gz"])
def test_truncated_gzip_message_names_no_row_zero(tmp_path: Path, mapping: Path, cli: Cli, name: str) -> None:
    rows = [{"sid": f"s{i}", "cid": str(i), "ts": T0} for i in range(1, 20_000)]
    path = write_rows(tmp_path / name, rows)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    code, _, err = cli("check", path, "-m", mapping)
    assert code == 2
    assert f"{path}: " in err
    assert "row 0" not in err
    assert "line 0" not in err


def test_not_gzip_at_all(tmp_path: Path, mapping: Path, cli: Cli) -> None:
    path = write_text(tmp_path / "plain.csv.gz", GOOD)
    code, _, err = cli("check", path, "-m", mapping)
    assert code == 2
    assert error_lines(err) == [
        f"media-import: error: {path}: not a readable gzip file (Not a gzipped file (b'si'))",
        "  hint: the file may be truncated or not gzip at all",
    ]


def test_binary_junk_named_csv(tmp_path: Path, mapping: Path, cli: Cli) -> None:
    path = tmp_path / "junk.csv"
    path.write_bytes(bytes(range(256)) * 4)
    code, _, err = cli("check", path, "-m", mapping)
    assert code == 2
    assert error_lines(err) == [
        f"media-import: error: {path}: binary content, not CSV text",
        "  hint: check the file and its extension; Parquet files must end in .parquet",
    ]


def test_parquet_file_named_csv(tmp_path: Path, mapping: Path, cli: Cli) -> None:
    path = write_rows(tmp_path / "real.parquet", [{"sid": "a", "cid": "1", "ts": T0}])
    renamed = path.rename(tmp_path / "real.csv")
    code, _, err = cli("check", renamed, "-m", mapping)
    assert code == 2
    assert error_lines(err)[0] == f"media-import: error: {renamed}: binary content, not CSV text"


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_file(tmp_path: Path, mapping: Path, cli: Cli, content: str) -> None:
    path = write_text(tmp_path / "empty.csv", content)
    code, out, err = cli("check", path, "-m", mapping)
    assert code == 2
    assert error_lines(err) == [f"media-import: error: {path}: the file is empty"]
    assert out == ""


def test_empty_jsonl_and_parquet(tmp_path: Path, mapping: Path, cli: Cli) -> None:
    for name in ("empty.jsonl", "empty.parquet"):
        path = write_text(tmp_path / name, "")
        code, _, err = cli("check", path, "-m", mapping)
        assert code == 2
        assert error_lines(err) == [f"media-import: error: {path}: the file is empty"]


def test_header_only_file_is_0_rows_and_a_warning(tmp_path: Path, mapping: Path, cli: Cli) -> None:
    path = write_text(tmp_path / "header.csv", "sid,cid,ts\n")
    code, _, err = cli("check", path, "-m", mapping)
    assert code == 0
    assert err.splitlines() == [f"media-import: WARNING: {path}: has a header but no data rows: read as 0 rows"]


def test_missing_column_lists_the_available_ones(tmp_path: Path, mapping: Path, cli: Cli) -> None:
    path = csv_file(tmp_path / "p.csv", "sid,contact,ts", f"a,1,{T0}")
    code, out, err = cli("check", path, "-m", mapping)
    assert code == 2
    assert error_lines(err) == [
        f"media-import: error: {path}: missing column(s) cid used by the mapping",
        "  hint: 'cid' → did you mean 'sid'? Available: sid, contact, ts",
    ]
    assert out == ""


def test_missing_column_in_a_later_file_stops_before_any_row(tmp_path: Path, mapping: Path, cli: Cli) -> None:
    good = csv_file(tmp_path / "a.csv", "sid,cid,ts", f"a,1,{T0}")
    bad = csv_file(tmp_path / "b.csv", "sid,ts", f"b,{T0}")
    code, out, err = cli("check", good, bad, "-m", mapping)
    assert code == 2
    assert error_lines(err)[0] == f"media-import: error: {bad}: missing column(s) cid used by the mapping"
    assert out == ""  # no report: nothing was processed


def test_duplicate_column_names(tmp_path: Path, mapping: Path, cli: Cli) -> None:
    path = csv_file(tmp_path / "dup.csv", "sid,cid,sid,ts", f"a,1,b,{T0}")
    code, _, err = cli("check", path, "-m", mapping)
    assert code == 2
    assert error_lines(err) == [
        f"media-import: error: {path}: line 1: duplicate column name(s): sid",
        "  hint: rename the columns so that each name is unique",
    ]


def test_header_with_an_unnamed_column(tmp_path: Path, mapping: Path, cli: Cli) -> None:
    path = csv_file(tmp_path / "blank.csv", "sid,,cid,ts", f"a,x,1,{T0}")
    code, _, err = cli("check", path, "-m", mapping)
    assert code == 2
    assert error_lines(err) == [
        f"media-import: error: {path}: line 1: column 2 of the header has no name",
        "  hint: every column needs a name in the first line",
    ]


def test_wrong_delimiter_hints_at_input_delimiter(tmp_path: Path, mapping: Path, cli: Cli) -> None:
    path = csv_file(tmp_path / "semi.csv", "sid;cid;ts", f"a;1;{T0}")
    code, _, err = cli("check", path, "-m", mapping)
    assert code == 2
    lines = error_lines(err)
    assert lines[0] == f"media-import: error: {path}: missing column(s) cid, sid, ts used by the mapping"
    assert len(lines) == 2
    assert 'the file looks semicolon-separated; set input.delimiter: ";" in the mapping' in lines[1]
    assert lines[1].endswith("Available: sid;cid;ts")


def test_wrong_delimiter_fixed_by_the_mapping(tmp_path: Path, cli: Cli) -> None:
    path = csv_file(tmp_path / "semi.csv", "sid;cid;ts", f"a;1;{T0}")
    mapping = write_mapping(tmp_path / "m.yaml", mapping_doc(input={"delimiter": ";"}))
    code, out, _ = cli("check", path, "-m", mapping, "--preview", "1")
    assert code == 0
    assert json.loads(out.splitlines()[0])["sessionId"] == "a"


def test_bad_parquet_files(tmp_path: Path, mapping: Path, cli: Cli) -> None:
    no_magic = write_text(tmp_path / "no-magic.parquet", "hello, world")
    code, _, err = cli("check", no_magic, "-m", mapping)
    assert code == 2
    assert error_lines(err) == [f"media-import: error: {no_magic}: not a Parquet file (no PAR1 magic bytes)"]

    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1" + b"\x07garbage" * 50)
    code, _, err = cli("check", corrupt, "-m", mapping)
    assert code == 2
    (line,) = error_lines(err)
    assert line.startswith(f"media-import: error: {corrupt}: not a readable Parquet file (")


def test_truncated_parquet(tmp_path: Path, mapping: Path, cli: Cli) -> None:
    path = write_rows(tmp_path / "cut.parquet", [{"sid": f"s{i}", "cid": str(i), "ts": T0} for i in range(100)])
    path.write_bytes(path.read_bytes()[:-40])
    code, _, err = cli("check", path, "-m", mapping)
    assert code == 2
    (line,) = error_lines(err)
    assert line.startswith(f"media-import: error: {path}: not a readable Parquet file (")


def test_missing_input_path(tmp_path: Path, mapping: Path, cli: Cli) -> None:
    path = tmp_path / "nope.csv"
    code, out, err = cli("check", path, "-m", mapping)
    assert code == 2
    assert error_lines(err) == [f"media-import: error: {path}: no such file or folder"]
    assert out == ""


def test_glob_matching_nothing(tmp_path: Path, mapping: Path, cli: Cli) -> None:
    pattern = f"{tmp_path}/2026-*.csv"
    code, _, err = cli("check", pattern, "-m", mapping)
    assert code == 2
    assert error_lines(err) == [f"media-import: error: {pattern}: the pattern matches no file"]


def test_unknown_extension(tmp_path: Path, mapping: Path, cli: Cli) -> None:
    path = write_text(tmp_path / "plays.xlsx", "x")
    code, _, err = cli("check", path, "-m", mapping)
    assert code == 2
    assert error_lines(err) == [
        f"media-import: error: {path}: cannot tell the format from the file name",
        "  hint: name it .csv, .tsv, .parquet or .jsonl (optionally .gz), or set input.format in the mapping",
    ]


def test_csv_row_with_wrong_field_count_is_an_invalid_record(tmp_path: Path, mapping: Path, cli: Cli) -> None:
    path = csv_file(tmp_path / "p.csv", "sid,cid,ts", f"a,1,{T0}", f"b,2,{T0},extra", f"c,3,{T0}")
    results = tmp_path / "r.csv"
    code, out, _ = cli("check", path, "-m", mapping, "--results", results, "--preview", "5")
    assert code == 1
    assert [json.loads(line)["sessionId"] for line in out.splitlines()[:2]] == ["a", "c"]
    records = read_results(results).to_pylist()
    assert [(r["source_file"], r["status"], r["value"], r["error"]) for r in records] == [
        (str(path), "invalid", f"b,2,{T0},extra", "line 3: expected 3 fields, found 4"),
    ]


def test_csv_bad_row_record_and_later_rows_keep_their_row_numbers(tmp_path: Path, mapping: Path, cli: Cli) -> None:
    path = csv_file(tmp_path / "p.csv", "sid,cid,ts", f"a,1,{T0}", f"b,2,{T0},extra", f"c,x,{T0}")
    results = tmp_path / "r.csv"
    code, _, _ = cli("check", path, "-m", mapping, "--results", results)
    assert code == 1
    records = read_results(results).to_pylist()
    assert sorted((r["row_number"], r["field"] or "") for r in records) == [(2, ""), (3, "contactId")]


def _jsonl(n: int, broken: dict[int, str]) -> str:
    lines = [json.dumps({"sid": f"s{i}", "cid": i, "ts": T0}) for i in range(1, n + 1)]
    for number, text in broken.items():
        lines[number - 1] = text
    return "\n".join(lines) + "\n"


def test_broken_json_lines_are_invalid_records(tmp_path: Path, mapping: Path, cli: Cli) -> None:
    path = write_text(tmp_path / "p.jsonl", _jsonl(150, {120: '{"sid": "x", "cid":', 130: "[1, 2]"}))
    results = tmp_path / "r.csv"
    code, out, _ = cli("check", path, "-m", mapping, "--results", results, "--json")
    assert code == 1
    report = json.loads(out)
    assert report["events"] == {"STARTED": 148}
    assert report["invalid"] == 2
    records = read_results(results).to_pylist()
    assert [(r["row_number"], r["status"], r["value"], r["error"]) for r in records] == [
        (120, "invalid", '{"sid": "x", "cid":', "line 120: not valid JSON (Expecting value)"),
        (130, "invalid", "[1, 2]", "line 130: not a JSON object"),
    ]


def test_broken_json_line_near_the_top_is_an_invalid_record(tmp_path: Path, mapping: Path, cli: Cli) -> None:
    path = write_text(tmp_path / "p.jsonl", _jsonl(5, {2: '{"sid": "x", "cid":'}))
    results = tmp_path / "r.csv"
    code, _, _ = cli("check", path, "-m", mapping, "--results", results)
    assert code == 1
    records = read_results(results).to_pylist()
    assert [(r["row_number"], r["error"]) for r in records] == [(2, "line 2: not valid JSON (Expecting value)")]


def test_jsonl_with_no_objects(tmp_path: Path, mapping: Path, cli: Cli) -> None:
    path = write_text(tmp_path / "p.jsonl", "[1, 2]\n")
    code, _, err = cli("check", path, "-m", mapping)
    assert code == 2
    assert error_lines(err) == [f"media-import: error: {path}: line 1: expected a JSON object per line"]


@pytest.mark.parametrize("kind", ["truncated gzip", "missing column"])
def test_subprocess_prints_no_traceback(tmp_path: Path, mapping: Path, kind: str) -> None:
    if kind == "truncated gzip":
        path = tmp_path / "cut.csv.gz"
        path.write_bytes(gzip.compress(GOOD.encode())[:-12])
        expected = f"media-import: error: {path}: not a readable gzip file"
    else:
        path = csv_file(tmp_path / "p.csv", "sid,ts", f"a,{T0}")
        expected = f"media-import: error: {path}: missing column(s) cid used by the mapping"
    proc = subprocess.run(
        [sys.executable, "-m", "importer", "check", str(path), "-m", str(mapping)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith(expected)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stdout == ""
