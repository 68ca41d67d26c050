"""Compact sets of 64-bit key hashes, for dedupe within a run and distinct counts.

Keys are hashed column-wise in numpy, straight from Arrow's buffers
(``row_hashes``), and kept in sorted numpy runs that merge like an LSM tree:
membership is a binary search per run, and a batch is checked and added without
any per-key Python work. Eight bytes a key while runs merge, six once a run is
full and packed, plus an optional fixed bitmap that spares most new keys their
searches.

``hash_keys`` is the journal's hash (SipHash through pandas): event ids written
to disk must not change between versions, so it stays as it is.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.lib.stride_tricks import as_strided

from importer.mapping.arrays import bools, text_buffers

_HASH_KEY = "media-import-key"
_MAX_RUN = 1 << 20
_PACK_CHUNK = 1 << 16
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_SEED = np.uint64(0x9E3779B97F4A7C15)
_NULL = np.uint64(0x6A09E667F3BCC908)
# The low k bytes of a little-endian word, for a string's last (partial) word.
_TAIL = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)


def hash_keys(columns: list[pa.Array], salt: str = _HASH_KEY) -> np.ndarray:
    """One uint64 per row from the text of several columns (nulls are a value of their own).

    ``salt`` is SipHash's 16-byte key: two salts give two independent hashes.
    """
    parts = [pc.fill_null(pc.cast(c, pa.string()), "\x00") for c in columns]
    joined = pc.binary_join_element_wise(*parts, "\x1f") if len(parts) > 1 else parts[0]
    values = np.asarray(joined.to_numpy(zero_copy_only=False), dtype=object)
    return np.asarray(pd.util.hash_array(values, encoding="utf8", hash_key=salt, categorize=False))


def _lasting(n: int, dtype: type[np.generic]) -> np.ndarray:
    """An array that lives for the run, in memory of its own (an anonymous map) when it is big.

    Kept out of the malloc heap, where batch-sized temporaries come and go around it, so its
    memory goes back to the system when it is freed (merged into a bigger run), instead of
    leaving a hole that grows the heap.
    """
    size = n * np.dtype(dtype).itemsize
    if size < 1 << 20:
        return np.empty(n, dtype=dtype)
    return np.frombuffer(mmap.mmap(-1, size), dtype=dtype)


def _merge(big: np.ndarray, small: np.ndarray) -> np.ndarray:
    """Two sorted runs as one sorted run (``small`` slots in before equal keys of ``big``)."""
    out = _lasting(len(big) + len(small), big.dtype.type)
    at = np.searchsorted(big, small) + np.arange(len(small))
    taken = np.zeros(len(out), dtype=bool)
    taken[at] = True
    out[at] = small
    out[~taken] = big
    return out


def _mix(h: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijection that spreads every input bit over the output."""
    h = (h ^ (h >> np.uint64(30))) * _M1
    h = (h ^ (h >> np.uint64(27))) * _M2
    return np.asarray(h ^ (h >> np.uint64(31)), dtype=np.uint64)


def row_hashes(columns: list[pa.Array]) -> np.ndarray:
    """One uint64 per row from several columns, for sets held within a run (not stable on disk).

    Equal values give equal hashes whatever their type's batch or neighbours; null is a value of
    its own. Text is hashed a 64-bit word at a time over Arrow's buffers: no Python objects.
    """
    n = len(columns[0]) if columns else 0
    out = np.full(n, _SEED, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for col in columns:
            out = _mix(out * _M1 + _column_hashes(col))
    return out


def _column_hashes(col: pa.Array) -> np.ndarray:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_integer(col.type) and not pa.types.is_uint64(col.type):
        values = np.asarray(pc.fill_null(pc.cast(col, pa.int64()), 0).to_numpy(zero_copy_only=False))
        hashed = _mix(values.astype(np.uint64) ^ _SEED)
    else:
        if not pa.types.is_string(col.type):
            col = pc.cast(col, pa.string())
        hashed = _text_hashes(col)
    if col.null_count:
        hashed[~bools(col.is_valid())] = _NULL
    return hashed


def _text_hashes(col: pa.Array) -> np.ndarray:
    n = len(col)
    offsets, raw = text_buffers(col)
    # The batch's bytes plus 8 zeros, seen as one little-endian word starting at every byte.
    data = np.concatenate([raw, np.zeros(8, dtype=np.uint8)])
    words = as_strided(data, shape=(len(data) - 7, 8), strides=(1, 1)).view(np.uint64)[:, 0]
    starts = offsets[:-1]
    lengths = np.diff(offsets)
    nwords = (lengths + 7) // 8
    h = _mix(_SEED ^ lengths.astype(np.uint64))
    for w in range(int(nwords.max()) if n else 0):
        rows = np.flatnonzero(nwords > w)
        word = words[starts[rows] + 8 * w] & _TAIL[np.minimum(lengths[rows] - 8 * w, 8)]
        h[rows] = _mix(h[rows] ^ word)
    return h


class KeySet:
    """A growing set of uint64 hashes held as a few sorted runs, optionally behind a bitmap filter.

    A batch is sorted once; its sorted keys walk each run in order (a cache-friendly binary
    search). With ``filter_bits``, a bitmap keeps one bit per slice of the hash space: a key
    whose bit is clear is new without any search. At 2**25 bits (4 MB) and 8M keys, four
    keys in five skip the search. Runs that reach ``max_run`` keys stop merging and are
    packed to six bytes a key (``_PackedRun``).
    """

    def __init__(self, filter_bits: int = 0, max_run: int = _MAX_RUN) -> None:
        self._runs: list[np.ndarray] = []
        self._packed: list[_PackedRun] = []
        self._max_run = max_run
        self._filter_bits = filter_bits
        self._filter: np.ndarray | None = None
        self.size = 0

    def add_new(self, keys: np.ndarray) -> np.ndarray:
        """Add ``keys``; return a mask of those seen for the first time (first occurrence in the batch wins)."""
        n = len(keys)
        if n == 0:
            return np.zeros(0, dtype=bool)
        order = np.argsort(keys, kind="stable")  # equal keys keep their batch order: the first wins
        ordered = keys[order]
        new = np.ones(n, dtype=bool)
        new[1:] = ordered[1:] != ordered[:-1]
        new[new] = self._insert(ordered[new])
        first = np.zeros(n, dtype=bool)
        first[order[new]] = True
        return first

    def add(self, keys: np.ndarray) -> None:
        """Add ``keys`` (any order, repeats allowed)."""
        if len(keys):
            self._insert(np.unique(keys))

    def _insert(self, ordered: np.ndarray) -> np.ndarray:
        """Add sorted distinct keys; return the mask of those not held before."""
        new = np.ones(len(ordered), dtype=bool)
        if self._filter_bits:
            if self._filter is None:
                self._filter = np.zeros(1 << (self._filter_bits - 3), dtype=np.uint8)
            slot = ordered >> np.uint64(64 - self._filter_bits)
            byte, bit = (slot >> np.uint64(3)).astype(np.intp), (slot & np.uint64(7)).astype(np.uint8)
            maybe = np.flatnonzero(((self._filter[byte] >> bit) & 1).astype(bool))
        else:
            maybe = np.arange(len(ordered))
        if len(maybe) and self.size:
            candidates = ordered[maybe]
            seen = np.zeros(len(maybe), dtype=bool)
            for run in self._runs:
                pos = np.minimum(np.searchsorted(run, candidates), len(run) - 1)
                seen |= run[pos] == candidates
            for packed in self._packed:
                seen |= packed.contains(candidates)
            new[maybe[seen]] = False
        if self._filter is not None:
            np.bitwise_or.at(self._filter, byte[new], np.left_shift(np.uint8(1), bit[new]))
        self._push(ordered[new])
        return new

    def __iter__(self) -> Iterator[np.ndarray]:
        """The keys, a sorted run at a time."""
        yield from (p.keys() for p in self._packed)
        yield from self._runs

    def _push(self, run: np.ndarray) -> None:
        if len(run) == 0:
            return
        self.size += len(run)
        self._runs.append(run)
        # Merge while the newest run is at least half the size of the one before: log(n) runs.
        # Runs stop growing at max_run keys: merging two big runs would need both plus the result
        # in memory at once, and a few more binary searches per batch cost less than that peak.
        while len(self._runs) > 1 and len(self._runs[-1]) * 2 >= len(self._runs[-2]):
            last = self._runs.pop()
            prev = self._runs.pop()
            if len(prev) + len(last) >= self._max_run:  # full: packed straight from the two runs
                self._packed.append(_PackedRun(prev, last))
            else:
                self._runs.append(_merge(prev, last))
        if self._runs and len(self._runs[-1]) >= self._max_run:
            self._packed.append(_PackedRun(self._runs.pop()))


class _PackedRun:
    """A sorted run at six bytes a key: the top 16 bits of a key are implied by its bucket.

    ``starts[b]:starts[b + 1]`` are the keys whose top 16 bits are ``b``; each keeps its low
    48 bits as a uint16 and a uint32. A lookup is a binary search within the key's bucket,
    vectorised over the batch.
    """

    _BUCKETS = 1 << 16

    def __init__(self, keys: np.ndarray, more: np.ndarray | None = None) -> None:
        """Pack sorted ``keys``, merged with the sorted ``more`` (no key in both) when given.

        The merged run is never held as uint64: each key is written straight to its place.
        """
        more = np.zeros(0, dtype=np.uint64) if more is None else more
        self.size = len(keys) + len(more)
        bounds = np.arange(self._BUCKETS + 1, dtype=np.uint64) << np.uint64(48)  # the last wraps to 0
        self.starts = (np.searchsorted(keys, bounds) + np.searchsorted(more, bounds)).astype(np.uint32)
        self.starts[-1] = self.size
        self.mid = _lasting(self.size, np.uint16)
        self.low = _lasting(self.size, np.uint32)
        for run, other in ((keys, more), (more, keys)):
            for at in range(0, len(run), _PACK_CHUNK):  # small temporaries: packing must not raise the peak
                part = run[at : at + _PACK_CHUNK]
                place = np.searchsorted(other, part) + np.arange(at, at + len(part))
                self.mid[place] = part >> np.uint64(32)
                self.low[place] = part

    def _low48(self, pos: np.ndarray) -> np.ndarray:
        return np.asarray((self.mid[pos].astype(np.uint64) << np.uint64(32)) | self.low[pos], dtype=np.uint64)

    def contains(self, keys: np.ndarray) -> np.ndarray:
        bucket = (keys >> np.uint64(48)).astype(np.intp)
        lo, end = self.starts[bucket].astype(np.intp), self.starts[bucket + 1].astype(np.intp)
        hi = end.copy()
        want = keys & np.uint64((1 << 48) - 1)
        # Find the first position in the bucket whose low bits are >= the key's.
        while True:
            active = lo < hi
            if not active.any():
                break
            mid = (lo + hi) >> 1
            below = self._low48(np.minimum(mid, self.size - 1)) < want
            lo = np.where(active & below, mid + 1, lo)
            hi = np.where(active & ~below, mid, hi)
        return np.asarray((lo < end) & (self._low48(np.minimum(lo, self.size - 1)) == want), dtype=bool)

    def keys(self) -> np.ndarray:
        bounds = self.starts.astype(np.int64)
        counts: np.ndarray = bounds[1:] - bounds[:-1]
        top = np.repeat(np.arange(self._BUCKETS, dtype=np.uint64), counts) << np.uint64(48)
        return np.asarray(top | self._low48(np.arange(self.size)), dtype=np.uint64)


class DistinctCounter:
    """Distinct values: exact up to ``exact_limit`` keys, then a HyperLogLog estimate (±1%)."""

    _P = 14  # 16,384 registers: about 0.8% standard error

    def __init__(self, exact_limit: int = 200_000) -> None:
        self.exact_limit = exact_limit
        self._exact: KeySet | None = KeySet()
        self._registers = np.zeros(1 << self._P, dtype=np.uint8)

    def add(self, keys: np.ndarray) -> None:
        if len(keys) == 0:
            return
        if self._exact is None:
            self._observe(keys)
            return
        self._exact.add(keys)
        if self._exact.size > self.exact_limit:
            # Past the limit: the registers start from every key held so far, then the set goes.
            for run in self._exact:
                self._observe(run)
            self._exact = None

    def _observe(self, keys: np.ndarray) -> None:
        idx = (keys >> np.uint64(64 - self._P)).astype(np.intp)
        rest = (keys << np.uint64(self._P)) | np.uint64(1 << (self._P - 1))
        # Rank = leading zeros of the remaining bits + 1.
        rank = (64 - np.floor(np.log2(rest.astype(np.float64))).astype(np.int64)).astype(np.uint8)
        np.maximum.at(self._registers, idx, rank)

    @property
    def exact(self) -> bool:
        return self._exact is not None

    def count(self) -> int:
        if self._exact is not None:
            return self._exact.size
        m = float(len(self._registers))
        alpha = 0.7213 / (1 + 1.079 / m)
        estimate = alpha * m * m / float(np.sum(np.power(2.0, -self._registers.astype(np.float64))))
        zeros = int(np.count_nonzero(self._registers == 0))
        if estimate <= 2.5 * m and zeros:
            estimate = m * np.log(m / zeros)
        return round(estimate)
