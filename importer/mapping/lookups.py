"""Lookup tables: enrich rows from a CSV / Parquet / JSON Lines file by a key column.

A lookup file is a dimension table (contacts, viewers), loaded once and joined
to each batch with ``pyarrow.compute.index_in``. Keys are normalised (trim,
lower case by default) on both sides; the first row of a repeated key wins.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from importer.errors import ConfigError, InputError
from importer.mapping.coerce import as_text
from importer.source.readers import iter_batches, read_columns, resolve_inputs

if TYPE_CHECKING:
    from importer.mapping.spec import LookupTable


class LoadedLookup:
    """A lookup file in memory: normalised keys and the columns rules ``get``."""

    def __init__(self, spec: LookupTable, keys: pa.Array, columns: dict[str, pa.Array]) -> None:
        self.spec = spec
        self.keys = keys
        self.columns = columns
        self.miss_reason = f"not found in lookup '{spec.name}'"
        # Keys known to have no match (e.g. emails HubSpot said it does not know), with their own reason.
        self.known_missing: pa.Array | None = None
        self.known_missing_reason = self.miss_reason

    @classmethod
    def empty(cls, spec: LookupTable, column: str, miss_reason: str) -> LoadedLookup:
        loaded = cls(spec, pa.array([], pa.string()), {column: pa.array([], pa.string())})
        loaded.miss_reason = miss_reason
        return loaded

    def normalise(self, key: pa.Array) -> pa.Array:
        text = as_text(key)
        if "lower" in self.spec.normalize:
            text = pc.utf8_lower(text)
        return text

    def get(self, key: pa.Array, column: str) -> pa.Array:
        idx = pc.index_in(self.normalise(key), value_set=self.keys)
        return pc.take(self.columns[column], idx)

    @classmethod
    def load(cls, spec: LookupTable, wanted: set[str], optional: set[str] | None = None) -> LoadedLookup:
        """Load the file; a column in ``optional`` that the file lacks reads as empty."""
        if spec.path is None:
            raise ConfigError(
                f"lookup '{spec.name}' has no file",
                hint=f"give one with --lookup {spec.name}=PATH, or set lookups.{spec.name}.path in the mapping",
            )
        try:
            (source,) = resolve_inputs([spec.path], spec.options.format)
        except ValueError:
            raise InputError(f"lookup '{spec.name}': {spec.path} must be one file") from None
        available = read_columns(source, spec.options)
        absent = {c for c in (optional or set()) - set(available) if c != spec.key}
        wanted = wanted - absent
        for name in [spec.key, *sorted(wanted)]:
            if name not in available:
                close = difflib.get_close_matches(name, available, n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise InputError(
                    f"lookup '{spec.name}': {source.path} has no column '{name}'",
                    hint=f"{hint}available: {', '.join(available)}",
                )
        cols = [spec.key, *sorted(wanted - {spec.key})]
        tables = [b.data for b in iter_batches(source, spec.options, cols) if b.num_rows]
        if not tables:
            raise InputError(f"lookup '{spec.name}': {source.path} has no rows")
        table = pa.concat_tables(tables, promote_options="permissive").combine_chunks()
        self = cls(spec, pa.array([], pa.string()), {})
        keys = self.normalise(table.column(spec.key).combine_chunks())
        # index_in needs unique keys; keep the first row of each key.
        first = pc.is_in(pa.array(range(len(keys))), value_set=_first_positions(keys))
        present = pc.and_(first, pc.is_valid(keys))
        self.keys = pc.filter(keys, present)
        self.columns = {c: as_text(pc.filter(table.column(c).combine_chunks(), present)) for c in cols}
        for name in absent:
            self.columns[name] = pa.nulls(len(self.keys), pa.string())
        return self


def _first_positions(keys: pa.Array) -> pa.Array:
    indexed = pa.table({"k": keys, "i": pa.array(range(len(keys)), pa.int64())})
    grouped = indexed.group_by("k", use_threads=False).aggregate([("i", "min")])
    return grouped.column("i_min")
