"""mappings/ga4-bigquery-video.yaml on sample_data/ga4: planted sessions one by one, then the totals.

events_20250301.jsonl is BigQuery's own JSON export (every INT64 as a string, value records with
their four fields); events_20250302.jsonl was written by another tool (numbers as numbers, only the
field that is set).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from .helpers import NOT_FOUND, SAMPLES, Checked, check_preset, read_lookup, stable_id

DAY1 = SAMPLES / "ga4" / "events_20250301.jsonl"
DAY2 = SAMPLES / "ga4" / "events_20250302.jsonl"
CONTACTS = SAMPLES / "ga4" / "contacts.csv"
INTRO = ("https://www.youtube.com/watch?v=intro01", "Product intro")
DEMO = ("https://www.youtube.com/watch?v=demo002", "Live demo")
WEBINAR = ("https://www.youtube.com/watch?v=webin03", "Spring webinar")
# (user_id, user_pseudo_id) of the planted sessions' visitors.
U1001 = ("u-1001", "1204585919.1740003600")
U1002 = ("u-1002", "1204593838.1740007200")
U1003 = ("u-1003", "1204601757.1740010800")
U1004 = ("u-1004", "1204609676.1740014400")
GUEST = (None, "1204744299.1740075600")  # never signed in: the lookup has the pseudo id
VIDEO_EVENTS = ("video_start", "video_progress", "video_complete")


@pytest.fixture(scope="module")
def ga4(tmp_path_factory: pytest.TempPathFactory) -> Checked:
    return check_preset("ga4-bigquery-video", [DAY1, DAY2], CONTACTS, tmp_path_factory.mktemp("ga4") / "r.parquet")


@pytest.fixture(scope="module")
def contacts() -> dict[str, int]:
    return read_lookup(CONTACTS, "user_id")


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def payload(
    user: tuple[str | None, str], ga_session: str, video: tuple[str, str], state: str, ms: int, contact: int
) -> dict[str, Any]:
    """A GA4 video event's payload as the preset documents it."""
    return {
        "mediaType": "VIDEO",
        "sessionId": stable_id(user[1], ga_session, video[0]),
        "state": state,
        "occurredTimestamp": ms,
        "contactId": contact,
        "externalId": video[0],
        "mediaUrl": video[0],
        "mediaName": video[1],
        "pageUrl": "https://www.example.com/learn",
        "pageName": "Learn | Example",
    }


def test_the_sample_has_the_export_quirks() -> None:
    day1, day2 = lines(DAY1), lines(DAY2)
    assert {type(e["event_timestamp"]) for e in day1} == {str}
    assert {type(e["event_timestamp"]) for e in day2} == {int}
    kinds = {k for e in day1 + day2 for p in e["event_params"] for k, v in p["value"].items() if v is not None}
    assert kinds == {"string_value", "int_value", "double_value"}
    percents = [p["value"] for e in day1 + day2 for p in e["event_params"] if p["key"] == "video_percent"]
    assert {"string_value": "50", "int_value": None, "float_value": None, "double_value": None} in percents
    assert {"string_value": "75"} in percents
    assert len(day1) != len({json.dumps(e) for e in day1})  # a tag fired twice


def test_full_watch_gives_started_and_the_first_viewed(ga4: Checked, contacts: dict[str, int]) -> None:
    # video_start at 1740823200123456 µs; progress 10/25/50/75 and complete follow. The 50% row
    # (1740823320123473 µs) is the first VIEWED: 75% and complete are duplicates.
    session = stable_id(U1001[1], "1740823000", INTRO[0])
    c = contacts["u-1001"]
    assert ga4.session(session) == {
        "STARTED": payload(U1001, "1740823000", INTRO, "STARTED", 1_740_823_200_123, c),
        "VIEWED": payload(U1001, "1740823000", INTRO, "VIEWED", 1_740_823_320_123, c),
    }


def test_another_video_in_the_same_visit_is_another_session(ga4: Checked, contacts: dict[str, int]) -> None:
    session = stable_id(U1001[1], "1740823000", DEMO[0])
    assert session != stable_id(U1001[1], "1740823000", INTRO[0])
    assert ga4.session(session) == {
        "STARTED": payload(U1001, "1740823000", DEMO, "STARTED", 1_740_823_500_123, contacts["u-1001"]),
    }


def test_duplicate_start_is_collapsed_and_percent_as_text_counts(ga4: Checked, contacts: dict[str, int]) -> None:
    # video_start sent twice; video_percent "50" as a string_value at 1740823950124455 µs.
    session = stable_id(U1003[1], "1740823500", WEBINAR[0])
    c = contacts["u-1003"]
    assert ga4.session(session) == {
        "STARTED": payload(U1003, "1740823500", WEBINAR, "STARTED", 1_740_823_800_123, c),
        "VIEWED": payload(U1003, "1740823500", WEBINAR, "VIEWED", 1_740_823_950_124, c),
    }


def test_numeric_timestamp_and_pseudo_id_fallback(ga4: Checked, contacts: dict[str, int]) -> None:
    # No user_id: the contact comes from user_pseudo_id. Progress at 10% and 25% gives no VIEWED.
    first = lines(DAY2)[0]
    assert first["event_timestamp"] == 1_740_909_600_654_321 and "user_id" not in first
    session = stable_id(GUEST[1], "1740909000", DEMO[0])
    assert ga4.session(session) == {
        "STARTED": payload(GUEST, "1740909000", DEMO, "STARTED", 1_740_909_600_654, contacts[GUEST[1]]),
    }


def test_complete_without_progress_is_viewed(ga4: Checked, contacts: dict[str, int]) -> None:
    session = stable_id(U1002[1], "1740909900", INTRO[0])
    c = contacts["u-1002"]
    assert ga4.session(session) == {
        "STARTED": payload(U1002, "1740909900", INTRO, "STARTED", 1_740_910_200_654, c),
        "VIEWED": payload(U1002, "1740909900", INTRO, "VIEWED", 1_740_910_210_654, c),
    }


def test_progress_75_as_text_in_a_numbers_file_is_viewed(ga4: Checked, contacts: dict[str, int]) -> None:
    session = stable_id(U1004[1], "1740909901", WEBINAR[0])
    c = contacts["u-1004"]
    assert ga4.session(session) == {
        "STARTED": payload(U1004, "1740909901", WEBINAR, "STARTED", 1_740_910_500_654, c),
        "VIEWED": payload(U1004, "1740909901", WEBINAR, "VIEWED", 1_740_910_725_654, c),
    }


def test_visitor_missing_from_the_lookup_is_invalid(ga4: Checked) -> None:
    unknown = "999999999.1740787200"
    line = next(n for n, e in enumerate(lines(DAY1), start=1) if e["user_pseudo_id"] == unknown)
    [record] = ga4.invalid_for(unknown)
    assert (record["source_file"], record["row_number"], record["state"], record["field"]) == (
        str(DAY1),
        line,
        "STARTED",
        "contactId",
    )
    assert NOT_FOUND in record["error"]


def _params(event: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in event["event_params"]:
        value = next((p["value"][k] for k in ("string_value", "int_value", "float_value", "double_value")
                      if p["value"].get(k) is not None), None)  # fmt: skip
        if value is not None:
            out.setdefault(p["key"], str(value))
    return out


def test_totals_match_a_recount_of_the_files(ga4: Checked, contacts: dict[str, int]) -> None:
    events: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    kept: set[tuple[tuple[str, str, str], str]] = set()
    invalid = 0
    for event in lines(DAY1) + lines(DAY2):
        name, params = event["event_name"], _params(event)
        if name not in VIDEO_EVENTS:
            skipped["skip[0] not a video event"] += 1
            continue
        if name == "video_progress" and float(params["video_percent"]) < 50:
            skipped["skip[1] video_progress under 50%"] += 1
            continue
        state = "STARTED" if name == "video_start" else "VIEWED"
        if (event.get("user_id") or event["user_pseudo_id"]) not in contacts:
            invalid += 1
            continue
        key = ((event["user_pseudo_id"], params["ga_session_id"], params["video_url"]), state)
        if key in kept:
            skipped["duplicate event (dedupe)"] += 1
        else:
            kept.add(key)
            events[state] += 1
    report = ga4.report.to_dict()
    assert report["events"] == dict(events)
    assert report["skipped"] == dict(skipped)
    assert report["duplicates"] == skipped["duplicate event (dedupe)"] > 2
    assert report["invalid"] == invalid == 1
    assert report["distinct"]["sessions"] == len({session for session, _ in kept})


def _event(timestamp: str | int, name: str, session: str | int, percent: str | int | None) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"key": "ga_session_id", "value": {"int_value": session}},
        {"key": "video_url", "value": {"string_value": INTRO[0]}},
        {"key": "video_title", "value": {"string_value": INTRO[1]}},
    ]
    if percent is not None:
        params.append({"key": "video_percent", "value": {"int_value": percent}})
    return {"event_timestamp": timestamp, "event_name": name, "user_pseudo_id": U1001[1], "user_id": "u-1001",
            "event_params": params}  # fmt: skip


def _check_lines(tmp_path: Path, events: list[dict[str, Any]]) -> Checked:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return check_preset("ga4-bigquery-video", [path], CONTACTS, tmp_path / "results.parquet")


def _expected(contacts: dict[str, int]) -> dict[str, dict[str, Any]]:
    c = contacts["u-1001"]
    started = payload(U1001, "1740823000", INTRO, "STARTED", 1_740_823_200_123, c)
    viewed = payload(U1001, "1740823000", INTRO, "VIEWED", 1_740_823_320_123, c)
    for p in (started, viewed):
        del p["pageUrl"], p["pageName"]
    return {"STARTED": started, "VIEWED": viewed}


def test_timestamps_as_text_and_as_numbers_in_one_file(tmp_path: Path, contacts: dict[str, int]) -> None:
    checked = _check_lines(
        tmp_path,
        [
            _event("1740823200123456", "video_start", 1740823000, None),
            _event(1740823320123456, "video_progress", 1740823000, 50),
        ],
    )
    assert checked.session(stable_id(U1001[1], "1740823000", INTRO[0])) == _expected(contacts)


def test_int_values_as_text_and_as_numbers_in_one_file(tmp_path: Path, contacts: dict[str, int]) -> None:
    # BigQuery writes INT64 parameters as strings; a file that also holds lines from another
    # tool (or a tag sending video_percent as a string int_value) mixes both.
    checked = _check_lines(
        tmp_path,
        [
            _event("1740823200123456", "video_start", "1740823000", None),
            _event("1740823320123456", "video_progress", 1740823000, 50),
        ],
    )
    assert checked.session(stable_id(U1001[1], "1740823000", INTRO[0])) == _expected(contacts)
