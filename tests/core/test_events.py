"""Event rules (conditions, ratios, scales, one event per row) and dedupe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from importer.source import readers

from .helpers import T0, column, csv_file, mapping_doc, ms, run, write_rows

T1 = "2025-01-01T00:10:00Z"


def events(out: Any) -> list[tuple[str, str, int]]:
    return [(p["sessionId"], p["state"], p["occurredTimestamp"]) for p in out.payloads]


def test_one_row_gives_started_and_viewed_when_present(tmp_path: Path) -> None:
    data = csv_file(tmp_path / "p.csv", "sid,cid,ts,vt", f"a,1,{T0},{T1}", f"b,2,{T0},", f"c,3,{T0},{T1}")
    doc = mapping_doc(
        events=[
            {"state": "STARTED", "timestamp": "ts"},
            {"state": "VIEWED", "timestamp": "vt", "when": {"column": "vt", "present": True}},
        ]
    )
    out = run(doc, [data], tmp_path)
    t0, t1 = ms("2025-01-01T00:00:00+00:00"), ms("2025-01-01T00:10:00+00:00")
    # Ordered by row, then by rule.
    assert events(out) == [
        ("a", "STARTED", t0),
        ("a", "VIEWED", t1),
        ("b", "STARTED", t0),
        ("c", "STARTED", t0),
        ("c", "VIEWED", t1),
    ]
    assert dict(out.report.events) == {"STARTED": 3, "VIEWED": 2}
    assert out.invalid == []


# README: "A test on a missing or unparseable value is false."
WATCH = ("sid,cid,ts,pct", f"a,1,{T0},75", f"b,1,{T0},50", f"c,1,{T0},10", f"d,1,{T0},", f"e,1,{T0},n/a")


@pytest.mark.parametrize(
    ("when", "viewed"),
    [
        ({"column": "pct", "gte": 50}, ["a", "b"]),
        ({"column": "pct", ">=": 50}, ["a", "b"]),
        ({"column": "pct", "gt": 50}, ["a"]),
        ({"column": "pct", "<": 50}, ["c"]),
        ({"column": "pct", "lte": 50}, ["b", "c"]),
        ({"column": "pct", "equals": 10}, ["c"]),
        ({"column": "pct", "==": "n/a"}, ["e"]),
        ({"column": "pct", "in": ["75", "10"]}, ["a", "c"]),
        pytest.param({"column": "pct", "not_in": ["75", "10"]}, ["b", "e"]),
        pytest.param({"column": "pct", "!=": "n/a"}, ["a", "b", "c"]),
        ({"column": "pct", "!=": 10}, ["a", "b"]),
        ({"column": "pct", "matches": "^[0-9]+$"}, ["a", "b", "c"]),
        ({"column": "pct", "missing": True}, ["d"]),
        ({"column": "pct", "present": True}, ["a", "b", "c", "e"]),
        ({"not": {"column": "pct", "gte": 50}}, ["c", "d", "e"]),
        ({"any": [{"column": "pct", "gt": 60}, {"column": "pct", "lt": 20}]}, ["a", "c"]),
    ],
)
def test_conditions(tmp_path: Path, when: dict[str, Any], viewed: list[str]) -> None:
    data = csv_file(tmp_path / "p.csv", *WATCH)
    doc = mapping_doc(events=[{"state": "VIEWED", "timestamp": "ts", "when": when}])
    out = run(doc, [data], tmp_path)
    assert column(out, "sessionId") == viewed
    assert out.invalid == []
    assert out.skipped == {}


def test_ratio_with_coalesce_fallback_for_the_denominator(tmp_path: Path) -> None:
    data = csv_file(
        tmp_path / "p.csv",
        "sid,cid,ts,playhead,duration,source_duration",
        f"half,1,{T0},5000,10000,",
        f"less,1,{T0},4999,10000,99999",
        f"fallback,1,{T0},6000,,10000",
        f"fallback-short,1,{T0},4000,,10000",
        f"no-duration,1,{T0},6000,,",
        f"zero,1,{T0},6000,0,",
        f"no-playhead,1,{T0},,10000,",
    )
    doc = mapping_doc(
        events=[
            {"state": "STARTED", "timestamp": "ts"},
            {
                "state": "VIEWED",
                "timestamp": "ts",
                "when": {"ratio": ["playhead", {"coalesce": ["duration", "source_duration"]}], "gte": 0.5},
            },
        ]
    )
    out = run(doc, [data], tmp_path)
    viewed = [p["sessionId"] for p in out.payloads if p["state"] == "VIEWED"]
    assert viewed == ["half", "fallback"]
    assert dict(out.report.events) == {"STARTED": 7, "VIEWED": 2}


@pytest.mark.parametrize(
    ("scale", "threshold", "viewed"),
    [
        ("fraction", 0.5, ["f60", "p60", "p100", "f1"]),
        ("percent", 50, ["f60", "p60", "p100", "f1"]),
    ],
)
def test_scale_fraction_or_percent(tmp_path: Path, scale: str, threshold: float, viewed: list[str]) -> None:
    # Values up to 1 are fractions, above 1 percents: 0.6 and 60 are the same share.
    data = csv_file(
        tmp_path / "p.csv",
        "sid,cid,ts,pv",
        f"f60,1,{T0},0.6",
        f"f40,1,{T0},0.4",
        f"p60,1,{T0},60",
        f"p40,1,{T0},40",
        f"p100,1,{T0},100",
        f"f1,1,{T0},1",
        f"none,1,{T0},",
    )
    doc = mapping_doc(
        events=[{"state": "VIEWED", "timestamp": "ts", "when": {"column": "pv", "scale": scale, "gte": threshold}}]
    )
    out = run(doc, [data], tmp_path)
    assert column(out, "sessionId") == viewed


def test_one_event_per_row_state_from_a_column(tmp_path: Path) -> None:
    data = csv_file(
        tmp_path / "p.csv",
        "sid,cid,ts,ev",
        f"a,1,{T0},video_start",
        f"a,1,{T1},video_progress",
        f"a,1,{T1},Video_Complete",
        f"b,1,{T0},",
        f"b,1,{T0},video_start",
    )
    state = {
        "column": "ev",
        "map": {"video_start": "STARTED", "video_complete": "VIEWED"},
        "case_insensitive": True,
        "unmapped": "skip",
    }
    out = run(mapping_doc(events=[{"state": state, "timestamp": "ts", "name": "ga4"}]), [data], tmp_path)
    t0, t1 = ms("2025-01-01T00:00:00+00:00"), ms("2025-01-01T00:10:00+00:00")
    assert events(out) == [("a", "STARTED", t0), ("a", "VIEWED", t1), ("b", "STARTED", t0)]
    assert out.skipped == {"events[0] ga4: state not mapped": 2}
    assert out.invalid == []


def test_one_event_per_row_unmapped_rows_are_skipped_by_default(tmp_path: Path) -> None:
    data = csv_file(tmp_path / "p.csv", "sid,cid,ts,ev", f"a,1,{T0},video_start", f"a,1,{T1},video_progress")
    state = {"column": "ev", "map": {"video_start": "STARTED", "video_complete": "VIEWED"}}
    out = run(mapping_doc(events=[{"state": state, "timestamp": "ts"}]), [data], tmp_path)
    assert [p["state"] for p in out.payloads] == ["STARTED"]
    assert out.invalid == []
    assert out.skipped == {"events[0] rule 1: state not mapped": 1}


def test_dedupe_default_keeps_the_first(tmp_path: Path) -> None:
    data = csv_file(
        tmp_path / "p.csv",
        "sid,cid,ts",
        f"a,1,{T0}",
        f"a,2,{T1}",
        f"b,3,{T1}",
        f"a,4,{T1}",
    )
    out = run(mapping_doc(), [data], tmp_path)
    assert [(p["sessionId"], p["contactId"]) for p in out.payloads] == [("a", 1), ("b", 3)]
    assert out.report.duplicates == 2
    assert out.skipped == {"duplicate event (dedupe)": 2}


def test_dedupe_is_per_state_by_default(tmp_path: Path) -> None:
    data = csv_file(tmp_path / "p.csv", "sid,cid,ts,vt", f"a,1,{T0},{T1}", f"a,1,{T0},{T1}")
    doc = mapping_doc(events=[{"state": "STARTED", "timestamp": "ts"}, {"state": "VIEWED", "timestamp": "vt"}])
    out = run(doc, [data], tmp_path)
    assert [p["state"] for p in out.payloads] == ["STARTED", "VIEWED"]
    assert out.report.duplicates == 2


def test_dedupe_on_chosen_keys_and_off(tmp_path: Path) -> None:
    data = csv_file(tmp_path / "p.csv", "sid,cid,ts,vt", f"a,1,{T0},{T1}", f"a,2,{T0},{T1}")
    two = [{"state": "STARTED", "timestamp": "ts"}, {"state": "VIEWED", "timestamp": "vt"}]
    by_session = run(mapping_doc(events=two, dedupe=["sessionId"]), [data], tmp_path)
    assert [(p["state"], p["contactId"]) for p in by_session.payloads] == [("STARTED", 1)]
    assert by_session.report.duplicates == 3
    by_contact = run(mapping_doc(events=two, dedupe={"keys": ["contactId", "state"]}), [data], tmp_path)
    assert len(by_contact.payloads) == 4
    off = run(mapping_doc(events=two, dedupe=False), [data], tmp_path)
    assert len(off.payloads) == 4
    assert off.report.duplicates == 0


def test_dedupe_across_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "_CSV_BLOCK_BYTES", 128)
    rows = [{"sid": f"s{i % 10}", "cid": i + 1, "ts": T0} for i in range(40)]
    data = write_rows(tmp_path / "p.csv", rows)
    out = run(mapping_doc(input={"batch_rows": 3}), [data], tmp_path)
    assert [(p["sessionId"], p["contactId"]) for p in out.payloads] == [(f"s{i}", i + 1) for i in range(10)]
    assert out.report.duplicates == 30


def test_dedupe_across_files(tmp_path: Path) -> None:
    first = write_rows(tmp_path / "a.csv", [{"sid": "x", "cid": 1, "ts": T0}, {"sid": "y", "cid": 2, "ts": T0}])
    second = write_rows(tmp_path / "b.parquet", [{"sid": "y", "cid": 3, "ts": T0}, {"sid": "z", "cid": 4, "ts": T0}])
    out = run(mapping_doc(), [first, second], tmp_path)
    assert [(p["sessionId"], p["contactId"]) for p in out.payloads] == [("x", 1), ("y", 2), ("z", 4)]
    assert out.report.duplicates == 1
    assert out.report.files == 2


def test_an_invalid_event_does_not_take_the_dedupe_slot(tmp_path: Path) -> None:
    data = csv_file(tmp_path / "p.csv", "sid,cid,ts", "a,1,yesterday", f"a,2,{T0}")
    out = run(mapping_doc(), [data], tmp_path)
    assert [(p["sessionId"], p["contactId"]) for p in out.payloads] == [("a", 2)]
    assert out.report.duplicates == 0
    assert [r["row_number"] for r in out.invalid] == [1]


def test_value_subject_in_a_condition(tmp_path: Path) -> None:
    data = csv_file(tmp_path / "p.csv", "sid,cid,ts,a,b", f"x,1,{T0},,7", f"y,1,{T0},3,", f"z,1,{T0},,")
    when = {"value": {"coalesce": ["a", "b"]}, "gt": 5}
    out = run(mapping_doc(events=[{"state": "VIEWED", "timestamp": "ts", "when": when}]), [data], tmp_path)
    assert column(out, "sessionId") == ["x"]


def test_a_share_written_with_a_percent_sign_is_a_percent(tmp_path: Path) -> None:
    # "0.5%" is half a percent, not half the media; "n/a" gives no quartile and is counted.
    data = csv_file(
        tmp_path / "p.csv",
        "sid,cid,ts,pv",
        f"a,1,{T0},62%",
        f"b,1,{T0},0.5%",
        f"c,1,{T0},100 %",
        f"d,1,{T0},n/a",
        f"e,1,{T0},0.5",
    )
    doc = mapping_doc(events=[{"type": "percent", "timestamp": "ts", "percent": {"value": "pv"}}])
    out = run(doc, [data], tmp_path)
    reached: dict[str, list[int]] = {}
    for p in out.payloads:
        reached.setdefault(p["sessionId"], []).append(p["playedPercent"])
    assert reached == {"a": [0, 25, 50], "b": [0], "c": [0, 25, 50, 75, 100], "e": [0, 25, 50]}
    assert out.skipped == {"events[0] percent rule 1: share is not a number": 1}


def test_a_condition_reads_a_percent_sign(tmp_path: Path) -> None:
    data = csv_file(tmp_path / "p.csv", "sid,cid,ts,pv", f"a,1,{T0},62%", f"b,1,{T0},0.9%", f"c,1,{T0},0.9")
    for scale, threshold in (("fraction", 0.5), ("percent", 50)):
        doc = mapping_doc(
            events=[{"state": "VIEWED", "timestamp": "ts", "when": {"column": "pv", "scale": scale, "gte": threshold}}]
        )
        assert column(run(doc, [data], tmp_path), "sessionId") == ["a", "c"]
