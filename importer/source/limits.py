"""What real files do to readers, and how each case becomes a clear message or a bad row.

- Long lines: a header of 20,000 columns, a 1 MB column name, a 5 MB JSON line or CSV value
  are read whole (up to ``MAX_LINE_BYTES``); pyarrow's block size grows to fit them.
- Deep JSON: a line nested deeper than ``MAX_JSON_DEPTH`` is a bad row; deeper nesting crashes
  pyarrow's JSON parser and exhausts Python's recursion, so such lines never reach either.
- Parquet binary columns: BYTE_ARRAY columns without the UTF-8 annotation are text when their
  bytes are UTF-8; a row whose bytes are not is a bad row.
- Undecodable CSV rows: pyarrow decodes a rejected row's text for the row handler, and an
  undecodable one ends up as a printed "Exception ignored" plus a parse error; the error is
  collected instead of printed, and the reader names the line.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

import numpy as np
import pyarrow as pa

MAX_LINE_BYTES = 64 << 20
MAX_JSON_DEPTH = 100
_NEWLINE = re.compile(rb"[\r\n]")
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_OPENERS = np.zeros(256, dtype=np.int8)
_OPENERS[[ord("["), ord("{")]] = 1
_CLOSERS = np.zeros(256, dtype=np.int8)
_CLOSERS[[ord("]"), ord("}")]] = 1


class LineTooLong(Exception):
    """A line (or a CSV record) longer than ``MAX_LINE_BYTES``; ``line`` is its 1-based number."""

    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


def megabytes(n: int) -> str:
    return f"{n / (1 << 20):g} MB"


# ---- the head of a text file ----------------------------------------------------------------------


def read_head(fh: IO[bytes], minimum: int) -> bytes:
    """At least ``minimum`` bytes, and more until a complete line follows the first one (or EOF).

    A header of 20,000 columns or a JSON line of 5 MB is longer than any fixed sniff; reading on
    until a line that holds something ends lets the header be read whole and data be seen after it.
    """
    data = fh.read(minimum)
    while len(data) <= MAX_LINE_BYTES and not _has_two_lines(data):
        more = fh.read(max(len(data), minimum))
        if not more:
            return data
        data += more
    if not _has_two_lines(data):
        raise LineTooLong(1)
    return data


def _has_two_lines(data: bytes) -> bool:
    first = _NEWLINE.search(data)
    if first is None:
        return False
    rest = data[first.end() :]
    # A complete line with content: a non-space byte, then a line end.
    content = re.search(rb"\S", rest)
    return content is not None and _NEWLINE.search(rest, content.end()) is not None


# ---- JSON Lines -------------------------------------------------------------------------------------


def line_chunks(fh: IO[bytes], chunk_bytes: int) -> Iterator[list[bytes]]:
    """Whole lines (without their ``\\n``) in chunks of about ``chunk_bytes``; ``LineTooLong`` past the limit.

    Unlike ``readlines``, a file that is one endless line is refused instead of loaded whole.
    """
    tail = b""
    line_no = 0
    while True:
        block = fh.read(chunk_bytes)
        if not block:
            if tail:
                yield [tail]
            return
        data = tail + block if tail else block
        cut = data.rfind(b"\n")
        if cut < 0:
            tail = data
            if len(tail) > MAX_LINE_BYTES:
                raise LineTooLong(line_no + 1)
            continue
        lines = data[:cut].split(b"\n")
        tail = data[cut + 1 :]
        line_no += len(lines)
        yield lines


def too_deep(lines: list[bytes]) -> list[int]:
    """Indexes of the lines nested deeper than ``MAX_JSON_DEPTH``.

    Only lines with more than that many opening brackets can be; those are measured exactly,
    with their strings taken out, by a running count over their bytes.
    """
    lengths = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
    body = np.frombuffer(b"".join(lines), dtype=np.uint8)
    openers = _OPENERS[body]
    if int(np.count_nonzero(openers)) <= MAX_JSON_DEPTH:
        return []
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    filled = lengths > 0
    counts = np.zeros(len(lines), dtype=np.int64)
    counts[filled] = np.add.reduceat(openers, starts[filled], dtype=np.int64)
    deep = []
    for i in np.flatnonzero(counts > MAX_JSON_DEPTH):
        bare = np.frombuffer(_JSON_STRING.sub(b'""', lines[i]), dtype=np.uint8)
        steps = _OPENERS[bare].astype(np.int32) - _CLOSERS[bare]
        if len(steps) and int(np.cumsum(steps).max()) > MAX_JSON_DEPTH:
            deep.append(int(i))
    return deep


def has_lone_surrogate(line: bytes, obj: Any) -> bool:
    """Whether a parsed line holds an escaped half of a UTF-16 pair (``"\\ud800"``), which is no text.

    Python's parser accepts it, Arrow's does not; only lines that spell ``\\ud`` are looked at.
    """
    if b"\\ud" not in line.lower():
        return False
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def json_block_bytes(lines: list[bytes]) -> int:
    """A pyarrow JSON block size that holds the longest line (its default, 1 MB, does not hold 5 MB)."""
    longest = max(map(len, lines), default=0)
    return max(1 << 20, 1 << int(longest + 1).bit_length())


# ---- CSV ----------------------------------------------------------------------------------------------


def csv_block_bytes(header: list[str], minimum: int) -> int:
    """A pyarrow CSV block size that holds the header line twice over."""
    size = sum(len(name.encode()) + 3 for name in header)
    return max(minimum, 1 << int(2 * size).bit_length())


def is_record_too_long(exc: BaseException) -> bool:
    """pyarrow's error for a record (row) longer than its read block."""
    return "straddling object" in str(exc)


@contextmanager
def row_decode_errors() -> Iterator[list[BaseException]]:
    """Collect the decode errors pyarrow meets turning a rejected CSV row into text.

    pyarrow reports them through ``sys.unraisablehook`` (printed as "Exception ignored …") and
    then fails the read; the collected error lets the caller name the cause instead. The hook is
    set only around one read step, so nothing else in the process is affected.
    """
    caught: list[BaseException] = []
    previous: Callable[[Any], Any] = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, UnicodeDecodeError):
            caught.append(unraisable.exc_value)
        else:
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield caught
    finally:
        sys.unraisablehook = previous


def unclosed_quote(text: str, quote: str | None) -> int:
    """How many lines a row took in because a quote in it is never closed (0: it is not that)."""
    if not quote or text.count(quote) % 2 == 0:
        return 0
    return text.count("\n")


# ---- Parquet ------------------------------------------------------------------------------------------


def _text_type(t: pa.DataType) -> pa.DataType:
    """``t`` with every binary type in it made a string type."""
    if pa.types.is_binary(t) or pa.types.is_fixed_size_binary(t):
        return pa.string()
    if pa.types.is_large_binary(t):
        return pa.large_string()
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(_text_type(f.type)) for f in t])
    if pa.types.is_list(t):
        return pa.list_(t.value_field.with_type(_text_type(t.value_type)))
    if pa.types.is_large_list(t):
        return pa.large_list(t.value_field.with_type(_text_type(t.value_type)))
    return t


def binary_as_text(table: pa.Table) -> tuple[pa.Table, np.ndarray, list[tuple[int, str, str]]]:
    """Binary columns as text: the table, a keep-mask, and (index, reason, raw) for each dropped row.

    Parquet writers often store text as plain BYTE_ARRAY (no UTF-8 annotation); its bytes are
    checked by Arrow's cast. Only when a cast fails are the rows looked at one by one, to find the
    ones that are not text.
    """
    keep = np.ones(table.num_rows, dtype=bool)
    bad: list[tuple[int, str, str]] = []
    target = pa.schema([f.with_type(_text_type(f.type)) for f in table.schema])
    if target == table.schema:
        return table, keep, bad
    for i, field in enumerate(table.schema):
        if target.field(i).type == field.type:
            continue
        try:
            table.column(i).cast(target.field(i).type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            for row, value in enumerate(table.column(i).to_pylist()):
                if keep[row] and _has_undecodable(value):
                    keep[row] = False
                    raw = repr(value)[:500]
                    bad.append((row, f"column '{field.name}' holds bytes that are not UTF-8 text", raw))
    if not keep.all():
        table = table.filter(pa.array(keep))
    try:
        return table.cast(target), keep, bad
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # a type the cast does not reach (maps): as it is
        return table, keep, bad


def _has_undecodable(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, bytes):
            try:
                item.decode("utf-8")
            except UnicodeDecodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False
