"""The results file: every event that was not sent as asked, with its reason and payload.

Streamed as CSV (or Parquet, by extension) while the run goes on, created with
mode 0600 because it holds contact ids. CSV cells that a spreadsheet would run
as a formula (starting with = + - @) are prefixed with a quote.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from importer.errors import ConfigError, InputError

RESULT_SCHEMA = pa.schema(
    [
        pa.field("source_file", pa.string()),
        pa.field("row_number", pa.int64()),
        pa.field("state", pa.string()),
        pa.field("status", pa.string()),
        pa.field("field", pa.string()),
        pa.field("value", pa.string()),
        pa.field("error", pa.string()),
        pa.field("http_status", pa.int32()),
        pa.field("attempts", pa.int32()),
        pa.field("payload", pa.string()),
        pa.field("event_key", pa.string()),
    ]
)
STATUSES = ("invalid", "failed", "not_sent", "sent", "skipped")
_FORMULA = r"^[=+\-@\t\r]"


def results_table(**columns: Any) -> pa.Table:
    """A results table from whatever columns are given; the rest are null."""
    n = max((len(v) for v in columns.values() if not isinstance(v, str | int | type(None))), default=0)
    arrays = []
    for f in RESULT_SCHEMA:
        value = columns.get(f.name)
        if value is None:
            arrays.append(pa.nulls(n, f.type))
        elif isinstance(value, str | int):
            arrays.append(pa.array([value] * n, f.type))
        else:
            arr = value if isinstance(value, pa.Array | pa.ChunkedArray) else pa.array(value, f.type)
            arrays.append(arr.cast(f.type))
    return pa.table(arrays, schema=RESULT_SCHEMA)


def neutralise_formulas(table: pa.Table) -> pa.Table:
    """Prefix text cells that a spreadsheet would evaluate with a single quote."""
    for i, f in enumerate(table.schema):
        if pa.types.is_string(f.type) and f.name != "payload":
            col = table.column(i)
            risky = pc.fill_null(pc.match_substring_regex(col, _FORMULA), False)
            table = table.set_column(i, f.name, pc.if_else(risky, pc.binary_join_element_wise("'", col, ""), col))
    return table


class ResultsWriter:
    """Streams results tables to CSV or Parquet; ``counts`` tallies rows by status."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.counts: dict[str, int] = {}
        self._parquet = self.path.lower().endswith((".parquet", ".pq"))
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            os.fchmod(fd, 0o600)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ConfigError(
                    f"the results file {self.path} is a symbolic link: refusing to follow it",
                    hint="give the path of a regular file (its target would be overwritten)",
                ) from None
            raise ConfigError(
                f"cannot create the results file {self.path} ({exc.strerror or exc})",
                hint="check that its folder exists and is writable",
            ) from None
        self._file = os.fdopen(fd, "wb")
        self._writer: Any
        if self._parquet:
            self._writer = pq.ParquetWriter(self._file, RESULT_SCHEMA, compression="zstd")
        else:
            self._writer = pacsv.CSVWriter(self._file, RESULT_SCHEMA)

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        for status, count in zip(*_value_counts(table.column("status")), strict=True):
            self.counts[status] = self.counts.get(status, 0) + count
        if not self._parquet:
            table = neutralise_formulas(table)
        self._writer.write_table(table.cast(RESULT_SCHEMA))
        self._file.flush()

    def close(self) -> None:
        self._writer.close()
        self._file.close()

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _value_counts(col: pa.ChunkedArray | pa.Array) -> tuple[list[str], list[int]]:
    vc = pc.value_counts(col)
    return vc.field("values").to_pylist(), vc.field("counts").to_pylist()


def read_results(path: str | Path) -> pa.Table:
    """Read a results file back (CSV or Parquet) with the results schema."""
    path = str(path)
    if path.lower().endswith((".parquet", ".pq")):
        return pq.read_table(path).cast(RESULT_SCHEMA)
    opts = pacsv.ConvertOptions(column_types={f.name: f.type for f in RESULT_SCHEMA})
    table = pacsv.read_csv(path, convert_options=opts)
    missing = [name for name in ("status", "payload") if name not in table.column_names]
    if missing:
        raise InputError(
            f"{path}: not a results file (no {', '.join(missing)} column)",
            hint="give the --results file of a run or retry",
        )
    for f in RESULT_SCHEMA:  # files from older versions lack later columns
        if f.name not in table.column_names:
            table = table.append_column(f.name, pa.nulls(table.num_rows, f.type))
    return table.select(RESULT_SCHEMA.names)
