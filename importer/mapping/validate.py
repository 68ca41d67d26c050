"""Validation: HubSpot's rules for media-played events, applied to whole columns.

Row problems are data: each check adds to four error columns of the event
table (``_field``, ``_value``, ``_reason`` of the first problem and ``_error``
with all of them). An event with an ``_error`` is invalid; it becomes a
results record and is never sent. Rules (from HubSpot's Media Bridge docs):

- required: mediaType, sessionId, occurredTimestamp, state
- enums: mediaType, state, externalPlayContext
- ids (contactId, mediaBridgeId, pageId) are positive int64
- a contact: contactId or contactUtk; media: mediaBridgeId or externalId;
  a page outside HubSpot needs both pageUrl and pageName
- occurredTimestamp is milliseconds since the epoch: after 2000-01-01 and not
  more than a day ahead of now (a value in seconds or microseconds is named as such)
"""

from __future__ import annotations

import re
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from importer.mapping.arrays import bools
from importer.mapping.coerce import as_text
from importer.mapping.spec import MEDIA_TYPES, PAYLOAD_FIELDS, PLAY_CONTEXTS, STATES

ERROR_COLUMNS = ("_field", "_value", "_reason", "_error")
MIN_TIMESTAMP_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
_DAY_MS = 86_400_000


class ErrorColumns:
    """Accumulates row problems as columns; the first problem of a row names its field.

    ``add`` only keeps the masks; ``columns`` builds the four string columns once, over the rows
    that have a problem (a few in a batch), and spreads them back to the batch's length.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        null = pa.nulls(n, pa.string())
        self._base = (null, null, null, null)  # field, value, reason, error of earlier stages
        self._pending: list[tuple[np.ndarray, str, pa.Array | None, str]] = []

    def add(self, mask: pa.Array, field: str, value: pa.Array | None, reason: str) -> None:
        hit = bools(mask)
        if hit.any():
            self._pending.append((hit, field, value, reason))

    def take(self, indices: pa.Array) -> ErrorColumns:
        out = ErrorColumns(len(indices))
        if self._pending or self._base[3].null_count != self.n:
            out._base = tuple(pc.take(a, indices) for a in self.columns().values())
        return out

    def columns(self) -> dict[str, pa.Array]:
        if not self._pending:
            return dict(zip(ERROR_COLUMNS, self._base, strict=True))
        has_error = bools(pc.is_valid(self._base[3]))
        for hit, *_ in self._pending:
            has_error |= hit
        rows = np.flatnonzero(has_error)
        at = pa.array(rows, pa.int64())
        field, value, reason, error = (pc.take(a, at) for a in self._base)
        for hit, name, raw, why in self._pending:
            mask = pa.array(hit[rows])
            first = pc.and_(mask, pc.is_null(reason))
            field = pc.if_else(first, name, field)
            if raw is not None:
                value = pc.if_else(first, as_text(pc.take(raw, at)), value)
            reason = pc.if_else(first, why, reason)
            message = f"{name}: {why}"
            # One problem, one message: a field that already has one (a lookup miss) is not named
            # again by what follows from it (no contact at all).
            named = pc.fill_null(pc.match_substring_regex(error, f"(^|; ){re.escape(name)}: "), False)
            mask = pc.and_(mask, pc.invert(named))
            joined = pc.binary_join_element_wise(error, pa.scalar(message), "; ")
            error = pc.if_else(mask, pc.coalesce(joined, pa.scalar(message)), error)
        # Back to the batch's length: rows without a problem take a null.
        position = np.full(self.n, -1, dtype=np.int64)
        position[rows] = np.arange(len(rows))
        spread = pa.array(position, mask=position < 0)
        return dict(zip(ERROR_COLUMNS, (pc.take(a, spread) for a in (field, value, reason, error)), strict=True))

    @classmethod
    def of(cls, table: pa.Table) -> ErrorColumns:
        out = cls(table.num_rows)
        out._base = tuple(_chunk(table.column(c)) for c in ERROR_COLUMNS)
        return out


def _chunk(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def validate_events(events: pa.Table, now_ms: int | None = None) -> pa.Table:
    """Add HubSpot's rules to the error columns of an event table; return the new table."""
    n = events.num_rows
    if n == 0:
        return events
    errors = ErrorColumns.of(events)
    col = {name: _chunk(events.column(name)) for name in events.column_names}
    missing = pc.is_null

    played = pc.fill_null(pc.not_equal(col["_type"], "percent"), True)
    for name in ("sessionId", "mediaType", "occurredTimestamp"):
        errors.add(missing(col[name]), name, None, "required field is missing")
    errors.add(pc.and_(played, missing(col["state"])), "state", None, "required field is missing")
    percent_ok = pc.is_in(col["playedPercent"], value_set=pa.array([0, 25, 50, 75, 100], pa.int64()))
    errors.add(pc.and_(pc.invert(played), pc.invert(percent_ok)), "playedPercent", col["playedPercent"],
               "must be 0, 25, 50, 75 or 100")  # fmt: skip
    errors.add(
        _not_in(col["mediaType"], MEDIA_TYPES),
        "mediaType",
        col["mediaType"],
        f"not a media type ({', '.join(MEDIA_TYPES)})",
    )
    errors.add(_not_in(col["state"], STATES), "state", col["state"], "not a state (STARTED, VIEWED)")
    errors.add(
        _not_in(col["externalPlayContext"], PLAY_CONTEXTS),
        "externalPlayContext",
        col["externalPlayContext"],
        f"not a play context ({', '.join(PLAY_CONTEXTS)})",
    )
    for name, kind in PAYLOAD_FIELDS.items():
        if kind == "int":
            errors.add(pc.less(col[name], 1), name, col[name], "must be a positive id")

    errors.add(
        pc.and_(missing(col["contactId"]), missing(col["contactUtk"])),
        "contactId",
        None,
        "no contact: contactId and contactUtk are both empty",
    )
    errors.add(
        pc.and_(missing(col["mediaBridgeId"]), missing(col["externalId"])),
        "externalId",
        None,
        "no media: mediaBridgeId and externalId are both empty",
    )
    no_page_id = missing(col["pageId"])
    half_page = pc.xor(missing(col["pageUrl"]), missing(col["pageName"]))
    errors.add(
        pc.and_(no_page_id, half_page),
        "pageUrl",
        pc.coalesce(col["pageUrl"], col["pageName"]),
        "a page outside HubSpot needs both pageUrl and pageName",
    )

    ts = col["occurredTimestamp"]
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    errors.add(pc.less(ts, 1_000_000_000), "occurredTimestamp", ts, "before 1970-01-12: not milliseconds")
    errors.add(
        pc.and_(pc.greater_equal(ts, 1_000_000_000), pc.less(ts, 100_000_000_000)),
        "occurredTimestamp",
        ts,
        "looks like seconds, not milliseconds",
    )
    errors.add(
        pc.and_(pc.greater_equal(ts, 100_000_000_000), pc.less(ts, MIN_TIMESTAMP_MS)),
        "occurredTimestamp",
        ts,
        "before 2000-01-01",
    )
    errors.add(
        pc.greater(ts, 100_000_000_000_000),
        "occurredTimestamp",
        ts,
        "looks like microseconds or nanoseconds, not milliseconds",
    )
    errors.add(
        pc.and_(pc.greater(ts, now + _DAY_MS), pc.less_equal(ts, 100_000_000_000_000)),
        "occurredTimestamp",
        ts,
        "more than a day in the future",
    )

    for name, arr in errors.columns().items():
        events = events.set_column(events.schema.get_field_index(name), name, arr)
    return events


def _not_in(arr: pa.Array, allowed: tuple[str, ...]) -> pa.Array:
    return pc.and_(pc.is_valid(arr), pc.invert(pc.is_in(arr, value_set=pa.array(allowed))))
