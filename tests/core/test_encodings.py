"""Encodings and delimiters a newcomer meets: Excel's UTF-16, Windows-1252, semicolon CSVs."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from support import Cli

from importer.errors import InputError
from importer.source.readers import InputOptions, guess_delimiter, iter_batches, read_columns, resolve_inputs

from .helpers import T0, mapping_doc, write_mapping
from .test_readers import read_all

TEXT = "sid,name\ncafé,Crème – brûlée\nb,plain\n"
ROWS = [{"_row": 1, "sid": "café", "name": "Crème – brûlée"}, {"_row": 2, "sid": "b", "name": "plain"}]


@pytest.mark.parametrize(
    ("bom", "codec"),
    [
        (codecs.BOM_UTF16_LE, "utf-16-le"),  # Excel's "Unicode text"
        (codecs.BOM_UTF16_BE, "utf-16-be"),
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
    ],
)
def test_a_utf16_or_utf32_bom_is_read_without_declaring_it(tmp_path: Path, bom: bytes, codec: str) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(bom + TEXT.encode(codec))
    (source,) = resolve_inputs([str(path)])
    assert read_columns(source, InputOptions()) == ["sid", "name"]
    assert read_all(path, ["sid", "name"]) == ROWS


def test_excel_unicode_text_tab_separated_utf16(tmp_path: Path) -> None:
    path = tmp_path / "export.tsv"
    path.write_bytes(TEXT.replace(",", "\t").replace("\n", "\r\n").encode("utf-16"))  # BOM + LE, CRLF
    assert read_all(path, ["sid", "name"]) == ROWS


@pytest.mark.parametrize("codec", ["utf-16", "utf-32"])
def test_json_lines_with_a_bom_are_read(tmp_path: Path, codec: str) -> None:
    path = tmp_path / "p.jsonl"
    path.write_bytes('{"sid": "café"}\n\n{"sid": "–"}\n'.encode(codec))
    assert read_all(path, ["sid"]) == [{"_row": 1, "sid": "café"}, {"_row": 3, "sid": "–"}]


def test_utf16_without_a_bom_is_named(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(TEXT.encode("utf-16-le"))
    (source,) = resolve_inputs([str(path)])
    with pytest.raises(InputError) as info:
        read_columns(source, InputOptions())
    assert info.value.hint == "this looks like UTF-16 text without a byte order mark: set input.encoding: utf-16-le"
    assert read_all(path, ["sid", "name"], InputOptions(encoding="utf-16-le")) == ROWS


def test_windows_1252_in_the_first_lines_gives_line_row_and_windows_1252(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(TEXT.encode("windows-1252"))
    (source,) = resolve_inputs([str(path)])
    with pytest.raises(InputError) as info:
        read_columns(source, InputOptions())
    assert str(info.value) == f"{path}: line 2 (data row 1): 0xe9 is not valid utf-8"
    assert info.value.hint is not None
    assert "windows-1252" in info.value.hint
    assert "latin-1" not in info.value.hint


def test_windows_1252_far_into_the_file_gives_its_line_and_row(tmp_path: Path) -> None:
    lines = ["sid,name", *(f"s{i},name {i}" for i in range(1, 20_001))]
    lines[15_000] = "s15000,a – dash"
    path = tmp_path / "p.csv"
    path.write_bytes("\n".join(lines).encode("windows-1252") + b"\n")
    with pytest.raises(InputError) as info:
        read_all(path, ["sid", "name"])
    assert str(info.value) == f"{path}: line 15001 (data row 15000): 0x96 is not valid utf-8"
    assert "windows-1252" in (info.value.hint or "")


def test_windows_1252_declared_reads_the_dash_as_a_dash(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(TEXT.encode("windows-1252"))
    rows = read_all(path, ["sid", "name"], InputOptions(encoding="windows-1252"))
    assert rows == ROWS
    assert "\u0096" not in rows[0]["name"]  # what latin-1 would have made of the dash


@pytest.mark.parametrize(
    ("header", "expected"),
    [("sid;cid;ts", ";"), ("sid|cid|ts", "|"), ("sid\tcid\tts", "\t"), ("sid", None), ("sid;cid|ts;x", ";")],
)
def test_guess_delimiter(header: str, expected: str | None) -> None:
    assert guess_delimiter([header]) == expected


def test_guess_delimiter_only_for_a_one_column_header() -> None:
    assert guess_delimiter(["sid;x", "cid"]) is None


@pytest.mark.parametrize(
    ("delimiter", "name", "written"),
    [(";", "semicolon", ";"), ("|", "pipe", "|"), ("\t", "tab", "\\t")],
)
def test_a_one_column_header_names_the_likely_delimiter(
    tmp_path: Path, cli: Cli, delimiter: str, name: str, written: str
) -> None:
    mapping = write_mapping(tmp_path / "m.yaml", mapping_doc())
    path = tmp_path / "plays.csv"
    path.write_text(delimiter.join(["sid", "cid", "ts"]) + "\n" + delimiter.join(["a", "1", T0]) + "\n")
    code, _, err = cli("check", path, "-m", mapping)
    assert code == 2
    assert f'the file looks {name}-separated; set input.delimiter: "{written}" in the mapping' in err
    fixed = write_mapping(tmp_path / "fixed.yaml", mapping_doc(input={"delimiter": delimiter}))
    assert cli("check", path, "-m", fixed).code == 0


def test_a_utf8_bom_wins_over_a_declared_windows_1252(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(TEXT.encode("utf-8-sig"))
    assert read_all(path, ["sid", "name"], InputOptions(encoding="windows-1252")) == ROWS


def test_utf16_json_lines_declared_without_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_bytes('{"sid": "café"}\n{"sid": "b"}\n'.encode("utf-16-le"))
    rows = read_all(path, ["sid"], InputOptions(encoding="utf-16-le"))
    assert rows == [{"_row": 1, "sid": "café"}, {"_row": 2, "sid": "b"}]


def test_windows_1252_far_into_json_lines_is_a_row_problem_with_the_fix(tmp_path: Path) -> None:
    lines = [f'{{"sid": "s{i}"}}' for i in range(1, 6_001)]
    lines[5_000] = '{"sid": "a – dash"}'
    path = tmp_path / "p.jsonl"
    path.write_bytes("\n".join(lines).encode("windows-1252") + b"\n")
    (source,) = resolve_inputs([str(path)])
    bad = [b for batch in iter_batches(source, InputOptions(), ["sid"]) for b in batch.bad_rows]
    assert [(b.line, b.row) for b in bad] == [(5_001, 5_001)]
    assert bad[0].reason == "0x96 is not valid utf-8 (for a file saved on Windows, set input.encoding: windows-1252)"
