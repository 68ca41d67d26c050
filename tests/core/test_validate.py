"""HubSpot's rules over whole columns (importer.mapping.validate)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from importer.mapping.plan import EVENT_SCHEMA
from importer.mapping.validate import MIN_TIMESTAMP_MS, validate_events

NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z: a fixed "now" so the future rule is deterministic
DAY = 86_400_000
VALID: dict[str, Any] = {
    "_row": 1,
    "_rule": 0,
    "mediaType": "VIDEO",
    "sessionId": "s-1",
    "state": "STARTED",
    "occurredTimestamp": 1_735_689_600_000,
    "contactId": 12345,
    "externalId": "vid-1",
}


def table(*events: dict[str, Any]) -> pa.Table:
    rows = [{**VALID, **e} for e in events]
    return pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)


def problems(**overrides: Any) -> tuple[str | None, str | None, str | None, str | None]:
    """(_field, _value, _reason, _error) of one event after validation."""
    out = validate_events(table(overrides), now_ms=NOW).to_pylist()[0]
    return out["_field"], out["_value"], out["_reason"], out["_error"]


def test_valid_events_pass_untouched() -> None:
    events = table(
        {},
        {"contactId": None, "contactUtk": "utk", "mediaBridgeId": 9, "externalId": None, "state": "VIEWED"},
        {"pageId": 5001, "mediaType": "AUDIO"},
        {"pageUrl": "https://example.com/p", "pageName": "P", "externalPlayContext": "EXTERNAL_PAGE"},
        {"mediaType": "IMAGE", "occurredTimestamp": MIN_TIMESTAMP_MS},
        {"mediaType": "DOCUMENT", "occurredTimestamp": NOW + DAY},
        {"mediaType": "OTHER", "externalPlayContext": "EMAIL"},
    )
    out = validate_events(events, now_ms=NOW)
    assert out.equals(events)
    assert out.column("_error").null_count == events.num_rows


@pytest.mark.parametrize("name", ["sessionId", "mediaType", "state", "occurredTimestamp"])
def test_required_fields(name: str) -> None:
    field, value, reason, _ = problems(**{name: None})
    assert (field, value, reason) == (name, None, "required field is missing")


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("mediaType", "MOVIE", "not a media type (VIDEO, AUDIO, DOCUMENT, OTHER, IMAGE)"),
        ("mediaType", "video", "not a media type (VIDEO, AUDIO, DOCUMENT, OTHER, IMAGE)"),
        ("state", "PAUSED", "not a state (STARTED, VIEWED)"),
        ("externalPlayContext", "WEB", "not a play context (EMAIL, EXTERNAL_PAGE)"),
    ],
)
def test_enums(name: str, value: str, reason: str) -> None:
    assert problems(**{name: value})[:3] == (name, value, reason)


@pytest.mark.parametrize("name", ["contactId", "mediaBridgeId", "pageId"])
@pytest.mark.parametrize("value", [0, -1])
def test_ids_are_positive(name: str, value: int) -> None:
    assert problems(**{name: value})[:3] == (name, str(value), "must be a positive id")


def test_largest_int64_id_is_valid() -> None:
    assert problems(contactId=2**63 - 1) == (None, None, None, None)


def test_contact_rule() -> None:
    assert problems(contactId=None)[2:] == (
        "no contact: contactId and contactUtk are both empty",
        "contactId: no contact: contactId and contactUtk are both empty",
    )
    assert problems(contactId=None, contactUtk="abc") == (None, None, None, None)
    assert problems(contactId=None, _hsenc="enc")[0] == "contactId"


def test_media_rule() -> None:
    assert problems(externalId=None)[::2] == ("externalId", "no media: mediaBridgeId and externalId are both empty")
    assert problems(externalId=None, mediaBridgeId=7) == (None, None, None, None)


def test_page_rule() -> None:
    reason = "a page outside HubSpot needs both pageUrl and pageName"
    assert problems(pageUrl="https://example.com/p")[:3] == ("pageUrl", "https://example.com/p", reason)
    assert problems(pageName="Landing")[:3] == ("pageUrl", "Landing", reason)
    assert problems(pageId=5001) == (None, None, None, None)
    assert problems(pageId=5001, pageUrl="https://example.com/p") == (None, None, None, None)
    assert problems(pageUrl="https://example.com/p", pageName="P") == (None, None, None, None)


@pytest.mark.parametrize(
    ("ts", "reason"),
    [
        (999_999_999, "before 1970-01-12: not milliseconds"),
        (-5, "before 1970-01-12: not milliseconds"),
        (1_735_689_600, "looks like seconds, not milliseconds"),
        (99_999_999_999, "looks like seconds, not milliseconds"),
        (MIN_TIMESTAMP_MS - 1, "before 2000-01-01"),
        (100_000_000_000, "before 2000-01-01"),
        (1_735_689_600_000_000, "looks like microseconds or nanoseconds, not milliseconds"),
        (1_735_689_600_000_000_000, "looks like microseconds or nanoseconds, not milliseconds"),
        (NOW + DAY + 1, "more than a day in the future"),
    ],
)
def test_timestamp_plausibility(ts: int, reason: str) -> None:
    assert problems(occurredTimestamp=ts)[:3] == ("occurredTimestamp", str(ts), reason)


def test_every_problem_is_listed_and_the_first_names_the_field() -> None:
    field, value, reason, error = problems(mediaType="MOVIE", contactId=None, occurredTimestamp=1_735_689_600)
    assert (field, value, reason) == ("mediaType", "MOVIE", "not a media type (VIDEO, AUDIO, DOCUMENT, OTHER, IMAGE)")
    assert error == (
        "mediaType: not a media type (VIDEO, AUDIO, DOCUMENT, OTHER, IMAGE); "
        "contactId: no contact: contactId and contactUtk are both empty; "
        "occurredTimestamp: looks like seconds, not milliseconds"
    )


def test_rules_apply_row_by_row() -> None:
    events = table({}, {"state": "PAUSED"}, {}, {"externalId": None})
    out = validate_events(events, now_ms=NOW)
    assert out.column("_field").to_pylist() == [None, "state", None, "externalId"]


def test_empty_table() -> None:
    empty = EVENT_SCHEMA.empty_table()
    assert validate_events(empty).num_rows == 0


def test_a_mapping_problem_stays_first_and_rules_add_to_it() -> None:
    # Row 1 arrives with a problem found while mapping; the rules add theirs after it.
    mapped = {
        "_field": "contactId",
        "_value": "C-1",
        "_reason": "not an integer id",
        "_error": "contactId: not an integer id",
    }
    events = table({}, {**mapped, "contactId": None, "mediaType": "MOVIE"}, {"mediaType": "MOVIE"})
    out = validate_events(events, now_ms=NOW).select(["_field", "_value", "_error"]).to_pylist()
    assert out[0] == {"_field": None, "_value": None, "_error": None}
    assert out[1]["_field"] == "contactId" and out[1]["_value"] == "C-1"
    # contactId's "no contact" follows from its first problem: each field is named once.
    assert out[1]["_error"] == (
        "contactId: not an integer id; mediaType: not a media type (VIDEO, AUDIO, DOCUMENT, OTHER, IMAGE)"
    )
    assert out[2]["_field"] == "mediaType" and out[2]["_value"] == "MOVIE"
