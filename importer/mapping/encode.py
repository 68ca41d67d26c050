"""Payload encoding: the event table → one JSON document per event, built column-wise.

Each payload is assembled from whole columns by one Arrow string join: field
names are constants, ids and timestamps are written as JSON integers, text is
escaped, and null fields are left out. Only the rare value holding a control
character goes through ``json.dumps``.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from importer.mapping.arrays import bools, text_buffers
from importer.mapping.spec import PAYLOAD_FIELDS

# HubSpot's documented field order; the state and time come right after the session.
FIELD_ORDER = (
    "mediaType",
    "sessionId",
    "state",
    "playedPercent",
    "occurredTimestamp",
    *[f for f in PAYLOAD_FIELDS if f not in ("mediaType", "sessionId")],
)
INT_FIELDS = frozenset({"occurredTimestamp", "playedPercent", *[f for f, k in PAYLOAD_FIELDS.items() if k == "int"]})
_CONTROL = r"[\x00-\x1f]"


def _needs_escape(arr: pa.Array) -> bool:
    """Whether any value holds a quote, a backslash or a control character: one pass over the raw bytes."""
    if not pa.types.is_string(arr.type):  # large strings have 64-bit offsets: take the careful path
        return True
    _, raw = text_buffers(arr)
    return bool(np.any((raw < 0x20) | (raw == 0x22) | (raw == 0x5C)))


def json_string(arr: pa.Array) -> pa.Array:
    """Each value as a JSON string literal (quotes included); nulls stay null."""
    if not _needs_escape(arr):  # the usual column: nothing to escape, just quote
        return pc.binary_join_element_wise(pa.scalar('"'), arr, pa.scalar('"'), "")
    escaped = pc.replace_substring(arr, "\\", "\\\\")
    escaped = pc.replace_substring(escaped, '"', '\\"')
    quoted = pc.binary_join_element_wise(pa.scalar('"'), escaped, pa.scalar('"'), "")
    has_control = pc.fill_null(pc.match_substring_regex(arr, _CONTROL), False)
    if not pc.any(has_control).as_py():
        return quoted
    rows = np.flatnonzero(bools(has_control))
    fixed = [json.dumps(v, ensure_ascii=False) for v in pc.take(arr, pa.array(rows)).to_pylist()]
    values = quoted.to_pylist()
    for row, text in zip(rows.tolist(), fixed, strict=True):
        values[row] = text
    return pa.array(values, pa.string())


def encode_payloads(events: pa.Table, fields: tuple[str, ...] = FIELD_ORDER) -> pa.Array:
    """The JSON body of each event, exactly as it is sent."""
    n = events.num_rows
    if n == 0:
        return pa.array([], pa.string())
    # One join builds every payload: each field is ',"name":value', and a field with nulls is a
    # member of its own that is null (so left out) where the value is. The leading comma of each
    # payload then becomes its opening brace in place.
    pieces: list[pa.Array | pa.Scalar] = []
    for name in fields:
        col = events.column(name).combine_chunks()
        if col.null_count == n:
            continue
        if name in INT_FIELDS:
            parts: list[pa.Array | pa.Scalar] = [pa.scalar(f',"{name}":'), pc.cast(col, pa.string())]
        elif not _needs_escape(col):
            parts = [pa.scalar(f',"{name}":"'), col, pa.scalar('"')]
        else:
            parts = [pa.scalar(f',"{name}":'), json_string(col)]
        if col.null_count:
            pieces.append(pc.binary_join_element_wise(*parts, ""))
        else:
            pieces.extend(parts)
    if not pieces:  # no field in any event: nothing to join
        return pa.array(["{}"] * n, pa.string())
    pieces.append(pa.scalar("}"))
    joined = pc.binary_join_element_wise(*_merge_constants(pieces), "", null_handling="replace", null_replacement="")
    return _open_brace(joined)


def _merge_constants(pieces: list[pa.Array | pa.Scalar]) -> list[pa.Array | pa.Scalar]:
    """Neighbouring constants as one: the join's cost grows with its number of inputs."""
    out: list[pa.Array | pa.Scalar] = []
    for piece in pieces:
        if isinstance(piece, pa.Scalar) and out and isinstance(out[-1], pa.Scalar):
            out[-1] = pa.scalar(out[-1].as_py() + piece.as_py())
        else:
            out.append(piece)
    return out


def _open_brace(joined: pa.Array) -> pa.Array:
    """Turn each value's leading comma into "{" ("}" alone, an event with no field, becomes "{}")."""
    offsets, raw = text_buffers(joined)
    data = joined.buffers()[2]
    if data is None or not data.is_mutable or (np.diff(offsets) == 1).any():
        body = pc.if_else(pc.starts_with(joined, ","), pc.utf8_slice_codeunits(joined, 1), joined)
        return pc.binary_join_element_wise(pa.scalar("{"), body, "")
    raw[offsets[:-1]] = ord("{")  # a fresh buffer of our own join: nobody else holds it
    return joined
