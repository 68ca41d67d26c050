"""Vectorised coercions: strings, integers, numbers, booleans and timestamps.

Each function takes a whole Arrow array and returns the coerced array plus a
boolean mask of the values that were present but could not be coerced. The
caller turns that mask into row errors; nothing here raises for bad data.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from importer.mapping.arrays import bools, text_buffers

INT64_MAX = 9_223_372_036_854_775_807
_INT_RE = r"^[+-]?[0-9]+(\.0*)?$"
_NUMERIC_RE = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_OFFSET_RE = r"[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?\s*(Z|z|UTC|[+-][0-9]{2}(:?[0-9]{2})?)$"
_OFFSET = re.compile(_OFFSET_RE)
_PLAIN_ISO_RE = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,3})?)?)?(Z|[+-][0-9]{2}:[0-9]{2})?$"
)
TIME_UNITS = ("s", "ms", "us", "ns", "auto")
_UNIT_TO_MS = {"s": 1e3, "ms": 1.0, "us": 1e-3, "ns": 1e-6}

Coerced = tuple[pa.Array, pa.BooleanArray]


def _chunk(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        return arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return arr


def no_errors(n: int) -> pa.BooleanArray:
    return pa.array(np.zeros(n, dtype=bool))


def as_text(arr: pa.Array) -> pa.Array:
    """Any scalar array as trimmed strings; empty strings become null."""
    arr = _chunk(arr)
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.string())
    if pa.types.is_floating(arr.type):
        # 12345.0 from a spreadsheet is the id 12345, not the text "12345.0".
        whole = pc.equal(pc.floor(arr), arr)
        as_int = pc.cast(pc.if_else(whole, arr, None), pa.int64(), safe=False)
        arr = pc.if_else(whole, pc.cast(as_int, pa.string()), pc.cast(arr, pa.string()))
    elif pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type):
        arr = pc.cast(arr, pa.string())
    elif not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        if pa.types.is_struct(arr.type) or pa.types.is_list(arr.type) or pa.types.is_map(arr.type):
            return pa.nulls(len(arr), pa.string())
        arr = pc.cast(arr, pa.string())
    if pa.types.is_large_string(arr.type):
        arr = pc.cast(arr, pa.string())
    tidy = _tidy(arr)
    if tidy is not None:
        return tidy
    trimmed = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


# Bytes that may begin or end a whitespace character (ASCII controls and space; the lead and
# trail bytes of Unicode spaces in UTF-8). A value with one at either end takes the trimming path.
_EDGE_FIRST = np.zeros(256, dtype=bool)
_EDGE_FIRST[:0x21] = True
_EDGE_FIRST[[0x7F, 0xC2, 0xE1, 0xE2, 0xE3]] = True
_EDGE_LAST = np.zeros(256, dtype=bool)
_EDGE_LAST[:0x21] = True
_EDGE_LAST[[0x7F, *range(0x80, 0x8B), 0x9F, 0xA0, 0xA8, 0xA9, 0xAF]] = True


def _tidy(arr: pa.Array) -> pa.Array | None:
    """Empty values as nulls, sharing the data, when no value has whitespace at either end.

    None when some value may need trimming: the caller then trims the whole column.
    """
    n = len(arr)
    offsets, raw = text_buffers(arr)
    filled = offsets[1:] > offsets[:-1]
    # An empty value's "first" and "last" bytes are its neighbours' (clipped at the ends), which
    # are checked anyway: no need to leave the empty ones out.
    if len(raw):
        firsts, lasts = raw.take(offsets[:-1], mode="clip"), raw.take(offsets[1:] - 1, mode="clip")
        if _EDGE_FIRST[firsts].any() or _EDGE_LAST[lasts].any():
            return None
    if filled.all() and arr.null_count == 0:
        return arr
    valid = filled & bools(arr.is_valid())
    bitmap = np.packbits(np.concatenate([np.zeros(arr.offset, dtype=bool), valid]), bitorder="little")
    buffers = arr.buffers()
    return pa.Array.from_buffers(pa.string(), n, [pa.py_buffer(bitmap), buffers[1], buffers[2]], offset=arr.offset)


def to_int(arr: pa.Array) -> Coerced:
    """Integers from ``12345``, ``"12345"``, ``"12345.0"`` and ``12345.0``; bad values → null + mask."""
    arr = _chunk(arr)
    n = len(arr)
    if pa.types.is_null(arr.type):
        return pa.nulls(n, pa.int64()), no_errors(n)
    if pa.types.is_integer(arr.type):
        if pa.types.is_uint64(arr.type):
            too_big = pc.fill_null(pc.greater(arr, pa.scalar(INT64_MAX, pa.uint64())), False)
            return pc.cast(pc.if_else(too_big, None, arr), pa.int64()), too_big
        return pc.cast(arr, pa.int64()), no_errors(n)
    if pa.types.is_boolean(arr.type):
        return pa.nulls(n, pa.int64()), pc.is_valid(arr)
    if pa.types.is_floating(arr.type):
        ok = pc.and_(pc.equal(pc.floor(arr), arr), pc.less(pc.abs(arr), 2.0**63))
        ok = pc.fill_null(ok, False)
        out = pc.cast(pc.if_else(ok, arr, None), pa.int64(), safe=False)
        return out, pc.and_(pc.is_valid(arr), pc.invert(ok))
    text = as_text(arr)
    plain = _plain_ints(text)
    odd = bools(text.is_valid()) & ~plain
    if not odd.any():  # the common case: one kernel, no regexes
        return pc.cast(text, pa.int64()), no_errors(n)
    # Arrow reads the plain ones; the few others ("12345.0", "C-1234") get the careful reading.
    fast = pc.cast(pc.if_else(pa.array(plain), text, pa.scalar(None, pa.string())), pa.int64())
    rows = np.flatnonzero(odd)
    return _patch(fast, rows, *_careful_int(pc.take(text, pa.array(rows))))


def _plain_ints(text: pa.Array) -> np.ndarray:
    """Rows whose text is 1 to 18 digits after an optional minus: Arrow's cast reads them exactly."""
    offsets, raw = text_buffers(text)
    lengths = offsets[1:] - offsets[:-1]
    if not len(raw):
        return np.zeros(len(text), dtype=bool)
    others = np.concatenate([[0], np.cumsum((raw < 0x30) | (raw > 0x39))])
    not_digits = others[offsets[1:]] - others[offsets[:-1]]
    minus = raw[np.minimum(offsets[:-1], len(raw) - 1)] == 0x2D
    digits = lengths - minus
    return np.asarray((not_digits == minus) & (digits >= 1) & (digits <= 18), dtype=bool)


def _careful_int(text: pa.Array) -> Coerced:
    """The full reading: signs, trailing ".0", leading zeros and the int64 limits, by regexes."""
    well_formed = pc.fill_null(pc.match_substring_regex(text, _INT_RE), False)
    digits = pc.replace_substring_regex(pc.replace_substring_regex(text, r"\.0*$", ""), r"^\+", "")
    unsigned = pc.replace_substring_regex(pc.replace_substring_regex(digits, "^-", ""), "^0+([0-9])", r"\1")
    length = pc.utf8_length(unsigned)
    negative = pc.starts_with(digits, "-")
    limit = pc.if_else(negative, str(INT64_MAX + 1), str(INT64_MAX))  # int64 reaches -2**63
    fits = pc.or_(
        pc.less(length, 19),
        pc.and_(pc.equal(length, 19), pc.less_equal(unsigned, limit)),
    )
    ok = pc.and_(well_formed, pc.fill_null(fits, False))
    out = pc.cast(pc.if_else(ok, digits, None), pa.int64())
    return out, pc.and_(pc.is_valid(text), pc.invert(ok))


def _patch(base: pa.Array, rows: np.ndarray, values: pa.Array, bad: pa.Array) -> Coerced:
    """``base`` with ``values`` at ``rows``, and the error mask that is ``bad`` there (false elsewhere)."""
    out = np.array(pc.fill_null(base, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    valid = bools(pc.is_valid(base)).copy()
    out[rows] = np.asarray(pc.fill_null(values, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    valid[rows] = bools(pc.is_valid(values))
    bad_all = np.zeros(len(base), dtype=bool)
    bad_all[rows] = bools(bad)
    return pa.array(out, mask=~valid), pa.array(bad_all)


def to_float(arr: pa.Array) -> Coerced:
    """Numbers from numeric or text columns; bad values → null + mask."""
    arr = _chunk(arr)
    n = len(arr)
    if pa.types.is_null(arr.type):
        return pa.nulls(n, pa.float64()), no_errors(n)
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_decimal(arr.type):
        return pc.cast(arr, pa.float64(), safe=False), no_errors(n)
    if pa.types.is_boolean(arr.type):
        return pc.cast(arr, pa.float64()), no_errors(n)
    text = as_text(arr)
    ok = pc.fill_null(pc.match_substring_regex(text, _NUMERIC_RE), False)
    out = pc.cast(pc.if_else(ok, text, None), pa.float64())
    return out, pc.and_(pc.is_valid(text), pc.invert(ok))


def to_share(arr: pa.Array) -> tuple[pa.Array, pa.BooleanArray, pa.BooleanArray]:
    """Numbers as ``to_float`` reads them, and "62%" as 62: returns values, bad mask, and the
    mask of values written with a percent sign (a share the value itself says is a percent)."""
    arr = _chunk(arr)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        values, bad = to_float(arr)
        return values, bad, pa.array(np.zeros(len(arr), dtype=bool))
    text = as_text(arr)
    marked = pc.fill_null(pc.ends_with(text, "%"), False)
    if pc.any(marked).as_py():
        text = pc.if_else(marked, pc.utf8_rtrim_whitespace(pc.utf8_rtrim(text, "%")), text)
    values, bad = to_float(text)
    return values, bad, marked


_TRUE = ["true", "t", "yes", "y", "1", "1.0"]
_FALSE = ["false", "f", "no", "n", "0", "0.0"]


def to_bool(arr: pa.Array) -> Coerced:
    """Booleans from bool, numeric or text (true/false, yes/no, 1/0) columns."""
    arr = _chunk(arr)
    n = len(arr)
    if pa.types.is_null(arr.type):
        return pa.nulls(n, pa.bool_()), no_errors(n)
    if pa.types.is_boolean(arr.type):
        return arr, no_errors(n)
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        return pc.not_equal(arr, 0), no_errors(n)
    text = pc.utf8_lower(as_text(arr))
    is_true = pc.is_in(text, value_set=pa.array(_TRUE))
    is_false = pc.is_in(text, value_set=pa.array(_FALSE))
    out = pc.if_else(is_true, True, pc.if_else(is_false, False, pa.scalar(None, pa.bool_())))
    return out, pc.and_(pc.is_valid(text), pc.and_(pc.invert(is_true), pc.invert(is_false)))


@dataclass(frozen=True)
class TimestampFormat:
    """How a column's timestamps are written.

    ``format``: ``auto`` (numbers are epoch values, text is ISO 8601), ``iso8601``,
    ``epoch``, or a ``strptime`` pattern such as ``%d/%m/%Y %H:%M``.
    ``unit``: the epoch unit, or ``auto`` to tell s/ms/µs/ns apart by magnitude.
    ``timezone``: the IANA zone of values written without an offset.
    """

    format: str = "auto"
    unit: str = "auto"
    timezone: str = "UTC"


def _epoch_ms(values: np.ndarray, unit: str) -> np.ndarray:
    if unit != "auto":
        return values * _UNIT_TO_MS[unit]
    mag = np.abs(values)
    # Seconds until year 5138, ms until 5138, µs, then ns: the ranges do not overlap
    # for any date after 1973, which is all a play log can hold.
    factor = np.where(mag < 1e11, 1e3, np.where(mag < 1e14, 1.0, np.where(mag < 1e17, 1e-3, 1e-6)))
    return values * factor


def to_epoch_ms(arr: pa.Array, fmt: TimestampFormat) -> Coerced:
    """Milliseconds since the epoch, UTC, as int64; unparseable values → null + mask."""
    arr = _chunk(arr)
    n = len(arr)
    if pa.types.is_null(arr.type):
        return pa.nulls(n, pa.int64()), no_errors(n)
    if pa.types.is_timestamp(arr.type):
        if arr.type.tz is None:
            arr = pc.assume_timezone(arr, fmt.timezone, ambiguous="earliest", nonexistent="latest")
        # Any unit, through whole numbers: nanoseconds are floored to the millisecond the payload
        # carries, and seconds too large for milliseconds are invalid values, not an overflow.
        out = _int_epoch_ms(pc.cast(arr, pa.int64()), arr.type.unit)
        return out, pc.and_(pc.is_valid(arr), pc.is_null(out))
    if pa.types.is_date(arr.type):
        return to_epoch_ms(pc.cast(pc.cast(arr, pa.date32()), pa.timestamp("ms")), fmt)
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or fmt.format == "epoch":
        return _from_epoch(arr, fmt)
    return _from_text(as_text(arr), fmt)


def _from_epoch(arr: pa.Array, fmt: TimestampFormat) -> Coerced:
    # Whole numbers stay in int64 arithmetic: a nanosecond epoch does not fit a float exactly.
    if not pa.types.is_floating(arr.type):
        ints, int_bad = to_int(arr)
        if not pc.any(int_bad).as_py():
            return _int_epoch_ms(ints, fmt.unit), int_bad
    values, bad = to_float(arr)
    np_values = values.to_numpy(zero_copy_only=False)
    ms = _epoch_ms(np_values, fmt.unit)
    finite = np.isfinite(ms) & (np.abs(ms) < 9.2e18)
    out = pa.array(np.where(finite, np.floor(np.nan_to_num(ms)), 0).astype(np.int64), mask=~finite)
    present_bad = pc.and_(pc.is_valid(values), pa.array(~finite))
    return out, pc.or_(bad, present_bad)


def _int_epoch_ms(ints: pa.Array, unit: str) -> pa.Array:
    values = np.asarray(pc.fill_null(ints, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    if unit == "auto":
        mag = np.abs(values)
        unit_index = np.select([mag < 10**11, mag < 10**14, mag < 10**17], [0, 1, 2], 3)
    else:
        unit_index = np.full(len(values), ("s", "ms", "us", "ns").index(unit))
    with np.errstate(over="ignore"):
        ms = np.select(
            [unit_index == 0, unit_index == 1, unit_index == 2],
            [values * 1000, values, np.floor_divide(values, 1000)],
            np.floor_divide(values, 1_000_000),
        )
    overflow = (unit_index == 0) & (np.abs(values) > 9_000_000_000_000_000)
    valid = bools(pc.is_valid(ints)) & ~overflow
    return pa.array(ms, pa.int64(), mask=~valid)


def _from_text(text: pa.Array, fmt: TimestampFormat) -> Coerced:
    if fmt.format not in ("auto", "iso8601"):
        return _from_strptime(text, fmt)
    whole = _arrow_iso(text, fmt.timezone)  # the usual column: ISO 8601 throughout
    if whole is not None:
        return whole, no_errors(len(text))
    # Some value is not plain ISO 8601 (a typo, another layout, an epoch number), or offsets and
    # local times mix: Arrow takes the plain ones, and only the few others get a closer look,
    # so one odd row does not slow down its whole batch.
    plain = pc.fill_null(pc.match_substring_regex(text, _PLAIN_ISO_RE), False)
    others = pc.and_(pc.is_valid(text), pc.invert(plain))
    fast = _arrow_iso_mixed(pc.if_else(plain, text, pa.scalar(None, pa.string())), fmt.timezone)
    if fast is None:  # plain-looking values Arrow refuses (2025-02-30): the closer look for all
        fast, others = pa.nulls(len(text), pa.int64()), pc.is_valid(text)
    rows = np.flatnonzero(bools(others))
    if len(rows) == 0:
        return fast, no_errors(len(text))
    return _patch(fast, rows, *_odd_text(pc.take(text, pa.array(rows)), fmt))


def _odd_text(text: pa.Array, fmt: TimestampFormat) -> Coerced:
    """Values Arrow's parser refused: epoch numbers (format auto), else pandas' ISO 8601 parser."""
    if fmt.format == "auto":
        numeric = pc.fill_null(pc.match_substring_regex(text, _NUMERIC_RE), False)
        if pc.any(numeric).as_py():
            ep, ep_bad = _from_epoch(pc.if_else(numeric, text, None), fmt)
            iso, iso_bad = _pandas_iso(pc.if_else(numeric, None, text), fmt)
            return pc.if_else(numeric, ep, iso), pc.or_(ep_bad, iso_bad)
    return _pandas_iso(text, fmt)


def _arrow_iso(text: pa.Array, zone: str) -> pa.Array | None:
    """Arrow's own ISO 8601 parser, all or nothing; None when any value needs more care.

    The first value says whether the column carries offsets: a cast of the other kind is tried
    only through ``_arrow_iso_mixed``, as Arrow is slow to refuse a whole column of the wrong kind.
    """
    if len(text) == 0:
        return pa.array([], pa.int64())
    valid = text.is_valid()
    first = text[0] if text.null_count == 0 else text[int(np.argmax(valid.to_numpy(zero_copy_only=False)))]
    if not first.is_valid:
        return pa.nulls(len(text), pa.int64())
    with contextlib.suppress(pa.ArrowInvalid):
        if _OFFSET.search(first.as_py()):
            return pc.cast(pc.cast(text, pa.timestamp("ms", "UTC")), pa.int64())
        return _local_ms(pc.cast(text, pa.timestamp("ms")), zone)
    return None


def _arrow_iso_mixed(text: pa.Array, zone: str) -> pa.Array | None:
    """Arrow's parser over values with and without offsets; None when it refuses any value."""
    whole = _arrow_iso(text, zone)
    if whole is not None:
        return whole
    null = pa.scalar(None, pa.string())
    has_offset = pc.fill_null(pc.match_substring_regex(text, _OFFSET_RE), False)
    try:
        with_offset = pc.cast(pc.cast(pc.if_else(has_offset, text, null), pa.timestamp("ms", "UTC")), pa.int64())
        local = _local_ms(pc.cast(pc.if_else(has_offset, null, text), pa.timestamp("ms")), zone)
    except pa.ArrowInvalid:
        return None
    return pc.if_else(has_offset, with_offset, local)


def _local_ms(naive: pa.Array, zone: str) -> pa.Array:
    """Naive timestamps read in ``zone``, as UTC epoch milliseconds."""
    if zone == "UTC":  # the epoch of a naive time is its UTC reading
        return pc.cast(naive, pa.int64())
    local = pc.assume_timezone(naive, zone, ambiguous="earliest", nonexistent="latest")
    return pc.cast(pc.cast(local, pa.timestamp("ms", "UTC")), pa.int64())


def _pandas_iso(text: pa.Array, fmt: TimestampFormat) -> Coerced:
    n = len(text)
    present = bools(pc.is_valid(text))
    # ISO 8601 starts with the year: anything else ("yesterday") is refused without pandas.
    dated = pc.fill_null(pc.match_substring_regex(text, r"^[0-9]{4}"), False)
    if not pc.any(dated).as_py():
        return pa.nulls(n, pa.int64()), pa.array(present)
    text = pc.if_else(dated, text, pa.scalar(None, pa.string()))
    has_offset = pc.fill_null(pc.match_substring_regex(text, _OFFSET_RE), False)
    # "UTC" as a suffix is not ISO 8601 but common in exports; pandas wants "Z".
    series = pd.Series(pc.replace_substring_regex(text, r"\s*UTC$", "Z").to_pandas(), dtype=object)
    result = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    mask_offset = bools(has_offset)
    if mask_offset.any():
        parsed = pd.to_datetime(series[mask_offset], format="ISO8601", utc=True, errors="coerce")
        result[mask_offset] = _ns_to_ms(parsed)
    naive = bools(dated) & ~mask_offset
    if naive.any():
        parsed = pd.to_datetime(series[naive], format="ISO8601", errors="coerce")
        if getattr(parsed.dt, "tz", None) is None:
            parsed = _localize(parsed, fmt.timezone)
        result[naive] = _ns_to_ms(parsed)
    missing = result == np.iinfo(np.int64).min
    return pa.array(result, mask=missing), pa.array(present & missing)


def _localize(parsed: pd.Series, zone: str) -> pd.Series:
    """Naive times in ``zone``: a repeated DST hour takes the earlier instant, a skipped one moves forward."""
    earliest = np.ones(len(parsed), dtype=bool)
    return parsed.dt.tz_localize(ZoneInfo(zone), ambiguous=earliest, nonexistent="shift_forward")


def _ns_to_ms(parsed: pd.Series) -> np.ndarray:
    values = parsed.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ms]")
    as_int = values.astype(np.int64)
    return np.where(np.isnat(values), np.iinfo(np.int64).min, as_int)


def _from_strptime(text: pa.Array, fmt: TimestampFormat) -> Coerced:
    present = bools(pc.is_valid(text))
    series = pd.Series(text.to_pandas(), dtype=object)
    parsed = pd.to_datetime(series, format=fmt.format, errors="coerce", utc="%z" in fmt.format)
    if getattr(parsed.dt, "tz", None) is None:
        parsed = _localize(parsed, fmt.timezone)
    result = _ns_to_ms(parsed)
    missing = result == np.iinfo(np.int64).min
    return pa.array(result, mask=missing), pa.array(present & missing)
