"""Timestamps → int milliseconds UTC: ISO 8601, naive values in a zone, epoch units, strptime formats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from importer.mapping.coerce import TimestampFormat, to_epoch_ms

from .helpers import column, mapping_doc, ms, run, write_rows, write_text

# An unparseable value is reported, and then the event lacks its required time.
# One problem, one message: the missing timestamp is the one that did not parse.
BAD_TS = "occurredTimestamp: not a timestamp in the expected format"


def stamps(
    tmp_path: Path, values: list[Any], *, name: str = "p.csv", zone: str | None = None, **rule: Any
) -> tuple[list[Any], Any]:
    """The occurredTimestamp of each row (in row order), and the invalid records."""
    rows = [{"sid": f"s{i}", "cid": 1, "ts": v} for i, v in enumerate(values)]
    data = write_rows(tmp_path / name, rows)
    top: dict[str, Any] = {"timezone": zone} if zone else {}
    doc = mapping_doc(events=[{"state": "STARTED", "timestamp": {"column": "ts", **rule}}], **top)
    out = run(doc, [data], tmp_path)
    by_sid = dict(zip(column(out, "sessionId"), column(out, "occurredTimestamp"), strict=True))
    return [by_sid.get(f"s{i}") for i in range(len(values))], out.invalid


def test_iso_with_z_and_offsets(tmp_path: Path) -> None:
    values = [
        "2025-03-01T12:34:56Z",
        "2025-03-01T12:34:56.789Z",
        "2025-03-01T14:34:56+02:00",
        "2025-03-01T07:04:56.5-05:30",
        "2025-03-01T14:34:56+0200",
        "2025-03-01T07:34:56-05",
        "2025-03-01 12:34:56 UTC",
        "2025-03-01T12:34Z",
    ]
    got, invalid = stamps(tmp_path, values, zone="America/New_York")
    base = ms("2025-03-01T12:34:56+00:00")
    assert got == [base, base + 789, base, base + 500, base, base, base, base - 56_000]
    assert invalid == []


def test_naive_values_are_in_the_mapping_time_zone(tmp_path: Path) -> None:
    values = [
        "2025-07-01 10:00:00",  # EDT, UTC-4
        "2025-01-15T10:00:00",  # EST, UTC-5
        "2025-07-01T10:00:00.250",
        "2025-07-01",  # a date is its midnight
        "2025-03-09 02:30:00",  # in the spring-forward gap: moved forward to 03:00 EDT
    ]
    got, invalid = stamps(tmp_path, values, zone="America/New_York")
    assert got == [
        ms("2025-07-01T14:00:00+00:00"),
        ms("2025-01-15T15:00:00+00:00"),
        ms("2025-07-01T14:00:00.250+00:00"),
        ms("2025-07-01T04:00:00+00:00"),
        ms("2025-03-09T07:00:00+00:00"),
    ]
    assert invalid == []


def test_a_timestamp_rule_may_name_its_own_zone(tmp_path: Path) -> None:
    got, _ = stamps(tmp_path, ["2025-07-01 10:00:00"], zone="America/New_York", timezone="Europe/Paris")
    assert got == [ms("2025-07-01T08:00:00+00:00")]


def test_naive_value_in_the_repeated_dst_hour_is_accepted(tmp_path: Path) -> None:
    got, invalid = stamps(tmp_path, ["2025-11-02 01:30:00"], zone="America/New_York")
    assert invalid == []
    assert got == [ms("2025-11-02T01:30:00-04:00")]  # the earliest, as for typed columns


def test_typed_naive_timestamp_column_in_the_repeated_hour_takes_the_earliest() -> None:
    arr = pa.array(["2025-11-02 01:30:00"]).cast(pa.timestamp("s"))
    out, bad = to_epoch_ms(arr, TimestampFormat(timezone="America/New_York"))
    assert out.to_pylist() == [ms("2025-11-02T01:30:00-04:00")]
    assert bad.to_pylist() == [False]


@pytest.mark.parametrize(
    ("unit", "value", "expected"),
    [
        ("s", "1735689600", 1_735_689_600_000),
        ("s", "1735689600.5", 1_735_689_600_500),
        ("ms", "1735689600123", 1_735_689_600_123),
        ("us", "1735689600123456", 1_735_689_600_123),
        ("ns", "1735689600000000000", 1_735_689_600_000),
        ("s", "946684800", 946_684_800_000),
    ],
)
def test_epoch_with_explicit_unit(tmp_path: Path, unit: str, value: str, expected: int) -> None:
    got, invalid = stamps(tmp_path, [value], unit=unit)
    assert (got, invalid) == ([expected], [])


def test_epoch_unit_auto_by_magnitude(tmp_path: Path) -> None:
    values = ["1735689600", "1735689600123", "1735689600123000", "1735689600000000000", "2025-01-01T00:00:00Z"]
    got, invalid = stamps(tmp_path, values)
    assert got == [1_735_689_600_000, 1_735_689_600_123, 1_735_689_600_123, 1_735_689_600_000, 1_735_689_600_000]
    assert invalid == []


@pytest.mark.parametrize("name", ["p.parquet", "p.jsonl"])
def test_epoch_from_numeric_columns(tmp_path: Path, name: str) -> None:
    values = [1735689600, 1735689600123, 1735689600123000, 1735689600.25]
    got, _ = stamps(tmp_path, values, name=name)
    assert got == [1_735_689_600_000, 1_735_689_600_123, 1_735_689_600_123, 1_735_689_600_250]


def test_epoch_nanoseconds_text_are_exact(tmp_path: Path) -> None:
    got, _ = stamps(tmp_path, ["1735689600001000000"], unit="ns")
    assert got == [1_735_689_600_001]


def test_epoch_nanoseconds_int64_column(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"sid": ["a"], "cid": [1], "ts": pa.array([1_735_689_600_123_000_000], pa.int64())}), path)
    out = run(mapping_doc(events=[{"state": "STARTED", "timestamp": {"column": "ts", "unit": "ns"}}]), [path], tmp_path)
    assert column(out, "occurredTimestamp") == [1_735_689_600_123]


def test_custom_strptime_formats(tmp_path: Path) -> None:
    got, invalid = stamps(
        tmp_path,
        ["01/07/2025 10:00", "15/01/2025 10:00", "31/02/2025 10:00"],
        format="%d/%m/%Y %H:%M",
        zone="Europe/Paris",
    )
    assert got == [ms("2025-07-01T08:00:00+00:00"), ms("2025-01-15T09:00:00+00:00"), None]
    assert [(r["row_number"], r["field"], r["value"], r["error"]) for r in invalid] == [
        (3, "occurredTimestamp", "31/02/2025 10:00", BAD_TS)
    ]


def test_strptime_with_an_offset(tmp_path: Path) -> None:
    got, _ = stamps(tmp_path, ["01/07/2025 10:00 +0200"], format="%d/%m/%Y %H:%M %z", zone="America/New_York")
    assert got == [ms("2025-07-01T08:00:00+00:00")]


def test_unparseable_timestamps_are_invalid_records(tmp_path: Path) -> None:
    got, invalid = stamps(tmp_path, ["2025-01-01T00:00:00Z", "yesterday", "", "2025-13-01T00:00:00Z"])
    assert got == [1_735_689_600_000, None, None, None]
    assert [(r["row_number"], r["field"], r["value"], r["error"]) for r in invalid] == [
        (2, "occurredTimestamp", "yesterday", BAD_TS),
        (3, "occurredTimestamp", None, "occurredTimestamp: required field is missing"),
        (4, "occurredTimestamp", "2025-13-01T00:00:00Z", BAD_TS),
    ]


def test_typed_parquet_timestamps(tmp_path: Path) -> None:
    naive = pa.array(["2025-07-01 10:00:00"]).cast(pa.timestamp("ms"))
    aware = pa.array(["2025-07-01 10:00:00"]).cast(pa.timestamp("us")).cast(pa.timestamp("us", "UTC"))
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"sid": ["a"], "cid": [1], "naive": naive, "aware": aware}), path)
    doc = mapping_doc(
        events=[{"state": "STARTED", "timestamp": "naive"}, {"state": "VIEWED", "timestamp": "aware"}],
        timezone="America/New_York",
    )
    out = run(doc, [path], tmp_path)
    assert column(out, "occurredTimestamp") == [ms("2025-07-01T14:00:00+00:00"), ms("2025-07-01T10:00:00+00:00")]


def test_jsonl_naive_timestamps_are_in_the_mapping_zone(tmp_path: Path) -> None:
    got, _ = stamps(
        tmp_path, ["2025-07-01T10:00:00", "2025-07-01T10:00:00.123Z"], name="p.jsonl", zone="America/New_York"
    )
    assert got == [ms("2025-07-01T14:00:00+00:00"), ms("2025-07-01T10:00:00.123+00:00")]


def test_jsonl_timestamps_with_offsets_in_a_non_utc_mapping(tmp_path: Path) -> None:
    got, _ = stamps(
        tmp_path, ["2025-07-01T10:00:00+02:00", "2025-07-01T10:00:00Z"], name="p.jsonl", zone="America/New_York"
    )
    assert got == [ms("2025-07-01T08:00:00+00:00"), ms("2025-07-01T10:00:00+00:00")]


def test_jsonl_text_that_looks_like_a_date_stays_text(tmp_path: Path) -> None:
    data = write_text(
        tmp_path / "p.jsonl", '{"sid": "a", "cid": 1, "ts": "2025-01-01T00:00:00.000Z", "title": "2025-07-01"}\n'
    )
    out = run(mapping_doc({"mediaName": "title"}), [data], tmp_path)
    assert column(out, "mediaName") == ["2025-07-01"]
