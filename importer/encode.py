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


def json_string(arr: pa.Array) -> pa.Array:
    """Each value as a JSON string literal (quotes included); nulls stay null."""
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
    members: list[pa.Array] = []
    for name in fields:
        col = events.column(name).combine_chunks()
        if col.null_count == n:
            continue
        literal = pc.cast(col, pa.string()) if name in INT_FIELDS else json_string(col)
        members.append(pc.binary_join_element_wise(pa.scalar(f'"{name}":'), literal, ""))
    if not members:
        return pa.repeat(pa.scalar("{}"), n)
    # Join present members with commas: a running join where nulls are passed over.
    body = members[0]
    for member in members[1:]:
        both = pc.binary_join_element_wise(body, member, ",")
        body = pc.coalesce(both, body, member)
    body = pc.fill_null(body, "")
    return pc.binary_join_element_wise(pa.scalar("{"), body, pa.scalar("}"), "")
