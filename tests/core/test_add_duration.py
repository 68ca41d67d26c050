"""Timestamps computed as a time plus a duration (VIEWED = start + seconds watched), hashes of
normalised emails, and named skip rules: the constructs README documents for them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from importer.errors import MappingError
from importer.mapping.spec import parse_mapping

from .helpers import REPO, T0, column, csv_file, mapping_doc, ms, run

START = "2025-01-01T10:00:00Z"


def viewed_doc(duration: object) -> dict[str, object]:
    return mapping_doc(events=[{"state": "VIEWED", "timestamp": {"add": ["ts", duration]}}])


@pytest.mark.parametrize(
    ("unit", "amount", "added_ms"),
    [("s", "90", 90_000), ("s", "12.5", 12_500), ("ms", "250", 250), ("m", "2", 120_000), ("h", "1.5", 5_400_000)],
)
def test_a_duration_is_added_in_its_unit(tmp_path: Path, unit: str, amount: str, added_ms: int) -> None:
    data = csv_file(tmp_path / "p.csv", "sid,cid,ts,watched", f"a,1,{START},{amount}")
    out = run(viewed_doc({"column": "watched", "unit": unit}), [data], tmp_path)
    assert column(out, "occurredTimestamp") == [ms(START) + added_ms]


def test_several_durations_and_a_constant_add_up(tmp_path: Path) -> None:
    data = csv_file(tmp_path / "p.csv", "sid,cid,ts,watched,paused", f"a,1,{START},60,500", f"b,2,{START},1,0")
    doc = mapping_doc(
        events=[
            {
                "state": "VIEWED",
                "timestamp": {
                    "add": [
                        {"column": "ts"},
                        {"column": "watched", "unit": "s"},
                        {"column": "paused", "unit": "ms"},
                        {"const": -1, "unit": "m"},
                    ]
                },
            }
        ]
    )
    out = run(doc, [data], tmp_path)
    assert column(out, "occurredTimestamp") == [ms(START) + 500, ms(START) - 59_000]


def test_the_start_keeps_its_own_format_and_zone(tmp_path: Path) -> None:
    data = csv_file(tmp_path / "p.csv", "sid,cid,ts,watched", "a,1,01/01/2025 11:00,30")
    start = {"column": "ts", "format": "%d/%m/%Y %H:%M", "timezone": "Europe/Paris"}
    doc = mapping_doc(events=[{"state": "VIEWED", "timestamp": {"add": [start, {"column": "watched", "unit": "s"}]}}])
    out = run(doc, [data], tmp_path)
    assert column(out, "occurredTimestamp") == [ms(START) + 30_000]  # 11:00 in Paris is 10:00 UTC


def test_bad_parts_make_the_event_invalid_with_the_part_shown(tmp_path: Path) -> None:
    data = csv_file(
        tmp_path / "p.csv",
        "sid,cid,ts,watched",
        f"a,1,{START},ten",
        "b,2,yesterday,10",
        f"c,3,{START},",
        f"d,4,{T0},5",
    )
    out = run(viewed_doc({"column": "watched", "unit": "s"}), [data], tmp_path)
    assert column(out, "sessionId") == ["d"]
    found = {(r["row_number"], r["field"], r["value"]) for r in out.invalid}
    assert found == {
        (1, "occurredTimestamp", "ten"),
        (2, "occurredTimestamp", "yesterday"),
        (3, "occurredTimestamp", None),
    }
    reasons = {r["row_number"]: r["error"] for r in out.invalid}
    assert "the duration to add is not a number" in reasons[1]
    assert "not a timestamp in the expected format" in reasons[2]
    assert reasons[3] == "occurredTimestamp: required field is missing"  # no duration, no time


@pytest.mark.parametrize(
    ("timestamp", "problem"),
    [
        ({"add": ["ts"]}, "expected a timestamp and one or more durations"),
        ({"add": "ts"}, "expected a timestamp and one or more durations"),
        ({"add": ["ts", "watched"]}, "events[0].timestamp.add[1]: a duration needs a unit: ms, s, m or h"),
        ({"add": ["ts", 30]}, "events[0].timestamp.add[1]: a duration needs a unit: {const: 30, unit: s}"),
        ({"add": ["ts", {"column": "w", "unit": "d"}]}, "has an unknown unit 'd'"),
        ({"add": ["ts", {"column": "w", "unit": "s", "type": "string"}]}, "a duration is a number"),
        ({"add": ["ts", {"column": "w", "unit": "s"}], "timezone": "UTC"}, "put timezone on its first item"),
    ],
)
def test_add_is_validated_with_the_fix(timestamp: object, problem: str) -> None:
    doc = mapping_doc(events=[{"state": "VIEWED", "timestamp": timestamp}])
    with pytest.raises(MappingError) as info:
        parse_mapping(doc)
    assert problem in str(info.value)


def test_add_only_makes_timestamps() -> None:
    doc = mapping_doc({"sessionId": {"add": ["ts", {"column": "w", "unit": "s"}]}})
    with pytest.raises(MappingError, match="add makes a timestamp"):
        parse_mapping(doc)


def test_add_is_vectorised_over_a_large_batch(tmp_path: Path) -> None:
    lines = [f"s{i},1,{START},{i}" for i in range(50_000)]
    data = csv_file(tmp_path / "p.csv", "sid,cid,ts,watched", *lines)
    out = run(viewed_doc({"column": "watched", "unit": "s"}), [data], tmp_path)
    stamps = column(out, "occurredTimestamp")
    assert len(stamps) == 50_000
    assert stamps[0] == ms(START) and stamps[-1] == ms(START) + 49_999_000


def test_hash_of_a_normalised_email_gives_one_session(tmp_path: Path) -> None:
    # README: hash parts are taken as the file holds them; normalise them inside the hash.
    data = csv_file(
        tmp_path / "p.csv", "cid,ts,email,video", f"1,{T0},Alice@Example.com,v1", f"2,{T0},alice@example.com,v1"
    )
    raw = mapping_doc({"sessionId": {"hash": ["email", "video"]}}, dedupe=False)
    assert len(set(column(run(raw, [data], tmp_path), "sessionId"))) == 2
    normalised = mapping_doc({"sessionId": {"hash": [{"column": "email", "lower": True}, "video"]}}, dedupe=False)
    assert len(set(column(run(normalised, [data], tmp_path), "sessionId"))) == 1


def test_a_named_skip_rule_is_counted_under_its_name(tmp_path: Path) -> None:
    data = csv_file(tmp_path / "p.csv", "sid,cid,ts,email", f"a,1,{T0},", f"b,2,{T0},x@example.com")
    doc = mapping_doc(skip=[{"name": "anonymous viewers", "column": "email", "missing": True}])
    out = run(doc, [data], tmp_path)
    assert column(out, "sessionId") == ["b"]
    assert out.skipped == {"skip[0] anonymous viewers": 1}


def test_the_readme_examples_of_add_parse() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    examples = [line for line in readme.splitlines() if line.startswith("timestamp: {add:")]
    assert len(examples) == 2
    for line in examples:
        timestamp = yaml.safe_load(line)["timestamp"]
        mapping = parse_mapping(mapping_doc(events=[{"state": "VIEWED", "timestamp": timestamp}]))
        assert mapping.events[0].timestamp.kind == "add"
