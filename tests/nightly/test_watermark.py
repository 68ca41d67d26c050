"""Watermarks: ``--since last`` keeps the events at or after the previous run's newest event time,
minus ``--lookback``: late rows inside the window are sent, older ones counted and left out, and
rows in the overlap that were sent before are not sent again."""

from __future__ import annotations

import pyarrow as pa

from .conftest import Nights
from .helpers import assert_received_once, canonical, ms_iso, query, requests_made, timed_events, write

HOUR_MS = 3_600_000


def _with_times(table: pa.Table, started: list[int], viewed: list[int | None]) -> pa.Table:
    """``table`` with its started_at / viewed_at replaced (ISO 8601 text, as exports write them)."""
    for name, values in (("started_at", started), ("viewed_at", viewed)):
        text = [ms_iso(v) if v is not None else "" for v in values]
        table = table.set_column(table.schema.get_field_index(name), name, pa.array(text, pa.string()))
    return table


def _watermark(night: Nights) -> int:
    ((value,),) = query(night.state, "SELECT value FROM state WHERE name = 'watermark_ms'")
    return int(value)


def test_since_last_sends_new_and_late_rows_once_and_counts_the_too_old(night: Nights) -> None:
    a = canonical(20, seed=71, prefix="a")
    write(a, night.inputs / "2026-11-01-a.csv")

    # Night 1: no watermark yet, so everything is read (with a warning), and the watermark is set.
    r = night.run("--since", "last", "--lookback", "6")
    assert r.code == 0, r.err
    assert "no earlier run recorded a watermark" in r.err
    a_events = timed_events(a)
    assert_received_once(night.sim, set(a_events))
    w = max(a_events.values())
    assert _watermark(night) == w
    night.sim.client.reset()

    # Night 2: a new export, the last hours of yesterday included again.
    fresh = _with_times(
        canonical(7, seed=72, prefix="d"),
        started=[w + 1 * HOUR_MS, w + 2 * HOUR_MS, w + 3 * HOUR_MS,  # newer than the watermark
                 w - 2 * HOUR_MS, w - 5 * HOUR_MS,  # late, inside the 6 h lookback
                 w - 7 * HOUR_MS, w - 240 * HOUR_MS],  # too old: outside the lookback
        viewed=[w + 1 * HOUR_MS + 600_000, None, None, w - 2 * HOUR_MS + 600_000, None, None, None],
    )  # fmt: skip
    overlap = a.slice(a.num_rows - 3, 3)  # yesterday's last rows, re-exported unchanged
    write(pa.concat_tables([fresh, overlap]), night.inputs / "2026-11-02-d.csv")
    cutoff = w - 6 * HOUR_MS
    fresh_events = timed_events(fresh)
    overlap_events = timed_events(overlap)
    want = {k for k, ts in fresh_events.items() if ts >= cutoff}
    too_old = [k for k, ts in {**fresh_events, **overlap_events}.items() if ts < cutoff]
    again = [k for k, ts in overlap_events.items() if ts >= cutoff]
    assert len(want) == 7 and len(too_old) >= 2 and again  # the case covers what it claims to

    r = night.run("--since", "last", "--lookback", "6")
    assert r.code == 0, r.err
    assert_received_once(night.sim, want)
    s = night.summary()
    assert s["events_before_since"] == len(too_old)
    assert s["counts"]["skipped"] == len(again)  # in the overlap, already sent: not sent again
    assert s["counts"]["sent"] == len(want)
    assert s["files_skipped_unchanged"] == 1  # file A: unchanged, not read at all
    assert _watermark(night) == max(fresh_events.values())
    assert f"{len(too_old)} events older than --since (minus the lookback) left out" in r.out
    night.sim.client.reset()

    # Night 3: nothing new.
    r = night.run("--since", "last", "--lookback", "6")
    assert r.code == 0, r.err
    assert requests_made(night.sim) == 0


def test_since_an_explicit_time(night: Nights) -> None:
    a = canonical(30, seed=73, prefix="a")
    write(a, night.inputs / "2026-11-01-a.csv")
    events = timed_events(a)
    since = sorted(events.values())[len(events) // 2]
    want = {k for k, ts in events.items() if ts >= since}
    r = night.run("--since", ms_iso(since), "--lookback", "0")
    assert r.code == 0, r.err
    assert_received_once(night.sim, want)
    assert night.summary()["events_before_since"] == len(events) - len(want)


def test_since_rejects_an_unreadable_time(night: Nights) -> None:
    write(canonical(3, seed=74, prefix="a"), night.inputs / "2026-11-01-a.csv")
    r = night.run("--since", "yesterday-ish")
    assert r.code == 2
    assert "--since: cannot read 'yesterday-ish'" in r.err
    assert requests_made(night.sim) == 0
