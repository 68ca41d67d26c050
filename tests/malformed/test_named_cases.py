"""The malformed inputs and mappings a fault sweep found, each with the exact message a user sees.

Inputs that are valid but unusual (a 20,014-column header, a 1 MB column name, a 5 MB JSON line or
CSV value) are read; broken ones are refused or become bad rows with their real reason.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from .conftest import Invoke
from .corpus import HEADER, INPUT_MAPPING, T0, csv_bytes, good_csv, jsonl_bytes, rows

pytestmark = pytest.mark.timeout(60)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def mapping(tmp_path: Path) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(INPUT_MAPPING), encoding="utf-8")
    return path


def check(cli: Invoke, data: Path, mapping: Path, tmp_path: Path) -> tuple[int, str, list[dict[str, str]]]:
    """Exit code, stderr and the invalid records of ``check --results``."""
    results = tmp_path / "invalid.csv"
    code, _, err = cli("check", data, "-m", mapping, "--results", results)
    assert "Traceback" not in err and "internal error" not in err and "Exception ignored" not in err, err
    records = list(csv.DictReader(results.open(encoding="utf-8"))) if results.exists() else []
    return code, err, records


def summary(cli: Invoke, data: Path, mapping: Path) -> dict[str, object]:
    code, out, err = cli("check", data, "-m", mapping, "--json")
    assert code in (0, 1), err
    report: dict[str, object] = json.loads(out)
    return report


# ---- inputs ---------------------------------------------------------------------------------------------


def test_unterminated_quote_in_the_middle_is_one_bad_row(tmp_path: Path, mapping: Path, cli: Invoke) -> None:
    lines = good_csv(100).decode().splitlines(keepends=True)
    lines[50] = f's50,"50,{T0}\n'  # data row 50: its quote swallows the 50 lines after it
    data = tmp_path / "quote.csv"
    data.write_text("".join(lines), encoding="utf-8")
    code, _, records = check(cli, data, mapping, tmp_path)
    assert code == 1
    (record,) = records
    assert record["row_number"] == "50"
    assert record["error"].endswith(
        "expected 3 fields, found 2: a quote opened in this row is never closed, so it took in the 50 lines after it"
    )


def test_unterminated_quote_in_a_file_larger_than_the_read_block(tmp_path: Path, mapping: Path, cli: Invoke) -> None:
    lines = good_csv(100_000).decode().splitlines(keepends=True)
    lines[30_000] = f's30000,"30000,{T0}\n'  # the row it makes is longer than the 1 MB first read block
    data = tmp_path / "quote.csv"
    data.write_text("".join(lines), encoding="utf-8")
    assert data.stat().st_size > 3 << 20
    code, _, records = check(cli, data, mapping, tmp_path)
    assert code == 1
    assert [r["row_number"] for r in records] == ["30000"]
    assert "never closed, so it took in the 70000 lines after it" in records[0]["error"]


def test_parquet_binary_columns_are_text_and_bytes_that_are_not_are_bad_rows(
    tmp_path: Path, mapping: Path, cli: Invoke
) -> None:
    data = tmp_path / "binary.parquet"
    sids = pa.array([b"s1", b"s\xff", b"s3"], pa.binary())
    pq.write_table(pa.table({"sid": sids, "cid": ["1", "2", "3"], "ts": [T0] * 3}), data)
    code, _, records = check(cli, data, mapping, tmp_path)
    assert code == 1
    assert [(r["row_number"], r["error"]) for r in records] == [
        ("2", "column 'sid' holds bytes that are not UTF-8 text")
    ]
    assert summary(cli, data, mapping)["events"] == {"STARTED": 2}


def test_parquet_uint64_max_is_an_invalid_id(tmp_path: Path, mapping: Path, cli: Invoke) -> None:
    data = tmp_path / "uint64.parquet"
    cids = pa.array([1, 2**64 - 1], pa.uint64())
    pq.write_table(pa.table({"sid": ["a", "b"], "cid": cids, "ts": [T0, T0]}), data)
    code, _, records = check(cli, data, mapping, tmp_path)
    assert code == 1
    assert [(r["row_number"], r["value"]) for r in records] == [("2", "18446744073709551615")]


def test_parquet_duplicate_column_names(tmp_path: Path, mapping: Path, cli: Invoke) -> None:
    data = tmp_path / "dupes.parquet"
    table = pa.table([pa.array(["a"]), pa.array(["1"]), pa.array([T0]), pa.array(["x"])], names=[*HEADER, "sid"])
    pq.write_table(table, data)
    code, err, _ = check(cli, data, mapping, tmp_path)
    assert code == 2
    assert err.splitlines() == [
        f"media-import: error: {data}: duplicate column name(s) in the Parquet schema: sid",
        "  hint: rewrite the file with unique column names",
    ]


def test_json_lines_nested_10000_deep_is_a_bad_row(tmp_path: Path, mapping: Path, cli: Invoke) -> None:
    deep = b'{"sid": "s2", "cid": "2", "ts": "' + T0.encode() + b'", "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}\n"
    data = tmp_path / "deep.jsonl"
    data.write_bytes(jsonl_bytes([{"sid": "s1", "cid": "1", "ts": T0}]) + deep + deep)
    code, _, records = check(cli, data, mapping, tmp_path)
    assert code == 1
    assert [(r["row_number"], r["error"]) for r in records] == [
        ("2", "line 2: nested deeper than 100 levels"),
        ("3", "line 3: nested deeper than 100 levels"),
    ]


def test_invalid_utf8_in_a_rejected_row_is_one_message_in_a_real_process(tmp_path: Path, mapping: Path) -> None:
    # pyarrow decodes a rejected row for the row handler; the failure used to be printed as
    # "Exception ignored ... UnicodeDecodeError" by the interpreter itself, so a real process is needed.
    body = good_csv(4000)
    data = tmp_path / "ragged.csv"
    data.write_bytes(body + b"x,\xff\n" + body[11:])
    done = subprocess.run(
        [sys.executable, "-m", "importer", "check", str(data), "-m", str(mapping)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"media-import: error: {data}: line 4002 (data row 4001): 0xff is not valid utf-8",
        "  hint: a file saved by Excel or another Windows program is usually windows-1252: "
        "set input.encoding: windows-1252 in the mapping",
    ]


def test_invalid_utf8_past_the_first_block_names_the_line(tmp_path: Path, mapping: Path, cli: Invoke) -> None:
    data = tmp_path / "late.csv"
    data.write_bytes(good_csv(4000) + b"s\xff,1," + T0.encode() + b"\n")
    code, err, _ = check(cli, data, mapping, tmp_path)
    assert code == 2
    assert err.splitlines() == [
        f"media-import: error: {data}: line 4002 (data row 4001): 0xff is not valid utf-8",
        "  hint: a file saved by Excel or another Windows program is usually windows-1252: "
        "set input.encoding: windows-1252 in the mapping",
    ]


def test_a_header_of_20014_columns_is_read(tmp_path: Path, mapping: Path, cli: Invoke) -> None:
    names = [*HEADER, *(f"c{i}" for i in range(20_011))]
    data = tmp_path / "wide.csv"
    data.write_bytes(csv_bytes(names, [[*r, *(["v"] * 20_011)] for r in rows(3)]))
    assert summary(cli, data, mapping)["events"] == {"STARTED": 3}


def test_a_1mb_column_name_is_read(tmp_path: Path, mapping: Path, cli: Invoke) -> None:
    data = tmp_path / "long-name.csv"
    data.write_bytes(csv_bytes(["x" * (1 << 20), *HEADER], [["v", *r] for r in rows(3)]))
    assert summary(cli, data, mapping)["events"] == {"STARTED": 3}


def test_a_5mb_json_line_is_read(tmp_path: Path, mapping: Path, cli: Invoke) -> None:
    data = tmp_path / "long-line.jsonl"
    objects = [{"sid": f"s{i}", "cid": str(i), "ts": T0, "blob": "y" * (5 << 20)} for i in (1, 2)]
    data.write_bytes(jsonl_bytes(objects))
    assert summary(cli, data, mapping)["events"] == {"STARTED": 2}


def test_5mb_csv_values_are_read(tmp_path: Path, mapping: Path, cli: Invoke) -> None:
    data = tmp_path / "long-values.csv"
    data.write_bytes(csv_bytes(["blob", *HEADER], [["z" * (5 << 20), *r] for r in rows(3)]))
    preview_mapping = tmp_path / "blob.yaml"
    doc = {**INPUT_MAPPING, "fields": {**INPUT_MAPPING["fields"], "mediaName": "blob"}}
    preview_mapping.write_text(yaml.safe_dump(doc), encoding="utf-8")
    code, out, err = cli("check", data, "-m", preview_mapping, "--preview", "3")
    assert code in (0, 1), err
    names = [json.loads(line)["mediaName"] for line in out.splitlines() if line.startswith("{")]
    assert [len(n) for n in names] == [5 << 20] * 3


# ---- mappings -------------------------------------------------------------------------------------------


def problems(cli: Invoke, tmp_path: Path, text: bytes) -> list[str]:
    path = tmp_path / "bad.yaml"
    path.write_bytes(text)
    data = tmp_path / "plays.csv"
    data.write_bytes(good_csv())
    code, out, err = cli("check", data, "-m", path)
    assert code == 2 and out == "", err
    lines = err.splitlines()
    assert lines[0].startswith(f"media-import: error: {path}: "), err
    return [line.removeprefix("  - ") for line in lines[1:]]


def test_a_mapping_that_is_not_utf8(tmp_path: Path, cli: Invoke) -> None:
    text = yaml.safe_dump(INPUT_MAPPING).encode().replace(b"ext-1", b"ext-\xe9")
    line = text[: text.index(b"\xe9")].count(b"\n") + 1
    column = text.index(b"\xe9") - text.rfind(b"\n", 0, text.index(b"\xe9"))
    assert problems(cli, tmp_path, text) == [
        f"line {line}, column {column}: the file is not UTF-8 text (byte 0xe9)",
        "  hint: save the mapping as UTF-8 (most editors: 'Save with encoding')",
    ]


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [("(a)\\1", "invalid escape sequence: \\1"), ("(?=a)b", "invalid perl operator: (?=")],
)
def test_regexes_python_accepts_and_re2_does_not(tmp_path: Path, cli: Invoke, pattern: str, reason: str) -> None:
    doc = {**INPUT_MAPPING, "skip": [{"column": "sid", "matches": pattern}]}
    assert problems(cli, tmp_path, yaml.safe_dump(doc).encode()) == [
        f"skip[0].matches: not a pattern Arrow's RE2 engine runs ({reason}): it has no backreferences (\\1) "
        "and no lookarounds ((?=...), (?!...))"
    ]


def test_yaml_nested_10000_deep(tmp_path: Path, cli: Invoke) -> None:
    found = problems(cli, tmp_path, b"fields: " + b"[" * 10_000 + b"]" * 10_000 + b"\n")
    assert len(found) == 1
    assert found[0].endswith("not valid YAML (nested deeper than 64 levels)")


def test_a_billion_laughs_is_refused_before_it_is_expanded(tmp_path: Path, cli: Invoke) -> None:
    lines = ['lol0: &lol0 "lol"'] + [
        f"lol{i}: &lol{i} [" + ", ".join([f"*lol{i - 1}"] * 10) + "]" for i in range(1, 10)
    ]
    assert problems(cli, tmp_path, "\n".join(lines).encode()) == [
        "aliases (*name) expand the document by more than 100,000 values",
        "  hint: write the values out, or nest fewer aliases in one another",
    ]


def test_a_long_value_after_batches_were_yielded_reads_every_row_once(
    tmp_path: Path, mapping: Path, cli: Invoke
) -> None:
    # 40,000 rows (two batches of 16,384 are handed on), a 5 MB value, 10 more rows: the reader
    # reads on with a larger block and neither repeats nor drops a row, good or rejected.
    body = [[*r, ""] for r in rows(40_000)]
    body[9] = ["s10", "10"]  # rejected: two fields
    body.append(["s40001", "40001", T0, "z" * (5 << 20)])
    body += [[*r, ""] for r in rows(10, start=40_002)]
    data = tmp_path / "late-long-value.csv"
    data.write_bytes(csv_bytes([*HEADER, "blob"], body))
    code, _, records = check(cli, data, mapping, tmp_path)
    assert code == 1
    assert [(r["row_number"], r["error"]) for r in records] == [("10", "line 11: expected 4 fields, found 2")]
    report = summary(cli, data, mapping)
    assert (report["rows"], report["events"], report["duplicates"]) == (40_010, {"STARTED": 40_010}, 0)
