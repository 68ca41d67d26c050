"""Vectorised evaluation of value rules (``Expr``) and conditions over one batch.

Everything here works on whole Arrow columns: no Python loop runs per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from importer.mapping.arrays import bools
from importer.mapping.coerce import as_text, to_bool, to_epoch_ms, to_float, to_int, to_share
from importer.mapping.lookups import LoadedLookup
from importer.mapping.spec import _TEMPLATE_REF, Condition, Expr

_HASH_KEY = "media-import-v1!"  # 16 bytes: siphash key; part of the id contract, never change it
_HEX = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2")
_PARAM_VALUE_FIELDS = ("string_value", "int_value", "float_value", "double_value")


@dataclass
class Value:
    """An evaluated rule: values, the rows whose value could not be coerced, and why."""

    values: pa.Array
    bad: pa.BooleanArray | None = None
    reason: str = ""
    raw: pa.Array | None = None
    skip: pa.BooleanArray | None = None
    notes: list[tuple[pa.BooleanArray, pa.Array, str]] = field(default_factory=list)


class Frame:
    """One batch's columns, with nested access and a cache, as rules see them."""

    def __init__(self, table: pa.Table, n: int, lookups: dict[str, LoadedLookup]) -> None:
        self.table = table
        self.n = n
        self.lookups = lookups
        self._cache: dict[str, pa.Array] = {}

    def column(self, path: str) -> pa.Array:
        if path in self._cache:
            return self._cache[path]
        top, *rest = path.split(".")
        if top not in self.table.column_names:
            arr: pa.Array = pa.nulls(self.n, pa.string())
        else:
            col = self.table.column(top)
            arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
            for part in rest:
                if pa.types.is_struct(arr.type) and arr.type.get_field_index(part) >= 0:
                    arr = pc.struct_field(arr, part)
                else:
                    arr = pa.nulls(self.n, pa.string())
                    break
        self._cache[path] = arr
        return arr


def evaluate(expr: Expr, frame: Frame) -> Value:
    """Evaluate a value rule to an Arrow array (typed when ``expr.type`` says so)."""
    value = _source(expr, frame)
    arr = value.values
    if expr.lower or expr.upper:
        arr = as_text(arr)
        arr = pc.utf8_lower(arr) if expr.lower else pc.utf8_upper(arr)
    if expr.value_map is not None:
        arr, skip = _apply_map(expr, arr)
        value.skip = skip
    if expr.default is not None:
        arr = _fill_default(arr, expr.default)
    if expr.when is not None:
        arr = pc.if_else(condition_mask(expr.when, frame), arr, pa.scalar(None, arr.type))
    value.values = arr
    # The raw value goes with an error as it is: the error columns render it as text, and only
    # for the rows that have a problem.
    if expr.type in ("int", "float", "bool"):
        raw = arr
        coerce = {"int": to_int, "float": to_float, "bool": to_bool}[expr.type]
        value.values, bad = coerce(arr)
        value.bad, value.raw, value.reason = bad, raw, f"not a valid {expr.type}"
    elif expr.type == "timestamp" and expr.kind != "add":  # add gives milliseconds already
        assert expr.timestamp is not None
        raw = arr
        value.values, bad = to_epoch_ms(arr, expr.timestamp)
        value.bad, value.raw, value.reason = bad, raw, "not a timestamp in the expected format"
    elif expr.type == "string":
        value.values = as_text(arr)
    return value


def _source(expr: Expr, frame: Frame) -> Value:
    n = frame.n
    if expr.kind == "column":
        assert expr.column is not None
        return Value(frame.column(expr.column))
    if expr.kind == "const":
        return Value(_constant(expr.const, n))
    if expr.kind == "coalesce":
        parts = [evaluate(item, frame) for item in expr.items]
        arrays = [p.values for p in parts]
        if len({a.type for a in arrays}) > 1 or pa.types.is_string(arrays[0].type):
            arrays = [as_text(a) for a in arrays]
        return Value(pc.coalesce(*arrays), notes=[note for p in parts for note in p.notes])
    if expr.kind == "template":
        assert expr.template is not None
        return Value(_template(expr.template, frame))
    if expr.kind == "hash":
        texts = [as_text(evaluate(item, frame).values) for item in expr.items]
        parts = [pc.fill_null(t, "") for t in texts]
        joined = pc.binary_join_element_wise(*parts, "\x1f") if len(parts) > 1 else parts[0]
        # Nothing to hash is no id: rows with every part empty must not share one.
        any_part = texts[0].is_valid()
        for t in texts[1:]:
            any_part = pc.or_(any_part, t.is_valid())
        return Value(pc.if_else(any_part, stable_hash_hex(joined), pa.scalar(None, pa.string())))
    if expr.kind == "lookup":
        return _lookup(expr, frame)
    if expr.kind == "add":
        return _add(expr, frame)
    if expr.kind == "param":
        assert expr.column is not None and expr.param_key is not None
        return Value(_param(frame.column(expr.column), expr.param_key, n))
    raise AssertionError(f"unknown rule kind {expr.kind}")


def _add(expr: Expr, frame: Frame) -> Value:
    """A timestamp plus durations, in whole milliseconds; null where any part is null."""
    start, *durations = (evaluate(item, frame) for item in expr.items)
    offset: pa.Array = pa.array(np.zeros(frame.n))
    for item, duration in zip(expr.items[1:], durations, strict=True):
        finite = pc.if_else(pc.is_finite(duration.values), duration.values, pa.scalar(None, pa.float64()))
        offset = pc.add(offset, pc.multiply(finite, float(item.duration_ms or 1)))
    total = pc.add(start.values, pc.cast(pc.round(offset), pa.int64()))
    start_bad = start.bad if start.bad is not None else pa.array(np.zeros(frame.n, dtype=bool))
    raw = as_text(start.raw if start.raw is not None else start.values)
    bad, reasons = start_bad, [start.reason] if pc.any(start_bad).as_py() else []
    for duration in durations:
        if duration.bad is None or not pc.any(duration.bad).as_py():
            continue
        # The value shown with an error is the part that is wrong.
        raw = pc.if_else(pc.and_(duration.bad, pc.invert(bad)), as_text(duration.raw), raw)
        bad = pc.or_(bad, duration.bad)
        reasons = [*reasons, "the duration to add is not a number"][:2]
    return Value(total, bad=bad, raw=raw, reason=", or ".join(dict.fromkeys(reasons)) or start.reason)


def _constant(value: Any, n: int) -> pa.Array:
    if isinstance(value, bool):
        return pa.array(np.full(n, value, dtype=bool))
    if isinstance(value, int):
        return pa.array(np.full(n, value, dtype=np.int64))
    if isinstance(value, float):
        return pa.array(np.full(n, value, dtype=np.float64))
    if value is None:
        return pa.nulls(n, pa.string())
    return pa.repeat(pa.scalar(str(value)), n)


def _fill_default(arr: pa.Array, default: Any) -> pa.Array:
    if pa.types.is_integer(arr.type) and isinstance(default, int) and not isinstance(default, bool):
        return pc.fill_null(arr, pa.scalar(default, arr.type))
    if pa.types.is_floating(arr.type) and isinstance(default, int | float):
        return pc.fill_null(arr, pa.scalar(float(default), arr.type))
    if pa.types.is_boolean(arr.type) and isinstance(default, bool):
        return pc.fill_null(arr, default)
    return pc.fill_null(as_text(arr), str(default).lower() if isinstance(default, bool) else str(default))


def _apply_map(expr: Expr, arr: pa.Array) -> tuple[pa.Array, pa.BooleanArray | None]:
    assert expr.value_map is not None
    text = as_text(arr)
    keys = [k for k, _ in expr.value_map]
    targets = [None if v is None else str(v) for _, v in expr.value_map]
    probe = text
    if expr.case_insensitive:
        probe = pc.utf8_lower(text)
        keys = [k.lower() for k in keys]
    idx = pc.index_in(probe, value_set=pa.array(keys, pa.string()))
    mapped = pc.take(pa.array(targets, pa.string()), idx)
    hit = pc.is_valid(idx)
    if expr.unmapped == "keep":
        return pc.if_else(hit, mapped, text), None
    if expr.unmapped == "null":
        return mapped, None
    skip = pc.and_(pc.is_valid(text), pc.invert(hit))
    return mapped, skip


def _template(template: str, frame: Frame) -> pa.Array:
    parts: list[pa.Array | pa.Scalar] = []
    pos = 0
    for m in _TEMPLATE_REF.finditer(template):
        if m.start() > pos:
            parts.append(pa.scalar(template[pos : m.start()]))
        parts.append(as_text(frame.column(m.group(1).strip())))
        pos = m.end()
    if pos < len(template):
        parts.append(pa.scalar(template[pos:]))
    if len(parts) == 1:
        return parts[0] if isinstance(parts[0], pa.Array) else pa.repeat(parts[0], frame.n)
    arrays = [p if isinstance(p, pa.Array) else pa.repeat(p, frame.n) for p in parts]
    return pc.binary_join_element_wise(*arrays, "", null_handling="emit_null")


def stable_hash_hex(text: pa.Array) -> pa.Array:
    """A 16-hex-digit id from each string: SipHash-2-4 with a fixed key, the same on every machine."""
    valid = pc.is_valid(text)
    values = np.asarray(pc.fill_null(text, "").to_numpy(zero_copy_only=False), dtype=object)
    hashed = pd.util.hash_array(values, encoding="utf8", hash_key=_HASH_KEY, categorize=False)
    big_endian = hashed.astype(">u8").view(np.uint8).reshape(-1, 8)
    hex_bytes = _HEX[big_endian].view("S16").ravel()
    out = pa.array(hex_bytes.astype(object), pa.binary()).cast(pa.string())
    return pc.if_else(valid, out, pa.scalar(None, pa.string()))


def _lookup(expr: Expr, frame: Frame) -> Value:
    assert expr.lookup is not None and expr.lookup_get is not None
    table = frame.lookups[expr.lookup]
    key = as_text(evaluate(expr.items[0], frame).values)
    found = table.get(key, expr.lookup_get)
    miss = pc.and_(pc.is_valid(key), pc.is_null(found))
    if table.known_missing is None or len(table.known_missing) == 0:
        return Value(found, notes=[(miss, key, table.miss_reason)])
    known = pc.is_in(table.normalise(key), value_set=table.known_missing)
    return Value(
        found,
        notes=[
            (pc.and_(miss, known), key, table.known_missing_reason),
            (pc.and_(miss, pc.invert(known)), key, table.miss_reason),
        ],
    )


def _param(column: pa.Array, key: str, n: int) -> pa.Array:
    """The value of ``key`` in a list of ``{key, value: {string_value|int_value|...}}`` records."""
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)):
        return pa.nulls(n, pa.string())
    item_type = column.type.value_type
    if not pa.types.is_struct(item_type) or item_type.get_field_index("key") < 0:
        return pa.nulls(n, pa.string())
    items = pc.list_flatten(column)
    parents = pc.list_parent_indices(column)
    hits = pc.fill_null(pc.equal(pc.struct_field(items, "key"), key), False)
    if item_type.get_field_index("value") < 0:
        return pa.nulls(n, pa.string())
    value = pc.struct_field(items, "value")
    if pa.types.is_struct(value.type):
        present = [f for f in _PARAM_VALUE_FIELDS if value.type.get_field_index(f) >= 0]
        candidates = [as_text(pc.struct_field(value, f)) for f in present]
        value = pc.coalesce(*candidates) if candidates else pa.nulls(len(items), pa.string())
    else:
        value = as_text(value)
    rows = np.asarray(pc.filter(parents, hits).to_numpy(zero_copy_only=False), dtype=np.int64)
    positions = np.flatnonzero(bools(hits))
    # The first matching record of each row wins.
    first_rows, first_at = np.unique(rows, return_index=True)
    index = np.full(n, -1, dtype=np.int64)
    index[first_rows] = positions[first_at]
    return pc.take(value, pa.array(index, mask=index < 0))


def condition_mask(cond: Condition, frame: Frame) -> pa.BooleanArray:
    """Where the condition holds; a test on a missing or unparseable value is false."""
    if cond.op == "all":
        out = pa.array(np.ones(frame.n, dtype=bool))
        for child in cond.children:
            out = pc.and_(out, condition_mask(child, frame))
        return out
    if cond.op == "any":
        out = pa.array(np.zeros(frame.n, dtype=bool))
        for child in cond.children:
            out = pc.or_(out, condition_mask(child, frame))
        return out
    if cond.op == "not":
        return pc.invert(condition_mask(cond.children[0], frame))
    return pc.fill_null(_test(cond, frame), False)


def _test(cond: Condition, frame: Frame) -> pa.Array:
    test, arg = cond.test, cond.arg
    if cond.ratio is not None:
        num, _ = to_float(evaluate(cond.ratio[0], frame).values)
        den, _ = to_float(evaluate(cond.ratio[1], frame).values)
        den = pc.if_else(pc.greater(den, 0), den, None)
        subject: pa.Array = pc.divide(num, den)
    else:
        assert cond.operand is not None
        subject = evaluate(cond.operand, frame).values
    if test == "present":
        return pc.equal(pc.is_valid(as_text(subject)), bool(arg))
    if test == "missing":
        return pc.equal(pc.is_null(as_text(subject)), bool(arg))
    if test in ("is_true", "is_false"):
        flag, _ = to_bool(subject)
        want = (test == "is_true") == bool(arg)
        return pc.equal(flag, want)
    if test in ("gt", "gte", "lt", "lte") or (isinstance(arg, int | float) and not isinstance(arg, bool)):
        number, _, marked = to_share(subject)  # "62%" is the percent 62
        if cond.scale == "fraction":
            number = pc.if_else(pc.or_(marked, pc.greater(number, 1.0)), pc.divide(number, 100.0), number)
        elif cond.scale == "percent":
            fraction = pc.and_(pc.invert(marked), pc.less_equal(number, 1.0))
            number = pc.if_else(fraction, pc.multiply(number, 100.0), number)
        op = {"gt": pc.greater, "gte": pc.greater_equal, "lt": pc.less, "lte": pc.less_equal}.get(
            str(test), pc.equal if test == "equals" else pc.not_equal
        )
        return op(number, float(arg))
    if isinstance(arg, bool) and test in ("equals", "not_equals"):
        flag, _ = to_bool(subject)
        return pc.equal(flag, arg) if test == "equals" else pc.not_equal(flag, arg)
    text = as_text(subject)
    if test == "equals":
        return pc.equal(text, str(arg))
    if test == "not_equals":
        return pc.not_equal(text, str(arg))  # null (so false) for a missing value
    if test in ("in", "not_in"):
        hit = pc.is_in(text, value_set=pa.array([str(a) for a in arg], pa.string()))
        return hit if test == "in" else pc.and_(pc.invert(hit), pc.is_valid(text))
    if test == "matches":
        return pc.match_substring_regex(text, str(arg))
    raise AssertionError(f"unknown test {test}")
