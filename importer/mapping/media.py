"""Media objects described by the mapping's ``media:`` section, gathered over every row.

One media object is described by all the rows that name it (by the event's ``externalId``): each
property takes the first non-empty value in input order, the duration the longest one. Each batch
is grouped by Arrow (no loop per row); the per-batch groups are merged into one table that is
compacted whenever the pieces waiting to merge outgrow it, so memory follows the number of
distinct media, which is capped at ``MAX_MEDIA``.

``MediaTable.problems`` names the media HubSpot would refuse (no title; no oEmbed URL for VIDEO and
AUDIO on the CRM route; no file URL for IMAGE): their events are invalid for that reason.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from importer.errors import InputError
from importer.mapping.arrays import bools
from importer.mapping.coerce import as_text, to_float
from importer.mapping.spec import (
    DURATION_UNITS,
    MEDIA_PROPERTIES,
    MEDIA_TYPES,
    Expr,
    Mapping,
    MediaSpec,
    top_columns,
    walk,
)
from importer.mapping.values import Frame, condition_mask, evaluate

MAX_MEDIA = 1_000_000
TEXT_PROPERTIES = tuple(p for p in MEDIA_PROPERTIES if p != "duration")
MEDIA_SCHEMA = pa.schema(
    [
        pa.field("externalId", pa.string()),
        pa.field("mediaType", pa.string()),
        *[pa.field(p, pa.int64() if p == "duration" else pa.string()) for p in MEDIA_PROPERTIES],
        pa.field("_source", pa.string()),
        pa.field("_row", pa.int64()),
    ]
)
_AGGREGATES = [("mediaType", "first"), *[(p, "max" if p == "duration" else "first") for p in MEDIA_PROPERTIES]]
_AGGREGATES += [("_source", "first"), ("_row", "first")]
NO_TYPE = "no row of the media has a valid mediaType"
NO_TITLE = "the media has no title (media.title)"
NO_OEMBED = "the media has no oEmbed URL (media.oembed_url), which HubSpot requires for VIDEO and AUDIO"
NO_FILE_URL = "the media has no file URL (media.file_url), which HubSpot requires for IMAGE"


def describe(mapping: Mapping, frame: Frame, source: str, row_numbers: pa.Array) -> pa.Table:
    """One batch's media, one row per distinct externalId, in MEDIA_SCHEMA."""
    spec = mapping.media
    assert spec is not None
    n = frame.n
    keep = np.ones(n, dtype=bool)
    for cond in mapping.skip:
        keep &= ~bools(condition_mask(cond, frame))
    external = as_text(evaluate(mapping.fields["externalId"], frame).values)
    keep &= bools(pc.is_valid(external))
    media_type = mapping.fields.get("mediaType")
    types = pc.utf8_upper(as_text(evaluate(media_type, frame).values)) if media_type else pa.nulls(n, pa.string())
    types = pc.if_else(pc.is_in(types, value_set=pa.array(MEDIA_TYPES)), types, pa.scalar(None, pa.string()))
    columns: dict[str, pa.Array] = {"externalId": external, "mediaType": types}
    for name in MEDIA_PROPERTIES:
        expr = spec.properties.get(name)
        if expr is None:
            columns[name] = pa.nulls(n, pa.int64() if name == "duration" else pa.string())
        elif name == "duration":
            columns[name] = _milliseconds(evaluate(expr, frame).values, spec)
        else:
            columns[name] = as_text(evaluate(expr, frame).values)
    columns["_source"] = pa.repeat(pa.scalar(source), n)
    columns["_row"] = row_numbers
    table = pa.table(columns, schema=MEDIA_SCHEMA)
    if not keep.all():
        table = table.filter(pa.array(keep))
    return _group(table)


def media_exprs(mapping: Mapping) -> list[Expr]:
    """The rule values ``describe`` evaluates: the skip conditions, externalId, mediaType, properties."""
    spec = mapping.media
    assert spec is not None
    exprs = [e for cond in mapping.skip for e in cond.exprs()]
    exprs += [mapping.fields[name] for name in ("externalId", "mediaType") if name in mapping.fields]
    return exprs + list(spec.properties.values())


def media_columns(mapping: Mapping) -> set[str]:
    """The top-level input columns the media's description reads (a read of these alone gathers them)."""
    return top_columns(media_exprs(mapping))


def uses_lookup(exprs: Iterable[Expr], names: Iterable[str]) -> bool:
    """Whether any of ``exprs`` (or a value inside one) looks up in a table named in ``names``."""
    wanted = set(names)
    return any(e.kind == "lookup" and e.lookup in wanted for e in walk(exprs))


def _milliseconds(values: pa.Array, spec: MediaSpec) -> pa.Array:
    """Durations in the mapping's unit → whole milliseconds; unreadable or negative → null."""
    numbers, _ = to_float(values)
    ms = pc.round(pc.multiply(numbers, float(DURATION_UNITS[spec.duration_unit])))
    ms = pc.if_else(pc.greater_equal(ms, 0), ms, None)
    return pc.cast(ms, pa.int64(), safe=False)


def _group(table: pa.Table) -> pa.Table:
    """First non-empty value per property, longest duration, first file:row — in input order.

    Groups are numbered by ``dictionary_encode`` (in order of first appearance) and reduced with
    numpy's ``minimum.at`` / ``maximum.at``: on 100,000 distinct media, half the peak memory of
    Arrow's hash aggregation and a third of its CPU; the media come out in input order.
    """
    keys = table.column("externalId").combine_chunks()
    encoded = pc.dictionary_encode(keys)
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    groups = len(encoded.dictionary)
    columns: dict[str, pa.Array] = {"externalId": encoded.dictionary}
    for col, how in _AGGREGATES:
        values = table.column(col).combine_chunks()
        columns[col] = _group_max(values, codes, groups) if how == "max" else _group_first(values, codes, groups)
    return pa.table(columns, schema=MEDIA_SCHEMA)


def _group_first(values: pa.Array, codes: np.ndarray, groups: int) -> pa.Array:
    """Per group, its first non-null value (null when it has none)."""
    rows = np.flatnonzero(bools(values.is_valid())) if values.null_count else np.arange(len(values))
    take = np.full(groups, len(values), dtype=np.int64)
    np.minimum.at(take, codes[rows], rows)  # the first row of each group that has a value
    return pc.take(values, pa.array(take, mask=take == len(values)))


def _group_max(values: pa.Array, codes: np.ndarray, groups: int) -> pa.Array:
    """Per group, its largest value (null when it has none)."""
    valid = bools(values.is_valid()) if values.null_count else np.ones(len(values), dtype=bool)
    numbers = np.asarray(pc.fill_null(values, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    low = np.iinfo(np.int64).min
    out = np.full(groups, low, dtype=np.int64)
    np.maximum.at(out, codes[valid], numbers[valid])
    has = np.zeros(groups, dtype=bool)
    has[codes[valid]] = True
    return pa.array(out, pa.int64(), mask=~has)


class MediaCollector:
    """Merges the per-batch media tables; the earlier batch wins a property, the longer duration wins."""

    def __init__(self, limit: int = MAX_MEDIA, compact_rows: int = 50_000) -> None:
        self.limit = limit
        self.compact_rows = compact_rows
        self._merged = MEDIA_SCHEMA.empty_table()
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

    def add(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows > max(self._merged.num_rows, self.compact_rows):
            self._compact()

    def _compact(self) -> None:
        if not self._pending:
            return
        self._merged = _group(pa.concat_tables([self._merged, *self._pending]))
        self._pending, self._pending_rows = [], 0
        if self._merged.num_rows > self.limit:
            raise InputError(
                f"the inputs name more than {self.limit:,} distinct media",
                hint="sync media in parts: run 'media-import media sync' on a few input files at a time",
            )

    def table(self) -> MediaTable:
        self._compact()
        return MediaTable(self._merged)


class MediaTable:
    """Every distinct media of the inputs, described, with the reason HubSpot would refuse it."""

    def __init__(self, table: pa.Table, api: str = "crm") -> None:
        self.table = table
        self.api = api

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def problems(self, api: str) -> pa.Array:
        """Per media: why HubSpot would refuse to create it (null when it can be created)."""
        t = self.table
        types = t.column("mediaType")
        reason = pa.nulls(t.num_rows, pa.string())
        checks = [(pc.is_null(types), NO_TYPE), (pc.is_null(t.column("title")), NO_TITLE)]
        if api == "crm":
            needs_oembed = pc.is_in(types, value_set=pa.array(["VIDEO", "AUDIO"]))
            checks.append((pc.and_(needs_oembed, pc.is_null(t.column("oembed_url"))), NO_OEMBED))
        checks.append((pc.and_(pc.equal(types, "IMAGE"), pc.is_null(t.column("file_url"))), NO_FILE_URL))
        for mask, why in reversed(checks):  # the first check's reason wins
            reason = pc.if_else(pc.fill_null(mask, False), pa.scalar(why), reason)
        return reason.combine_chunks() if isinstance(reason, pa.ChunkedArray) else reason


class MediaResolver:
    """Fills each event's ``mediaBridgeId`` from its externalId, and says which events cannot go.

    Built from arrays aligned on ``keys`` (the inputs' externalIds): the object id known in the
    state, the reason HubSpot would refuse the media (its events are invalid), and HubSpot's answer
    when it refused to create it (its events are held back as failed, and sent by a later run once
    the media exists). An event that carries its own ``mediaBridgeId`` is left alone: that id wins.
    """

    def __init__(self, keys: pa.Array, ids: pa.Array, invalid: pa.Array, failed: pa.Array) -> None:
        self.keys = keys
        self.ids = ids
        self.invalid = invalid
        self.failed = failed
        self._failed_ids = dict(
            zip(pc.filter(keys, pc.is_valid(failed)).to_pylist(), failed.drop_null().to_pylist(), strict=True)
        )

    def hold_reason(self, external_id: str | None) -> str | None:
        """Why an event of this media cannot be sent in this run (its media failed to be created)."""
        return None if external_id is None else self._failed_ids.get(external_id)

    def apply(self, events: pa.Table) -> pa.Table:
        """Events with ids filled, media problems in the error columns, and a ``_hold`` column."""
        n = events.num_rows
        own = events.column("mediaBridgeId")
        at = pc.index_in(events.column("externalId"), value_set=self.keys)
        by_media = pc.is_null(own)
        ids = pc.if_else(by_media, pc.take(self.ids, at), own)
        events = events.set_column(events.schema.get_field_index("mediaBridgeId"), "mediaBridgeId", ids)
        invalid = pc.if_else(by_media, pc.take(self.invalid, at), pa.scalar(None, pa.string()))
        if invalid.null_count != n:
            events = _add_error(events, invalid)
        hold = pa.nulls(n, pa.string())
        if self._failed_ids:
            no_error = pc.is_null(events.column("_error"))
            hold = pc.if_else(pc.and_(by_media, no_error), pc.take(self.failed, at), hold)
        return events.append_column("_hold", hold)


def _add_error(events: pa.Table, reason: pa.Array) -> pa.Table:
    """The media's problem as the event's error (after any earlier one), naming externalId."""
    has = pc.is_valid(reason)
    message = pc.binary_join_element_wise(pa.scalar("externalId"), reason, ": ")
    old = events.column("_error")
    columns = {
        "_field": pc.if_else(pc.and_(has, pc.is_null(old)), pa.scalar("externalId"), events.column("_field")),
        "_value": pc.if_else(pc.and_(has, pc.is_null(old)), events.column("externalId"), events.column("_value")),
        "_reason": pc.if_else(pc.and_(has, pc.is_null(old)), reason, events.column("_reason")),
        "_error": pc.coalesce(pc.binary_join_element_wise(old, message, "; "), old, message),
    }
    for name, column in columns.items():
        events = events.set_column(events.schema.get_field_index(name), name, column)
    return events
