"""Nested JSON Lines: dotted paths into objects and GA4-style ``event_params`` lookups."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .helpers import column, mapping_doc, run, write_text

T0_US = "1735689600123456"  # 2025-01-01T00:00:00.123456Z in microseconds, as GA4's JSON export writes it


def jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    return write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def param(key: str, kind: str, value: Any) -> dict[str, Any]:
    return {"key": key, "value": {kind: value}}


def test_dotted_paths_into_objects(tmp_path: Path) -> None:
    data = jsonl(
        tmp_path / "p.jsonl",
        [
            {"sid": "a", "cid": 1, "ts": T0_US, "device": {"category": "mobile", "os": {"name": "iOS"}}},
            {"sid": "b", "cid": 2, "ts": T0_US, "device": {"category": "desktop", "os": {}}},
            {"sid": "c", "cid": 3, "ts": T0_US, "device": None},
        ],
    )
    doc = mapping_doc({"mediaName": "device.os.name", "iframeUrl": "device.category", "mediaUrl": "device.url"})
    doc["events"] = [{"state": "STARTED", "timestamp": {"column": "ts", "unit": "us"}}]
    out = run(doc, [data], tmp_path)
    assert column(out, "sessionId") == ["a", "b", "c"]
    assert column(out, "mediaName") == ["iOS", None, None]
    assert column(out, "iframeUrl") == ["mobile", "desktop", None]
    assert column(out, "mediaUrl") == [None, None, None]  # a key no line has is null, not an error
    assert column(out, "occurredTimestamp") == [1_735_689_600_123] * 3


def test_param_lookup_takes_whichever_value_field_is_set(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [
        {
            "sid": "a",
            "params": [param("video_title", "string_value", "Intro"), param("video_percent", "int_value", "50")],
        },
        {
            "sid": "b",
            "params": [param("video_percent", "double_value", 100.0), param("video_title", "string_value", "Outro")],
        },
        {"sid": "c", "params": [param("video_percent", "float_value", 0.75)]},
        {
            "sid": "d",
            "params": [param("video_percent", "string_value", "25"), param("video_percent", "int_value", "99")],
        },
        {"sid": "e", "params": []},
    ]
    for r in rows:
        r.update(cid=1, ts=T0_US)
    data = jsonl(tmp_path / "p.jsonl", rows)
    doc = mapping_doc(
        {
            "mediaName": {"param": "params", "key": "video_title"},
            "externalId": {"param": "params", "key": "video_percent", "default": "none"},
        }
    )
    out = run(doc, [data], tmp_path)
    assert column(out, "sessionId") == ["a", "b", "c", "d", "e"]
    assert column(out, "mediaName") == ["Intro", "Outro", None, None, None]
    # The first matching record of a row wins.
    assert column(out, "externalId") == ["50", "100", "0.75", "25", "none"]


def test_param_in_a_condition(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [
        {"sid": "a", "params": [param("video_percent", "int_value", 90)]},
        {"sid": "b", "params": [param("video_percent", "string_value", "95")]},
        {"sid": "c", "params": [param("video_percent", "double_value", 10.0)]},
    ]
    for r in rows:
        r.update(cid=1, ts=T0_US)
    data = jsonl(tmp_path / "p.jsonl", rows)
    when = {"column": {"param": "params", "key": "video_percent"}, "gte": 90}
    out = run(mapping_doc(events=[{"state": "VIEWED", "timestamp": "ts", "when": when}]), [data], tmp_path)
    assert column(out, "sessionId") == ["a", "b"]


def test_ga4_export_end_to_end(tmp_path: Path) -> None:
    def event(name: str, ts: str, user: str, percent: dict[str, Any]) -> dict[str, Any]:
        return {
            "event_timestamp": ts,
            "event_name": name,
            "user_pseudo_id": user,
            "event_params": [
                param("video_url", "string_value", "https://v.example.com/1"),
                param("ga_session_id", "int_value", "1700000001"),
                {"key": "video_percent", "value": percent},
                param("video_title", "string_value", "Launch"),
            ],
        }

    rows = [
        event("video_start", T0_US, "u1", {"int_value": "0"}),
        event("video_progress", "1735689660000000", "u1", {"int_value": "50"}),
        event("video_complete", "1735689720000000", "u1", {"double_value": 100.0}),
        event("video_complete", "1735689720500000", "u1", {"double_value": 100.0}),
        event("page_view", "1735689720000000", "u2", {}),
    ]
    data = jsonl(tmp_path / "ga4.jsonl", rows)
    doc = {
        "timezone": "UTC",
        "fields": {
            "sessionId": {
                "hash": [
                    "user_pseudo_id",
                    {"param": "event_params", "key": "ga_session_id"},
                    {"param": "event_params", "key": "video_url"},
                ]
            },
            "mediaType": {"const": "VIDEO"},
            "contactUtk": "user_pseudo_id",
            "externalId": {"param": "event_params", "key": "video_url"},
            "mediaName": {"param": "event_params", "key": "video_title"},
        },
        "events": [
            {
                "state": {
                    "column": "event_name",
                    "map": {"video_start": "STARTED", "video_complete": "VIEWED"},
                    "unmapped": "skip",
                },
                "timestamp": {"column": "event_timestamp", "unit": "us"},
            }
        ],
    }
    out = run(doc, [data], tmp_path)
    session = "2393d4f5635c6a5c"  # computed once; must never change
    common = {
        "mediaType": "VIDEO",
        "sessionId": session,
        "contactUtk": "u1",
        "externalId": "https://v.example.com/1",
        "mediaName": "Launch",
    }
    assert out.payloads == [
        {**common, "state": "STARTED", "occurredTimestamp": 1_735_689_600_123},
        {**common, "state": "VIEWED", "occurredTimestamp": 1_735_689_720_000},
    ]
    assert list(out.payloads[0]) == [
        "mediaType", "sessionId", "state", "occurredTimestamp", "contactUtk", "externalId", "mediaName",
    ]  # fmt: skip
    assert out.skipped == {"events[0] rule 1: state not mapped": 2, "duplicate event (dedupe)": 1}
    assert out.report.duplicates == 1
    assert out.invalid == []


def test_a_field_that_is_a_number_on_one_line_and_text_on_another(tmp_path: Path) -> None:
    data = jsonl(
        tmp_path / "p.jsonl",
        [
            {"sid": "a", "cid": 1, "ts": T0_US},
            {"sid": "b", "cid": "C-2", "ts": T0_US},
            {"sid": "c", "cid": 3, "ts": T0_US},
        ],
    )
    doc = mapping_doc(events=[{"state": "STARTED", "timestamp": {"column": "ts", "unit": "us"}}])
    out = run(doc, [data], tmp_path)
    assert column(out, "contactId") == [1, 3]
    assert [(r["row_number"], r["field"], r["value"]) for r in out.invalid] == [(2, "contactId", "C-2")]
