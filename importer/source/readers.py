"""Readers: files, globs and folders of CSV / TSV / Parquet / JSON Lines → Arrow record batches.

Every input is streamed: CSV through pyarrow's streaming reader, Parquet through
``ParquetFile.iter_batches``, JSON Lines in chunks of lines parsed by pyarrow.
Only the columns a mapping uses are materialised, and memory does not grow
with file size.

Each batch carries its rows' identity: the source file and the 1-based data
row number, stable across runs. Results, the journal and error messages use
them. Rows the parser itself rejects (a CSV line with the wrong number of
fields, a JSON line that is not an object) come back as ``BadRow`` records,
never as exceptions; a file that cannot be read at all raises ``InputError``.
"""

from __future__ import annotations

import codecs
import csv
import glob
import gzip
import io
import json
import os
import zlib
from collections import Counter
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from importer.errors import EmptyInput, InputError
from importer.source import limits
from importer.source.storage import is_remote, open_random, open_stream, resolve_remote

FORMATS = ("csv", "tsv", "parquet", "jsonl")
_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
DEFAULT_BATCH_ROWS = 16_384
_CSV_BLOCK_BYTES = 1 << 20
_JSON_CHUNK_BYTES = 8 << 20
_SNIFF_BYTES = 64 << 10


@dataclass(frozen=True)
class InputOptions:
    """How to read inputs; the mapping's ``input:`` section."""

    format: str | None = None
    delimiter: str | None = None
    encoding: str = "utf-8"
    quote_char: str | None = '"'
    escape_char: str | None = None
    batch_rows: int = DEFAULT_BATCH_ROWS


@dataclass(frozen=True)
class SourceFile:
    """One input file, resolved; ``fs`` and ``fs_path`` are set for object storage."""

    path: str
    format: str
    compressed: bool
    size: int
    mtime_ns: int
    fs: Any = field(default=None, compare=False, repr=False)
    fs_path: str = ""

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


@dataclass(frozen=True)
class BadRow:
    """A row the parser rejected; ``line`` is the physical line and ``row`` the data row, where known."""

    line: int | None
    reason: str
    raw: str
    row: int | None = None


@dataclass
class Batch:
    """A slice of one source: the wanted columns and each row's 1-based number."""

    source: SourceFile
    data: pa.Table
    row_numbers: pa.Int64Array
    bad_rows: list[BadRow] = field(default_factory=list)

    @property
    def num_rows(self) -> int:
        return len(self.row_numbers)


def detect_format(path: str, override: str | None = None) -> tuple[str, bool]:
    """Return ``(format, compressed)`` from the file name, or the mapping's override."""
    lower = path.lower()
    compressed = lower.endswith(".gz")
    if compressed:
        lower = lower[:-3]
    if override:
        return override, compressed
    fmt = _SUFFIXES.get(os.path.splitext(lower)[1])
    if fmt is None:
        raise InputError(
            f"{path}: cannot tell the format from the file name",
            hint="name it .csv, .tsv, .parquet or .jsonl (optionally .gz), or set input.format in the mapping",
        )
    return fmt, compressed


def resolve_inputs(specs: Sequence[str], format_override: str | None = None) -> list[SourceFile]:
    """Expand files, globs and folders (recursively) into a sorted, de-duplicated file list."""
    found: dict[str, None] = {}
    remote: list[SourceFile] = []
    for spec in specs:
        paths: list[str]
        if is_remote(spec):
            for uri, fs, fs_path, size, mtime_ns in resolve_remote(spec):
                if _readable_name(uri, format_override):
                    fmt, compressed = detect_format(uri, format_override)
                    remote.append(SourceFile(uri, fmt, compressed, size, mtime_ns, fs, fs_path))
            continue
        if os.path.isdir(spec):
            paths = sorted(
                str(p)
                for p in Path(spec).rglob("*")
                if p.is_file() and not p.name.startswith(".") and _readable_name(p.name, format_override)
            )
            if not paths:
                raise InputError(f"{spec}: the folder holds no .csv, .tsv, .parquet or .jsonl files")
        elif glob.has_magic(spec):
            paths = sorted(p for p in glob.glob(spec, recursive=True) if os.path.isfile(p))
            if not paths:
                raise InputError(f"{spec}: the pattern matches no file")
        elif os.path.isfile(spec):
            paths = [spec]
        elif os.path.exists(spec):
            raise InputError(f"{spec}: not a regular file")
        else:
            raise InputError(f"{spec}: no such file or folder")
        for p in paths:
            found.setdefault(os.path.normpath(p), None)
    sources = []
    for p in found:
        fmt, compressed = detect_format(p, format_override)
        st = os.stat(p)
        sources.append(SourceFile(p, fmt, compressed, st.st_size, st.st_mtime_ns))
    for r in remote:
        if r.path not in found:
            found[r.path] = None
            sources.append(r)
    return sources


def _readable_name(name: str, override: str | None) -> bool:
    lower = name.lower().removesuffix(".gz")
    return override is not None or os.path.splitext(lower)[1] in _SUFFIXES


def open_binary(source: SourceFile) -> IO[bytes]:
    """The (decompressed) bytes of any source, local or remote, as a stream."""
    try:
        if source.fs is not None:
            stream = open_stream(source)
            return gzip.GzipFile(fileobj=stream, mode="rb") if source.compressed else stream  # type: ignore[return-value]
        if source.compressed:
            return gzip.GzipFile(source.path, "rb")  # type: ignore[return-value]
        return open(source.path, "rb")
    except OSError as exc:
        raise InputError(f"{source.path}: cannot open ({exc.strerror or exc})") from None
    except pa.ArrowException as exc:
        raise InputError(f"{source.path}: cannot open ({_short(exc)})") from None


def _sniff(source: SourceFile) -> bytes:
    """The first bytes of the (decompressed) content; errors name the file."""
    with open_binary(source) as fh:
        try:
            return limits.read_head(fh, _SNIFF_BYTES)
        except limits.LineTooLong:
            raise _line_too_long(source, 1) from None
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(
                f"{source.path}: not a readable gzip file ({exc})",
                hint="the file may be truncated or not gzip at all",
            ) from None


def _decode(source: SourceFile, data: bytes, encoding: str) -> str:
    encoding = text_encoding(data, encoding)
    if b"\x00" in data and not _is_wide(encoding):
        raise InputError(
            f"{source.path}: binary content, not {source.format.upper()} text",
            hint=_binary_hint(data),
        )
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        # A cut multi-byte character at the end of the sniffed block is not an error.
        if exc.start >= len(data) - 4 and exc.reason == "unexpected end of data":
            return data[: exc.start].decode(encoding)
        line = 1 + data[: exc.start].count(b"\n")
        raise _undecodable(source, encoding, line, data[exc.start : exc.end]) from None


# Encodings. Byte order marks say what a file is, whatever the mapping's default: Excel's "Unicode
# text" is UTF-16 with a BOM. UTF-32's marks come first, as UTF-16 LE's is a prefix of UTF-32 LE's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
    (codecs.BOM_UTF8, "utf-8-sig"),
)


def text_encoding(head: bytes, declared: str) -> str:
    """The encoding to read a text file in: a UTF-16 or UTF-32 byte order mark wins over ``declared``.

    ``utf-16`` and ``utf-32`` read the mark and the byte order from the data.
    """
    for bom, name in _BOMS:
        if head.startswith(bom):
            return declared if declared.lower().replace("_", "-").startswith(name) else name
    return declared


def _is_wide(encoding: str) -> bool:
    return encoding.lower().replace("_", "-").startswith(("utf-16", "utf-32", "utf16", "utf32"))


def _encoding_of(source: SourceFile, options: InputOptions) -> str:
    with open_binary(source) as fh:
        head = fh.read(4)
    return text_encoding(head, options.encoding)


def _binary_hint(data: bytes) -> str:
    """UTF-16 text without a BOM has a zero in every other byte of its ASCII characters."""
    sample = data[:4096]
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if len(sample) >= 8 and max(even, odd) > len(sample) // 4 and min(even, odd) == 0:
        order = "le" if odd > even else "be"
        return f"this looks like UTF-16 text without a byte order mark: set input.encoding: utf-16-{order}"
    return "check the file and its extension; Parquet files must end in .parquet"


def _undecodable(source: SourceFile, encoding: str, line: int, raw: bytes) -> InputError:
    """A decode error: where it is (line and data row) and the encoding Excel files usually need."""
    row = line if source.format == "jsonl" else line - 1  # a CSV's line 1 is its header
    where = f"line {line}" if row < 1 else f"line {line} (data row {row})"
    shown = " ".join(f"0x{b:02x}" for b in raw[:4]) or "a byte"
    if encoding.lower().replace("_", "-") in ("windows-1252", "cp1252"):
        hint = "set input.encoding in the mapping to the encoding the file was written in"
    else:
        hint = (
            "a file saved by Excel or another Windows program is usually windows-1252: "
            "set input.encoding: windows-1252 in the mapping"
        )
    return InputError(f"{source.path}: {where}: {shown} is not valid {encoding}", hint=hint)


def _undecodable_reason(exc: UnicodeDecodeError) -> str:
    """A line of JSON Lines that does not decode: the bytes, and the encoding Excel files need."""
    shown = " ".join(f"0x{b:02x}" for b in exc.object[exc.start : exc.end][:4])
    return f"{shown} is not valid {exc.encoding} (for a file saved on Windows, set input.encoding: windows-1252)"


def _find_undecodable(source: SourceFile, encoding: str) -> InputError | None:
    """Scan the file for its first byte that does not decode (only after a reader said there is one)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line = 1
    try:
        with open_binary(source) as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    seen = exc.object[: exc.start]
                    return _undecodable(
                        source, encoding, line + bytes(seen).count(b"\n"), exc.object[exc.start : exc.end]
                    )
                line += chunk.count(b"\n")
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        return _undecodable(source, encoding, line, exc.object[exc.start : exc.end])
    except (OSError, EOFError, zlib.error, LookupError):
        return None
    return None


class _Utf8Lines:
    """A binary stream in another encoding, read as lines of UTF-8 (JSON Lines in UTF-16 or UTF-32)."""

    def __init__(self, raw: IO[bytes], encoding: str) -> None:
        self._text = io.TextIOWrapper(raw, encoding=encoding, newline="")

    def readlines(self, hint: int) -> list[bytes]:
        return [line.encode("utf-8") for line in self._text.readlines(hint)]


# Delimiters: a header read as one column whose name holds one of these was split on the wrong one.
_DELIMITER_NAMES = {";": "semicolon", "|": "pipe", "\t": "tab", ",": "comma"}


def guess_delimiter(header: Sequence[str]) -> str | None:
    """The delimiter a one-column header was most likely written with, or None."""
    if len(header) != 1:
        return None
    counts = {d: header[0].count(d) for d in _DELIMITER_NAMES}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else None


def delimiter_hint(header: Sequence[str]) -> str:
    """A hint naming the likely delimiter of a one-column header (empty when it holds none)."""
    found = guess_delimiter(header)
    if found is None:
        return ""
    shown = "\\t" if found == "\t" else found
    return (
        f"The header is one column that holds {_DELIMITER_NAMES[found]}s: the file looks {_DELIMITER_NAMES[found]}-"
        f'separated; set input.delimiter: "{shown}" in the mapping.'
    )


def _delimiter(source: SourceFile, options: InputOptions) -> str:
    if options.delimiter:
        return options.delimiter
    return "\t" if source.format == "tsv" else ","


def read_columns(source: SourceFile, options: InputOptions) -> list[str]:
    """The column names of a source (for JSON Lines: the keys of its first objects).

    Raises ``InputError`` for empty, binary, header-only or corrupt files and
    for missing or duplicate column names.
    """
    if source.format == "parquet":
        return _parquet_columns(source)
    head = _sniff(source)
    text = _decode(source, head, options.encoding).lstrip("\ufeff")
    if not text.strip():
        raise InputError(f"{source.path}: the file is empty")
    if source.format == "jsonl":
        return _json_columns(source, text)
    return _csv_header(source, text, options)


def _csv_header(source: SourceFile, text: str, options: InputOptions) -> list[str]:
    delimiter = _delimiter(source, options)
    # A header may hold a 1 MB column name; the csv module's default field limit is 128 KB.
    csv.field_size_limit(max(csv.field_size_limit(), limits.MAX_LINE_BYTES))
    reader = csv.reader(
        io.StringIO(text, newline=""),  # the csv module reads \r, \n and \r\n line ends itself
        delimiter=delimiter,
        quotechar=options.quote_char or '"',
        quoting=csv.QUOTE_MINIMAL if options.quote_char else csv.QUOTE_NONE,
        escapechar=options.escape_char,
    )
    try:
        header = next(reader)
        # Blank lines or rows of empty cells may come first; any row with a value is data.
        has_data = any(any(cell.strip() for cell in row) for row in reader)
    except csv.Error as exc:
        if "header" not in locals():
            raise InputError(f"{source.path}: line 1: cannot parse the header ({exc})") from None
        has_data = True  # the sniffed block may end inside a quoted value
    names = [h.strip() for h in header]
    if not has_data:
        raise EmptyInput(
            f"{source.path}: has a header but no data rows",
            hint="remove the file from the inputs, or check the export",
        )
    blank = [i + 1 for i, n in enumerate(names) if not n]
    if blank:
        raise InputError(
            f"{source.path}: line 1: column {blank[0]} of the header has no name",
            hint="every column needs a name in the first line",
        )
    dupes = sorted(n for n, k in Counter(names).items() if k > 1)
    if dupes:
        raise InputError(
            f"{source.path}: line 1: duplicate column name(s): {', '.join(dupes)}",
            hint="rename the columns so that each name is unique",
        )
    return names


def _json_columns(source: SourceFile, text: str) -> list[str]:
    # A broken line here is left to the row-level path (a results record); only a file
    # whose first lines hold no JSON object at all is unreadable.
    keys: dict[str, None] = {}
    first_problem = ""
    for number, line in enumerate(text.splitlines()[:100], start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            first_problem = first_problem or f"line {number}: not valid JSON ({exc.msg})"
            continue
        except RecursionError:
            first_problem = first_problem or f"line {number}: nested deeper than {limits.MAX_JSON_DEPTH} levels"
            continue
        if not isinstance(obj, dict):
            first_problem = first_problem or f"line {number}: expected a JSON object per line"
            continue
        keys.update(dict.fromkeys(obj))
    if not keys:
        raise InputError(f"{source.path}: {first_problem or 'no JSON object in the first lines'}")
    return list(keys)


def _parquet_columns(source: SourceFile) -> list[str]:
    try:
        names = list(parquet_file(source).schema_arrow.names)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{source.path}: not a readable Parquet file ({_short(exc)})") from None
    dupes = sorted(n for n, k in Counter(names).items() if k > 1)
    if dupes:
        raise InputError(
            f"{source.path}: duplicate column name(s) in the Parquet schema: {', '.join(dupes)}",
            hint="rewrite the file with unique column names",
        )
    return names


def _line_too_long(source: SourceFile, line: int) -> InputError:
    return InputError(
        f"{source.path}: line {line} is longer than {limits.megabytes(limits.MAX_LINE_BYTES)}",
        hint="check the file's format and line endings; a longer line is not read",
    )


def parquet_file(source: SourceFile) -> pq.ParquetFile:
    if source.compressed:
        raise InputError(f"{source.path}: gzip around Parquet is not supported", hint="unzip it first")
    try:
        target: Any = source.path
        if source.fs is not None:
            target = open_random(source)
            magic = target.read(4)
            target.seek(0)
        else:
            with open(source.path, "rb") as fh:
                magic = fh.read(4)
        if source.size == 0:
            raise InputError(f"{source.path}: the file is empty")
        if magic != b"PAR1":
            raise InputError(f"{source.path}: not a Parquet file (no PAR1 magic bytes)")
        # Buffered column reads: memory follows the batch, not the row group.
        return pq.ParquetFile(target, buffer_size=1 << 20, pre_buffer=False)
    except OSError as exc:
        raise InputError(f"{source.path}: cannot open ({exc.strerror or exc})") from None
    except pa.ArrowException as exc:
        raise InputError(f"{source.path}: not a readable Parquet file ({_short(exc)})") from None


def _short(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__


def count_rows(sources: Sequence[SourceFile]) -> int:
    """Rows in every source, cheaply (for progress estimates): Parquet metadata, or newlines in text."""
    total = 0
    for source in sources:
        try:
            if source.format == "parquet":
                total += parquet_file(source).metadata.num_rows
                continue
            with open_binary(source) as fh:
                lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 22), b""))
            total += max(0, lines - (0 if source.format == "jsonl" else 1))
        except (OSError, EOFError, pa.ArrowException, InputError):
            continue
    return total


def iter_batches(source: SourceFile, options: InputOptions, columns: Sequence[str] | None = None) -> Iterator[Batch]:
    """Stream a source as batches holding only ``columns`` (top-level names; all when None)."""
    if source.format == "parquet":
        yield from _parquet_batches(source, options, columns)
    elif source.format == "jsonl":
        yield from _json_batches(source, options, columns)
    else:
        yield from _csv_batches(source, options, columns)


def _numbered(first: int, n: int) -> pa.Int64Array:
    return pa.array(np.arange(first, first + n, dtype=np.int64))


def _number_around(first: int, n: int, bad: list[BadRow]) -> tuple[pa.Int64Array, int]:
    """Row numbers for ``n`` parsed rows from ``first`` on, leaving the rejected rows their places.

    Returns the numbers and the first number of the next batch.
    """
    slots = np.array(sorted({b.row for b in bad if b.row is not None and b.row >= first}), dtype=np.int64)
    seq = np.arange(first, first + n + len(slots), dtype=np.int64)
    good = seq[~np.isin(seq, slots)][:n]
    last = max(int(good[-1]) if n else first - 1, int(slots[-1]) if len(slots) else first - 1)
    return pa.array(good, pa.int64()), last + 1


def _parquet_batches(source: SourceFile, options: InputOptions, columns: Sequence[str] | None) -> Iterator[Batch]:
    pf = parquet_file(source)
    row = 1
    try:
        wanted = list(columns) if columns else None
        for rb in pf.iter_batches(batch_size=options.batch_rows, columns=wanted, use_threads=False):
            yield _parquet_batch(source, pa.Table.from_batches([rb]), row)
            row += rb.num_rows
    except pa.ArrowException as exc:
        raise InputError(f"{source.path}: row {row}: cannot read Parquet data ({_short(exc)})") from None


def _parquet_batch(source: SourceFile, table: pa.Table, first: int) -> Batch:
    """One Parquet batch, binary columns read as text (rows whose bytes are not text are bad rows)."""
    table, keep, dropped = limits.binary_as_text(table)
    numbers = np.arange(first, first + len(keep), dtype=np.int64)[keep]
    bad = [BadRow(None, reason, raw, row=first + i) for i, reason, raw in dropped]
    return Batch(source, table, pa.array(numbers, pa.int64()), bad)


@dataclass
class _Resumed:
    """What earlier passes over a CSV file yielded, so that a pass with a larger block goes on from there."""

    rows: int = 0  # parsed rows yielded
    bad: int = 0  # rejected rows yielded
    next_row: int = 1  # the number of the next row


def _csv_batches(source: SourceFile, options: InputOptions, columns: Sequence[str] | None) -> Iterator[Batch]:
    header = read_columns(source, options)
    encoding = _encoding_of(source, options)
    block = limits.csv_block_bytes(header, _CSV_BLOCK_BYTES)
    done = _Resumed()
    while True:
        stopped_after = yield from _csv_pass(source, options, encoding, columns, header, block, done)
        if stopped_after is None:
            return
        # A row longer than the read block (a 5 MB value): read on with a larger block,
        # skipping what was yielded. Rare, so the first block stays small.
        if block >= limits.MAX_LINE_BYTES:
            where = f"after data row {stopped_after}: " if stopped_after else ""
            quote = options.quote_char
            raise InputError(
                f"{source.path}: {where}a row is longer than {limits.megabytes(limits.MAX_LINE_BYTES)}",
                hint=f"most likely a quote ({quote}) there is never closed; if values are not quoted, "
                "set input.quote_char: null in the mapping"
                if quote
                else "check the file's line endings",
            )
        block = min(block * 8, limits.MAX_LINE_BYTES)


def _csv_pass(
    source: SourceFile,
    options: InputOptions,
    encoding: str,
    columns: Sequence[str] | None,
    header: list[str],
    block: int,
    done: _Resumed,
) -> Generator[Batch, None, int | None]:
    """One read of a CSV file with pyarrow; returns None at its end, or the rows read before a
    row longer than ``block`` bytes."""
    wanted = list(columns) if columns is not None else header
    bad: list[BadRow] = []
    skip_bad = done.bad

    def on_invalid(row: Any) -> str:
        nonlocal skip_bad
        if skip_bad:  # reported by an earlier pass
            skip_bad -= 1
            return "skip"
        line = row.number
        text = str(row.text)
        reason = f"expected {row.expected_columns} fields, found {row.actual_columns}"
        swallowed = limits.unclosed_quote(text, options.quote_char)
        if swallowed:
            reason += f": a quote opened in this row is never closed, so it took in the {swallowed} lines after it"
        bad.append(BadRow(line, reason, text[:500], row=line - 1 if line else None))  # the header is line 1
        return "skip"

    # The header is read here (names trimmed) and skipped by pyarrow, so " session_id" is session_id.
    read_opts = pacsv.ReadOptions(
        use_threads=False,
        block_size=block,
        encoding=encoding.replace("-sig", ""),
        column_names=header,
        skip_rows=1,
    )
    parse_opts = pacsv.ParseOptions(
        delimiter=_delimiter(source, options),
        quote_char=options.quote_char or False,
        escape_char=options.escape_char or False,
        newlines_in_values=True,
        invalid_row_handler=on_invalid,
    )
    convert_opts = pacsv.ConvertOptions(
        include_columns=wanted,
        column_types={c: pa.string() for c in wanted},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
        include_missing_columns=True,  # optional columns; required ones were checked up front
    )
    stream: Any = None
    row = done.next_row
    skip_rows = done.rows
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    decode_errors: list[BaseException] = []
    try:
        if source.fs is not None:
            stream = open_stream(source, compressed=source.compressed)
        else:
            stream = pa.input_stream(source.path, compression="gzip" if source.compressed else None)
        with limits.row_decode_errors() as decode_errors:
            reader = pacsv.open_csv(
                stream, read_options=read_opts, parse_options=parse_opts, convert_options=convert_opts
            )
        while True:
            with limits.row_decode_errors() as decode_errors:
                try:
                    rb = reader.read_next_batch()
                except StopIteration:
                    break
            if skip_rows:  # yielded by an earlier pass
                cut = min(skip_rows, rb.num_rows)
                rb, skip_rows = rb.slice(cut), skip_rows - cut
            pending.append(rb)
            pending_rows += rb.num_rows
            if pending_rows >= options.batch_rows:
                table = pa.Table.from_batches(pending)
                numbers, row = _number_around(row, table.num_rows, bad)
                batch = Batch(source, table, numbers, bad[:])
                done.rows, done.bad, done.next_row = done.rows + table.num_rows, done.bad + len(bad), row
                bad.clear()
                pending, pending_rows = [], 0
                yield batch
        if pending or bad:
            table = pa.Table.from_batches(pending, schema=reader.schema)
            numbers, row = _number_around(row, table.num_rows, bad)
            yield Batch(source, table, numbers, bad[:])
        return None
    except (pa.ArrowException, OSError, EOFError, zlib.error) as exc:
        read = row - 1 + pending_rows
        if limits.is_record_too_long(exc):
            return read
        # Text that does not decode: in a parsed value, or in a rejected row (which pyarrow decodes
        # for the row handler, and reports as unraisable: caught in decode_errors, not printed).
        if decode_errors or "invalid UTF8" in str(exc) or isinstance(exc, UnicodeDecodeError):
            located = _find_undecodable(source, encoding.replace("-sig", ""))
            if located is not None:
                raise located from None
        where = f"after data row {read}: " if read else ""
        raise InputError(f"{source.path}: {where}{_short(exc)}") from None
    finally:
        if stream is not None:
            stream.close()


def _json_batches(source: SourceFile, options: InputOptions, columns: Sequence[str] | None) -> Iterator[Batch]:
    # Lines are parsed chunk by chunk, each chunk with its own schema inference,
    # so a field that is null for a million lines and then appears is not an error.
    # A JSON Lines row number is its line number: blank and broken lines keep their place.
    line_no = 0
    file_encoding = _encoding_of(source, options)
    with open_binary(source) as raw:
        recode = _is_wide(file_encoding)  # lines are split on b"\n": UTF-16 and UTF-32 come as UTF-8
        fh: Any = _Utf8Lines(raw, file_encoding) if recode else raw
        encoding = "utf-8" if recode else options.encoding
        try:
            chunks = (
                iter(lambda: fh.readlines(_JSON_CHUNK_BYTES), [])
                if recode
                else limits.line_chunks(raw, _JSON_CHUNK_BYTES)
            )
            for lines in chunks:
                first_line = line_no + 1
                line_no += len(lines)
                table, numbers, bad = _parse_json_lines(lines, first_line, encoding)
                if columns is not None:
                    table = _select(table, columns)
                yield Batch(source, table, pa.array(numbers, type=pa.int64()), bad)
        except limits.LineTooLong as exc:
            raise _line_too_long(source, line_no + exc.line) from None
        except UnicodeDecodeError:
            problem = _find_undecodable(source, file_encoding)
            raise problem or InputError(f"{source.path}: not valid {file_encoding}") from None
        except (OSError, EOFError, zlib.error) as exc:
            where = f"after line {line_no}: " if line_no else ""
            raise InputError(f"{source.path}: {where}{_short(exc)}") from None


def _parse_json_lines(lines: list[bytes], first_line: int, encoding: str) -> tuple[pa.Table, list[int], list[BadRow]]:
    bad: list[BadRow] = []
    if encoding.lower().replace("_", "-") not in ("utf-8", "utf8", "utf-8-sig"):
        lines = _recoded(lines, first_line, encoding, bad)
    if first_line == 1 and lines and lines[0].startswith(b"\xef\xbb\xbf"):
        lines[0] = lines[0][3:]
    numbers = [first_line + i for i, ln in enumerate(lines) if ln.strip()]
    for i in limits.too_deep(lines):  # they would crash pyarrow's parser, or exhaust Python's recursion
        numbers.remove(first_line + i)
        reason = f"nested deeper than {limits.MAX_JSON_DEPTH} levels"
        bad.append(BadRow(first_line + i, reason, _raw(lines[i]), row=first_line + i))
    if not numbers:
        return pa.table({}), [], bad
    block = limits.json_block_bytes(lines)
    try:
        body = b"\n".join(lines[n - first_line].rstrip(b"\r\n") for n in numbers)
        if not body.isascii():  # pyarrow keeps bytes that are not UTF-8 in its strings: find those lines
            body.decode("utf-8")
        return _read_json_text(body, block), numbers, bad
    except (pa.ArrowInvalid, UnicodeDecodeError):
        pass
    # Slow path, only for chunks with a broken line: find the bad lines, parse the rest.
    good: list[bytes] = []
    good_numbers: list[int] = []
    for number in numbers:
        ln = lines[number - first_line]
        try:
            obj = json.loads(ln)
        except UnicodeDecodeError as exc:
            bad.append(BadRow(number, _undecodable_reason(exc), _raw(ln), row=number))
            continue
        except json.JSONDecodeError as exc:
            bad.append(BadRow(number, f"not valid JSON ({exc.msg})", _raw(ln), row=number))
            continue
        if not isinstance(obj, dict):
            bad.append(BadRow(number, "not a JSON object", _raw(ln), row=number))
            continue
        if limits.has_lone_surrogate(ln, obj):
            bad.append(BadRow(number, "not valid JSON (a \\u escape of half a UTF-16 pair)", _raw(ln), row=number))
            continue
        good.append(ln.rstrip(b"\r\n"))
        good_numbers.append(number)
    if not good:
        return pa.table({}), [], bad
    bad.sort(key=lambda b: b.line or 0)
    try:
        return _read_json_text(b"\n".join(good), block), good_numbers, bad
    except pa.ArrowInvalid:
        return _mixed_json(good), good_numbers, bad


def _recoded(lines: list[bytes], first_line: int, encoding: str, bad: list[BadRow]) -> list[bytes]:
    """Lines in another encoding as UTF-8; a line that does not decode is a bad row (and left blank)."""
    out = []
    for i, ln in enumerate(lines):
        try:
            out.append(ln.decode(encoding).encode("utf-8"))
        except UnicodeDecodeError as exc:
            number = first_line + i
            bad.append(BadRow(number, _undecodable_reason(exc), _raw(ln), row=number))
            out.append(b"")
    return out


def _read_json_text(body: bytes, block_size: int) -> pa.Table:
    """Parse JSON Lines with pyarrow, keeping text that looks like a date as text.

    pyarrow infers ISO-looking strings as zone-less timestamps (already shifted to
    UTC), which would lose the offset and the original text: such top-level fields
    are read again as strings, and the mapping's timestamp rules parse them.
    """
    read = pajson.ReadOptions(block_size=block_size)
    table = pajson.read_json(io.BytesIO(body), read_options=read)
    stamped = [f.name for f in table.schema if pa.types.is_timestamp(f.type) or pa.types.is_date(f.type)]
    if not stamped:
        return table
    schema = pa.schema([(name, pa.string()) for name in stamped])
    parse = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
    return pajson.read_json(io.BytesIO(body), read_options=read, parse_options=parse)


def _mixed_json(lines: list[bytes]) -> pa.Table:
    """The rare chunk whose fields change type between lines (a number here, text there).

    Each field is built on its own; a field that mixes types is kept as JSON text.
    """
    objects = [json.loads(g) for g in lines]
    names = list(dict.fromkeys(k for obj in objects for k in obj))
    columns = []
    for name in names:
        values = [obj.get(name) for obj in objects]
        try:
            columns.append(pa.array(values))
            continue
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
        try:  # keep the shape (lists, objects), with every scalar inside as text: "50" and 50 agree
            columns.append(pa.array([_scalars_as_text(v) for v in values]))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            text = [v if v is None or isinstance(v, str) else json.dumps(v) for v in values]
            columns.append(pa.array(text, pa.string()))
    return pa.table(columns, names=names)


def _scalars_as_text(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scalars_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scalars_as_text(v) for v in value]
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _raw(line: bytes) -> str:
    return line.decode("utf-8", "replace").rstrip("\r\n")[:500]


def _select(table: pa.Table, columns: Sequence[str]) -> pa.Table:
    """The named columns; a key absent from every line of this chunk is a null column."""
    n = table.num_rows
    arrays = [table.column(c) if c in table.column_names else pa.nulls(n) for c in columns]
    return pa.table(arrays, names=list(columns))
