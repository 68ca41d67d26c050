"""Readers: formats, input resolution, column selection, row numbers, encodings and CSV options."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from importer.errors import InputError
from importer.mapping.coerce import as_text
from importer.source import readers
from importer.source.readers import InputOptions, iter_batches, read_columns, resolve_inputs

from .helpers import csv_file, write_rows, write_text

ROWS = [
    {"sid": "s1", "cid": "101", "ts": "2025-01-01T00:00:00Z", "note": "first"},
    {"sid": "s2", "cid": "102", "ts": "2025-01-02T00:00:00Z", "note": "second, with comma"},
    {"sid": "s3", "cid": "103", "ts": "2025-01-03T00:00:00Z", "note": 'quote " inside'},
]


def read_all(path: Path | str, columns: list[str] | None, options: InputOptions | None = None) -> list[dict[str, Any]]:
    """Every row as {column: text, "_row": number}, over all batches."""
    (source,) = resolve_inputs([str(path)], (options or InputOptions()).format)
    out = []
    for batch in iter_batches(source, options or InputOptions(), columns):
        cols = {c: as_text(batch.data.column(c)).to_pylist() for c in batch.data.column_names}
        for i, number in enumerate(batch.row_numbers.to_pylist()):
            out.append({"_row": number, **{c: v[i] for c, v in cols.items()}})
    return out


@pytest.mark.parametrize(
    ("name", "fmt", "compressed"),
    [
        ("plays.csv", "csv", False),
        ("plays.tsv", "tsv", False),
        ("plays.csv.gz", "csv", True),
        ("plays.parquet", "parquet", False),
        ("plays.jsonl", "jsonl", False),
        ("plays.ndjson", "jsonl", False),
        ("plays.jsonl.gz", "jsonl", True),
    ],
)
def test_every_format_reads_the_same_rows(tmp_path: Path, name: str, fmt: str, compressed: bool) -> None:
    path = write_rows(tmp_path / name, ROWS)
    (source,) = resolve_inputs([str(path)])
    assert (source.format, source.compressed, source.path) == (fmt, compressed, str(path))
    assert read_columns(source, InputOptions()) == ["sid", "cid", "ts", "note"]
    rows = read_all(path, ["sid", "note"])
    assert rows == [
        {"_row": 1, "sid": "s1", "note": "first"},
        {"_row": 2, "sid": "s2", "note": "second, with comma"},
        {"_row": 3, "sid": "s3", "note": 'quote " inside'},
    ]


@pytest.mark.parametrize("name", ["plays.csv", "plays.tsv", "plays.csv.gz", "plays.parquet", "plays.jsonl"])
def test_only_requested_columns_are_read(tmp_path: Path, name: str) -> None:
    path = write_rows(tmp_path / name, ROWS)
    (source,) = resolve_inputs([str(path)])
    (batch,) = list(iter_batches(source, InputOptions(), ["ts", "cid"]))
    assert sorted(batch.data.column_names) == ["cid", "ts"]
    assert batch.num_rows == 3


def test_format_override_reads_an_unusual_extension(tmp_path: Path) -> None:
    path = write_text(tmp_path / "export.txt", "sid,cid\na,1\n")
    with pytest.raises(InputError, match=r"export\.txt: cannot tell the format from the file name"):
        resolve_inputs([str(path)])
    (source,) = resolve_inputs([str(path)], "csv")
    assert read_all(path, ["sid"], InputOptions(format="csv")) == [{"_row": 1, "sid": "a"}]
    assert source.format == "csv"


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "logs"
    write_rows(root / "b.csv", ROWS)
    write_rows(root / "a.csv", ROWS)
    write_rows(root / "2025" / "06" / "c.parquet", ROWS)
    write_rows(root / "2025" / "d.jsonl.gz", ROWS)
    write_text(root / "notes.txt", "not an input")
    write_text(root / ".hidden.csv", "sid\nx\n")
    return root


def test_folders_are_read_recursively_in_sorted_order(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    paths = [s.path for s in resolve_inputs([str(root)])]
    assert paths == [
        str(root / "2025" / "06" / "c.parquet"),
        str(root / "2025" / "d.jsonl.gz"),
        str(root / "a.csv"),
        str(root / "b.csv"),
    ]


def test_globs_are_sorted_and_recursive(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    assert [s.path for s in resolve_inputs([str(root / "*.csv")])] == [str(root / "a.csv"), str(root / "b.csv")]
    assert [s.path for s in resolve_inputs([str(root / "**" / "*.parquet")])] == [
        str(root / "2025" / "06" / "c.parquet")
    ]


def test_inputs_are_deduplicated_keeping_the_first_position(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    specs = [str(root / "b.csv"), str(root), str(root / "*.csv"), f"{root}/./a.csv"]
    paths = [s.path for s in resolve_inputs(specs)]
    assert paths == [
        str(root / "b.csv"),
        str(root / "2025" / "06" / "c.parquet"),
        str(root / "2025" / "d.jsonl.gz"),
        str(root / "a.csv"),
    ]


def _numbered_rows(n: int) -> list[dict[str, Any]]:
    return [{"sid": f"s{i}", "cid": str(i)} for i in range(1, n + 1)]


@pytest.mark.parametrize("name", ["plays.csv", "plays.csv.gz", "plays.parquet", "plays.jsonl", "plays.jsonl.gz"])
def test_row_numbers_are_continuous_across_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    # Small blocks and chunks so that every format yields several batches.
    monkeypatch.setattr(readers, "_CSV_BLOCK_BYTES", 64)
    monkeypatch.setattr(readers, "_JSON_CHUNK_BYTES", 100)
    path = write_rows(tmp_path / name, _numbered_rows(50))
    (source,) = resolve_inputs([str(path)])
    options = InputOptions(batch_rows=7)
    batches = list(iter_batches(source, options, ["sid"]))
    assert len(batches) > 3
    numbers = [n for b in batches for n in b.row_numbers.to_pylist()]
    sids = [s for b in batches for s in b.data.column("sid").to_pylist()]
    assert numbers == list(range(1, 51))
    assert sids == [f"s{i}" for i in range(1, 51)]
    # Stable: a second read numbers the rows the same way.
    again = [n for b in iter_batches(source, options, ["sid"]) for n in b.row_numbers.to_pylist()]
    assert again == numbers


def test_jsonl_row_numbers_are_line_numbers_with_blank_lines(tmp_path: Path) -> None:
    path = write_text(tmp_path / "p.jsonl", '{"sid": "a"}\n\n{"sid": "b"}\n   \n{"sid": "c"}\n')
    assert read_all(path, ["sid"]) == [
        {"_row": 1, "sid": "a"},
        {"_row": 3, "sid": "b"},
        {"_row": 5, "sid": "c"},
    ]


def test_csv_quoted_newlines_keep_data_row_numbers(tmp_path: Path) -> None:
    path = csv_file(tmp_path / "p.csv", "sid,note", 'a,"two\nlines"', "b,plain")
    assert read_all(path, ["sid", "note"]) == [
        {"_row": 1, "sid": "a", "note": "two\nlines"},
        {"_row": 2, "sid": "b", "note": "plain"},
    ]


@pytest.mark.parametrize(
    ("encoding", "data_encoding"),
    [("latin-1", "latin-1"), ("utf-8-sig", "utf-8-sig"), ("utf-8", "utf-8-sig"), ("utf-8", "utf-8")],
)
def test_csv_encodings(tmp_path: Path, encoding: str, data_encoding: str) -> None:
    path = write_text(tmp_path / "p.csv", "sid,name\ncafé,Crème brûlée\n", data_encoding)
    options = InputOptions(encoding=encoding)
    (source,) = resolve_inputs([str(path)])
    assert read_columns(source, options) == ["sid", "name"]
    assert read_all(path, ["sid", "name"], options) == [{"_row": 1, "sid": "café", "name": "Crème brûlée"}]


@pytest.mark.parametrize("encoding", ["latin-1", "utf-8-sig"])
def test_jsonl_encodings(tmp_path: Path, encoding: str) -> None:
    path = write_text(tmp_path / "p.jsonl", '{"sid": "café"}\n{"sid": "Ünï"}\n', encoding)
    assert read_all(path, ["sid"], InputOptions(encoding=encoding)) == [
        {"_row": 1, "sid": "café"},
        {"_row": 2, "sid": "Ünï"},
    ]


def test_latin1_bytes_read_as_utf8_name_the_file_and_byte(tmp_path: Path) -> None:
    path = write_text(tmp_path / "p.csv", "sid,name\ncafé,x\n", "latin-1")
    (source,) = resolve_inputs([str(path)])
    with pytest.raises(InputError) as info:
        read_columns(source, InputOptions())
    assert str(info.value) == f"{path}: line 2 (data row 1): 0xe9 is not valid utf-8"
    assert info.value.hint == (
        "a file saved by Excel or another Windows program is usually windows-1252: "
        "set input.encoding: windows-1252 in the mapping"
    )


def test_delimiter_and_quote_options(tmp_path: Path) -> None:
    path = write_text(tmp_path / "p.csv", "sid;note\n'a;b';'it''s'\nc;plain\n")
    options = InputOptions(delimiter=";", quote_char="'")
    assert read_all(path, ["sid", "note"], options) == [
        {"_row": 1, "sid": "a;b", "note": "it's"},
        {"_row": 2, "sid": "c", "note": "plain"},
    ]


def test_escape_char_option(tmp_path: Path) -> None:
    path = write_text(tmp_path / "p.csv", 'sid,note\na,"say \\"hi\\""\n')
    options = InputOptions(escape_char="\\")
    assert read_all(path, ["note"], options) == [{"_row": 1, "note": 'say "hi"'}]


def test_tsv_splits_on_tabs_only(tmp_path: Path) -> None:
    path = write_text(tmp_path / "p.tsv", "sid\tnote\na\tone, two\n")
    assert read_all(path, ["sid", "note"]) == [{"_row": 1, "sid": "a", "note": "one, two"}]


def test_csv_values_are_text_and_empty_is_not_null_until_mapped(tmp_path: Path) -> None:
    path = csv_file(tmp_path / "p.csv", "sid,cid", "a,00123", "b,")
    (source,) = resolve_inputs([str(path)])
    (batch,) = list(iter_batches(source, InputOptions(), ["cid"]))
    # Read as text: leading zeros survive; the mapping decides what empty means.
    assert batch.data.column("cid").type == pa.string()
    assert batch.data.column("cid").to_pylist() == ["00123", ""]


def test_jsonl_missing_key_in_a_chunk_is_a_null_column(tmp_path: Path) -> None:
    path = write_text(tmp_path / "p.jsonl", '{"sid": "a"}\n{"sid": "b"}\n')
    (source,) = resolve_inputs([str(path)])
    (batch,) = list(iter_batches(source, InputOptions(), ["sid", "cid"]))
    assert batch.data.column_names == ["sid", "cid"]
    assert batch.data.column("cid").to_pylist() == [None, None]


def test_csv_bad_rows_become_bad_row_records(tmp_path: Path) -> None:
    path = csv_file(tmp_path / "p.csv", "sid,cid", "a,1", "b,2,extra", "c,3")
    (source,) = resolve_inputs([str(path)])
    batches = list(iter_batches(source, InputOptions(), ["sid"]))
    bad = [b for batch in batches for b in batch.bad_rows]
    assert [(b.line, b.reason, b.raw) for b in bad] == [(3, "expected 2 fields, found 3", "b,2,extra")]
    assert [s for b in batches for s in b.data.column("sid").to_pylist()] == ["a", "c"]


def test_csv_row_numbers_after_a_bad_row_keep_their_place(tmp_path: Path) -> None:
    path = csv_file(tmp_path / "p.csv", "sid,cid", "a,1", "b,2,extra", "c,3")
    rows = read_all(path, ["sid"])
    assert rows == [{"_row": 1, "sid": "a"}, {"_row": 3, "sid": "c"}]


def test_header_names_with_spaces_are_read(tmp_path: Path) -> None:
    path = csv_file(tmp_path / "p.csv", "sid, cid ", "a,1")
    assert read_all(path, ["sid", "cid"]) == [{"_row": 1, "sid": "a", "cid": "1"}]


def test_empty_folder_and_not_regular_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    write_text(empty / "readme.txt", "no inputs here")
    with pytest.raises(InputError) as info:
        resolve_inputs([str(empty)])
    assert str(info.value) == f"{empty}: the folder holds no .csv, .tsv, .parquet or .jsonl files"
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "pipe.csv"
        os.mkfifo(fifo)
        with pytest.raises(InputError, match=r"pipe\.csv: not a regular file$"):
            resolve_inputs([str(fifo)])


@pytest.mark.parametrize("gap", ["", ",,"])
def test_a_blank_first_data_line_is_not_header_only(tmp_path: Path, gap: str) -> None:
    path = csv_file(tmp_path / "p.csv", "sid,cid,ts", gap, "a,1,x")
    (source,) = resolve_inputs([str(path)])
    assert read_columns(source, InputOptions()) == ["sid", "cid", "ts"]


def test_utf16_with_the_encoding_declared(tmp_path: Path) -> None:
    path = write_text(tmp_path / "p.tsv", "sid\tname\ncafé\tCrème\n", "utf-16")
    options = InputOptions(encoding="utf-16")
    assert read_all(path, ["sid", "name"], options) == [{"_row": 1, "sid": "café", "name": "Crème"}]
