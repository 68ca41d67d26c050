"""Three simulated nights over a growing folder: exactly the new events each night, nothing read
or sent on a night with nothing new; and the rule for rows that changed after they were sent."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

import importer.run.pipeline
import importer.source.readers

from .conftest import Nights
from .helpers import (
    append_rows,
    assert_received_once,
    canonical,
    expected,
    manifest,
    requests_made,
    scramble,
    write,
)


def _forbid_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to read a file's header or rows, or to count its rows, fails loudly."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an input file was read on a night with nothing new")

    for module, name in (
        (importer.run.pipeline, "iter_batches"),
        (importer.run.pipeline, "read_columns"),
        (importer.source.readers, "iter_batches"),
        (importer.source.readers, "read_columns"),
        (importer.source.readers, "open_binary"),
    ):
        monkeypatch.setattr(module, name, refuse)


def _two_nights(night: Nights) -> tuple[pa.Table, ...]:
    """Nights 1 and 2 of the story, with their assertions; the tables of A, B, B's new rows and C."""
    a = canonical(40, seed=11, prefix="a")
    b = canonical(30, seed=12, prefix="b")
    write(a, night.inputs / "2026-11-01-a.csv")
    write(b, night.inputs / "2026-11-01-b.csv")

    # Night 1: A and B, every event once.
    r = night.run()
    assert r.code == 0, r.err
    assert_received_once(night.sim, expected(a, b))
    s = night.summary()
    assert s["counts"]["sent"] == len(expected(a, b))
    assert (s["files_read"], s["files_skipped_unchanged"]) == (2, 0)
    assert set(manifest(night.state).values()) == {1} and len(manifest(night.state)) == 2
    night.sim.client.reset()

    # Night 2: C is new and B grew by appended rows: only those events go.
    b_more = canonical(12, seed=13, prefix="b-more")
    append_rows(night.inputs / "2026-11-01-b.csv", b_more)
    c = canonical(25, seed=14, prefix="c")
    write(c, night.inputs / "2026-11-02-c.csv")
    r = night.run()
    assert r.code == 0, r.err
    assert_received_once(night.sim, expected(b_more, c))
    s = night.summary()
    assert s["counts"]["sent"] == len(expected(b_more, c))
    assert s["counts"]["skipped"] == len(expected(b))  # B's old rows: re-read, recognised, not sent
    assert (s["files_read"], s["files_skipped_unchanged"]) == (2, 1)  # B and C read; A skipped
    assert s["changed_since_sent"] == 0
    assert len(manifest(night.state)) == 3 and set(manifest(night.state).values()) == {1}
    night.sim.client.reset()
    return a, b, b_more, c


def test_three_nights_send_exactly_what_is_new(night: Nights) -> None:
    _two_nights(night)

    # Night 3: nothing new: no request, every file skipped by its manifest entry.
    r = night.run()
    assert r.code == 0, r.err
    assert requests_made(night.sim) == 0
    s = night.summary()
    assert s["files_skipped_unchanged"] == 3
    assert s["files_read"] == 0
    assert s["rows"] == 0
    assert s["counts"] == {"sent": 0, "skipped": 0, "invalid": 0, "failed": 0, "not_sent": 0, "possibly_sent": 0}
    assert "3 input file(s) skipped" in r.out


def test_night_three_reads_no_byte_of_the_unchanged_files(night: Nights, monkeypatch: pytest.MonkeyPatch) -> None:
    _two_nights(night)

    # Night 3, with every byte of the three files replaced by others (same size, mtime kept) and any
    # reading of rows, headers or counts made to fail: only a run that reads nothing succeeds.
    for path in night.inputs.iterdir():
        scramble(path, keep_header=False)
    _forbid_reading(monkeypatch)
    r = night.run()
    assert r.code == 0, r.err
    assert requests_made(night.sim) == 0
    assert night.summary()["files_skipped_unchanged"] == 3


def test_changed_rows_are_counted_and_not_sent_again(night: Nights) -> None:
    a = canonical(30, seed=31, prefix="a")
    path = write(a, night.inputs / "2026-11-01-a.csv")
    assert night.run().code == 0
    night.sim.client.reset()

    # Re-exported with other media names on three rows (same sessions, so the same events), and
    # two rows appended.
    names = a.column("media_name").to_pylist()
    for i in (0, 5, 9):
        names[i] = f"Renamed {i}"
    changed = a.set_column(a.schema.get_field_index("media_name"), "media_name", pa.array(names, pa.string()))
    changed_events = len(expected(changed.slice(0, 1), changed.slice(5, 1), changed.slice(9, 1)))
    more = canonical(2, seed=32, prefix="a-more")
    write(pa.concat_tables([changed, more]), path)

    r = night.run()
    assert r.code == 0, r.err
    assert_received_once(night.sim, expected(more))  # the rule: an already-sent event is not re-sent
    s = night.summary()
    assert s["changed_since_sent"] == changed_events
    assert s["counts"]["skipped"] == len(expected(a))
    assert f"{changed_events} events were sent before with a different payload" in r.err
    assert f"warning: {changed_events} already-sent events have changed rows" in r.out


def test_the_summary_is_valid_json_for_monitors(night: Nights) -> None:
    write(canonical(5, seed=41, prefix="a"), night.inputs / "2026-11-01-a.csv")
    assert night.run().code == 0
    s = json.loads(night.results.with_name("results.csv.summary.json").read_text())
    for field in (
        "files_read",
        "files_skipped_unchanged",
        "events_before_since",
        "changed_since_sent",
        "leftovers_redriven",
        "exit_code",
    ):
        assert field in s
