"""The progress total without a second read of the inputs: Parquet row counts from the metadata,
text rows from each file's size at the bytes per row of its first MiB."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from importer.errors import InputError
from importer.source.readers import SourceFile, open_binary, parquet_file

SAMPLE_BYTES = 1 << 20


def estimate_rows(sources: Sequence[SourceFile]) -> int:
    """About how many data rows the inputs hold (exact for Parquet and for text files under 1 MiB)."""
    total = 0
    for source in sources:
        try:
            total += _rows(source)
        except (OSError, EOFError, pa.ArrowException, InputError):
            continue  # the run itself reports an unreadable file
    return total


def _rows(source: SourceFile) -> int:
    if source.format == "parquet":
        return int(parquet_file(source).metadata.num_rows)
    header = 0 if source.format == "jsonl" else 1
    with open_binary(source) as fh:
        sample = fh.read(SAMPLE_BYTES)
        whole = len(sample) < SAMPLE_BYTES or not fh.read(1)
        raw = getattr(fh, "fileobj", None)  # gzip: how many compressed bytes the sample took
        consumed = raw.tell() if raw is not None and hasattr(raw, "tell") else len(sample)
    lines = sample.count(b"\n") + (0 if sample.endswith(b"\n") or not sample else 1)
    if whole:
        return max(0, lines - header)
    per_byte = lines / max(1, consumed)
    return max(0, int(per_byte * (source.size or 0)) - header)
