"""Payload encoding: the event table → one JSON document per event, built column-wise.

Each payload is assembled from whole columns with Arrow string kernels: field
names are constants, ids and timestamps are written as JSON integers, text is
escaped, and null fields are left out. Only the rare value holding a control
character goes through ``json.dumps``.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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
    data = arr.buffers()[2]
    if data is None:
        return False
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + len(arr) + 1]
    raw = np.frombuffer(data, dtype=np.uint8)[offsets[0] : offsets[-1]]
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
    rows = np.flatnonzero(np.asarray(has_control.to_numpy(zero_copy_only=False), dtype=bool))
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
    # A leading empty member keeps every row non-null for the skip-nulls join (pyarrow drops
    # rows whose inputs are all null) and puts one comma in front, which the slice removes.
    members: list[pa.Array] = [pa.repeat(pa.scalar(""), n)]
    for name in fields:
        col = events.column(name).combine_chunks()
        if col.null_count == n:
            continue
        if name in INT_FIELDS:
            member = pc.binary_join_element_wise(pa.scalar(f'"{name}":'), pc.cast(col, pa.string()), "")
        elif not _needs_escape(col):  # name, quotes and value in one kernel
            member = pc.binary_join_element_wise(pa.scalar(f'"{name}":"'), col, pa.scalar('"'), "")
        else:
            member = pc.binary_join_element_wise(pa.scalar(f'"{name}":'), json_string(col), "")
        members.append(member)
    body = pc.binary_join_element_wise(*members, ",", null_handling="skip")
    body = pc.utf8_slice_codeunits(body, 1)
    return pc.binary_join_element_wise(pa.scalar("{"), body, pa.scalar("}"), "")
