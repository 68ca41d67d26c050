"""The run-wide key set (dedupe) and the distinct counters behind the report."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from importer.mapping.keyset import DistinctCounter, KeySet, row_hashes

SETTINGS = settings(max_examples=100, derandomize=True, deadline=None)
batches = st.lists(st.lists(st.integers(min_value=0, max_value=2**64 - 1), max_size=60), max_size=12)


def first_seen(batches: list[list[int]]) -> list[list[bool]]:
    """What a plain Python set says: a key is new the first time the run meets it."""
    seen: set[int] = set()
    out = []
    for batch in batches:
        flags = []
        for key in batch:
            flags.append(key not in seen)
            seen.add(key)
        out.append(flags)
    return out


@SETTINGS
@given(batches, st.sampled_from([0, 4, 25]), st.sampled_from([1 << 20, 16, 100]))
def test_add_new_agrees_with_a_python_set(batches: list[list[int]], filter_bits: int, max_run: int) -> None:
    # filter_bits=4 puts every key in one of 16 filter slots: the searches behind the filter run;
    # a small max_run packs runs early, so lookups in packed runs run too.
    keys = KeySet(filter_bits=filter_bits, max_run=max_run)
    got = [keys.add_new(np.array(b, dtype=np.uint64)).tolist() for b in batches]
    assert got == first_seen(batches)
    assert keys.size == len({k for b in batches for k in b})


def test_runs_merge_and_stop_at_the_cap() -> None:
    keys = KeySet(filter_bits=8, max_run=64)
    rng = np.random.default_rng(7)
    everything = rng.integers(0, 2**63, 2_000, dtype=np.int64).astype(np.uint64)
    for chunk in np.array_split(everything, 40):
        assert keys.add_new(chunk).all()
    runs = list(keys)
    assert sum(len(r) for r in runs) == 2_000 and all(np.all(r[1:] > r[:-1]) for r in runs)
    assert len(runs) < 40  # merged, but not into one run past the cap
    assert len(keys._packed) >= 2000 // 128  # full runs are packed
    assert not keys.add_new(everything[::-1]).any()


def test_first_occurrence_in_a_batch_wins() -> None:
    keys = KeySet(filter_bits=25)
    assert keys.add_new(np.array([5, 3, 5, 3, 9], dtype=np.uint64)).tolist() == [True, True, False, False, True]


def test_distinct_counter_is_exact_to_its_limit_then_estimates() -> None:
    counter = DistinctCounter(exact_limit=1_000)
    values = pa.array([f"session-{i}" for i in range(30_000)])
    counter.add(row_hashes([values.slice(0, 4_000)]))  # past the limit: the switch to the estimate
    assert not counter.exact
    for start in range(4_000, 30_000, 4_000):
        part = values.slice(start, 4_000)
        counter.add(row_hashes([part]))
        counter.add(row_hashes([part]))  # repeats do not count
    # The estimate starts from every key held before the switch: within 3% (HLL, 16k registers).
    assert abs(counter.count() - 30_000) < 900


def test_distinct_counter_small_sets_are_exact() -> None:
    counter = DistinctCounter()
    counter.add(row_hashes([pa.array(["a", "b", "a", None])]))
    counter.add(row_hashes([pa.array(["b", "c"])]))
    assert counter.exact and counter.count() == 4  # null is a value of its own
