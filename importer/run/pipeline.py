"""The pipeline: read → map → validate → dedupe → encode, batch by batch.

This is the only module that knows every stage. ``Pipeline.batches`` yields
``PreparedBatch``es: the valid events with their JSON payloads, ready to send,
and the invalid ones as results records. ``check`` runs it without sending.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from importer.errors import EmptyInput
from importer.mapping.arrays import bools
from importer.mapping.encode import encode_payloads
from importer.mapping.keyset import KeySet
from importer.mapping.media import MediaResolver
from importer.mapping.plan import MappedBatch, Plan, PreparedBatch
from importer.mapping.report import Report
from importer.mapping.spec import Mapping
from importer.mapping.validate import ERROR_COLUMNS, validate_events
from importer.run.progress import NullProgress, Progress
from importer.source.readers import BadRow, SourceFile, iter_batches, read_columns, resolve_inputs
from importer.state.identity import KEY_COLUMN, dedupe_keys
from importer.state.results import ResultsWriter, results_table

log = logging.getLogger("media_import")


def _prefer_jemalloc() -> None:
    """Arrow's jemalloc pool returns freed batch memory to the system; the default pool keeps
    more of it, which shows as 50-60 MB of extra peak RSS on a long stream of batches."""
    with contextlib.suppress(NotImplementedError, pa.ArrowException):  # a pyarrow built without jemalloc
        pa.set_memory_pool(pa.jemalloc_memory_pool())


_prefer_jemalloc()


class Pipeline:
    """Wires the stages for one mapping over a list of inputs."""

    def __init__(self, mapping: Mapping, inputs: Sequence[str], progress: Progress | None = None) -> None:
        self.mapping = mapping
        # A lookup file in an input folder (contacts.csv beside the exports) is not an input.
        lookup_files = {os.path.realpath(t.path) for t in mapping.lookups.values() if t.path}
        self.sources = [
            s for s in resolve_inputs(inputs, mapping.input.format) if os.path.realpath(s.path) not in lookup_files
        ]
        self.plan = Plan(mapping)
        self.progress = progress or NullProgress()
        self._dedupe = KeySet(filter_bits=25) if mapping.dedupe else None
        self.media: MediaResolver | None = None  # set once the media are known (importer.run.media)
        self.empty_files: list[str] = []  # inputs with a header and no rows

    def preflight(self) -> None:
        """Check every input's header against the mapping before any row is read.

        A file with a header and no rows is 0 rows: left out of the reading, with a warning.
        """
        kept = []
        for source in self.sources:
            try:
                columns = read_columns(source, self.mapping.input)
            except EmptyInput as exc:
                log.warning("%s: read as 0 rows", exc.message)
                self.empty_files.append(source.path)
                continue
            self.plan.check_columns(source, columns)
            kept.append(source)
        self.sources = kept

    def batches(self) -> Iterator[PreparedBatch]:
        self.preflight()
        self.progress.start("reading", unit="rows")
        try:
            for source in self.sources:
                self.progress.describe(source.name)
                for batch in iter_batches(source, self.mapping.input, self.plan.columns):
                    prepared = self.prepare(self.plan.apply(batch))
                    self.progress.update(batch.num_rows)
                    yield prepared
        finally:
            self.progress.close()

    def prepare(self, mapped: MappedBatch) -> PreparedBatch:
        events = validate_events(mapped.events)
        if self.media is not None:
            events = self.media.apply(events)
        mapped.events = events.slice(0, 0)  # the batch's events live on in ``events`` only
        bad = bools(pc.is_valid(events.column("_error")))
        invalid = pa.concat_tables(
            [
                _invalid_records(mapped.source, events.filter(pa.array(bad))),
                _bad_row_records(mapped.source, mapped.bad_rows),
            ]
        )
        keep = ~bad
        duplicates = 0
        kept_keys: np.ndarray | None = None
        if self._dedupe is not None and keep.any():
            rows = np.flatnonzero(keep)
            at = pa.array(rows)
            keys = dedupe_keys([pc.take(events.column(k), at).combine_chunks() for k in self.mapping.identity or ()])
            first = self._dedupe.add_new(keys)
            duplicates = int(len(first) - first.sum())
            keep[rows[~first]] = False
            kept_keys = keys[first]
        # One copy of the events that go on: valid, first of their key, without the error columns.
        valid = events.drop_columns(list(ERROR_COLUMNS)).filter(pa.array(keep))
        del events
        if kept_keys is not None:  # the journal key's first half: admission does not hash it again
            valid = valid.append_column(KEY_COLUMN, pa.array(kept_keys, pa.uint64()))
        valid = valid.append_column("payload", encode_payloads(valid))
        return PreparedBatch(mapped.source, mapped.rows, valid, invalid, mapped.skipped, duplicates)


def _invalid_records(source: SourceFile, events: pa.Table) -> pa.Table:
    return results_table(
        source_file=source.path,
        row_number=events.column("_row"),
        state=events.column("state"),
        status=pa.repeat(pa.scalar("invalid"), events.num_rows),
        field=events.column("_field"),
        value=events.column("_value"),
        error=events.column("_error"),
        attempts=pa.array(np.zeros(events.num_rows, dtype=np.int32)),
        payload=encode_payloads(events),
    )


def _bad_row_records(source: SourceFile, bad_rows: list[BadRow]) -> pa.Table:
    n = len(bad_rows)
    return results_table(
        source_file=source.path,
        row_number=pa.array([b.row for b in bad_rows], pa.int64()),
        status=pa.repeat(pa.scalar("invalid"), n),
        field=pa.nulls(n, pa.string()),
        value=pa.array([b.raw for b in bad_rows], pa.string()),
        error=pa.array([f"line {b.line}: {b.reason}" if b.line else b.reason for b in bad_rows], pa.string()),
        attempts=pa.array(np.zeros(n, dtype=np.int32)),
    )


def check(
    pipeline: Pipeline,
    *,
    results: ResultsWriter | None = None,
    preview: int = 0,
    also: Callable[[PreparedBatch], None] | None = None,
) -> Report:
    """Run every stage but sending; write invalid records; return the report (``also`` sees every batch)."""
    report = Report()
    previews: list[str] = []
    for prepared in pipeline.batches():
        report.add_batch(prepared)
        if also is not None:
            also(prepared)
        if results is not None:
            results.write(prepared.invalid)
        if len(previews) < preview and prepared.events.num_rows:
            take = preview - len(previews)
            previews.extend(prepared.events.column("payload").slice(0, take).to_pylist())
    report.previews = previews
    return report
