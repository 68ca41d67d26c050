"""mappings/wistia-stats-events.yaml on sample_data/wistia (JSON Lines and CSV through one mapping)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from typing import Any

import pytest

from .helpers import NOT_FOUND, SAMPLES, Checked, check_preset, ms, read_lookup

AS_JSON = SAMPLES / "wistia" / "events-2025-03a.jsonl"
AS_CSV = SAMPLES / "wistia" / "events-2025-03b.csv"
CONTACTS = SAMPLES / "wistia" / "contacts.csv"
MEDIA = {"a1b2c3d4e5": "Product intro", "f6g7h8i9j0": "Live demo"}


@pytest.fixture(scope="module")
def wistia(tmp_path_factory: pytest.TempPathFactory) -> Checked:
    results = tmp_path_factory.mktemp("wistia") / "results.parquet"
    return check_preset("wistia-stats-events", [AS_JSON, AS_CSV], CONTACTS, results)


def rows() -> list[dict[str, Any]]:
    """Both files as rows: JSON values as written, CSV cells as text."""
    with AS_CSV.open(encoding="utf-8", newline="") as fh:
        from_csv = list(csv.DictReader(fh))
    return [json.loads(line) for line in AS_JSON.read_text(encoding="utf-8").splitlines()] + from_csv


def payloads(key: str, at: str, contact: int, media: str, *states: str) -> dict[str, dict[str, Any]]:
    """A session's payloads by state, as the preset documents them."""
    page = f"https://www.example.com/watch/{media}"
    return {
        state: {
            "mediaType": "VIDEO",
            "sessionId": key,
            "state": state,
            "occurredTimestamp": ms(at),
            "contactId": contact,
            "externalId": media,
            "mediaUrl": f"https://example.wistia.com/medias/{media}",
            "mediaName": MEDIA[media],
            "pageUrl": page,
            "pageName": page,
        }
        for state in states
    }


def test_the_sample_has_the_export_quirks() -> None:
    by_key = {r["event_key"]: r for r in rows()}
    assert by_key["wistia-fraction-viewed"]["percent_viewed"] == 0.62
    assert by_key["wistia-percent-viewed"]["percent_viewed"] == 62
    assert by_key["wistia-anonymous"]["email"] is None  # JSON null
    assert by_key["wistia-csv-anonymous"]["email"] == ""  # empty CSV cell


@pytest.mark.parametrize(
    ("key", "at", "contact", "media", "states"),
    [
        ("wistia-fraction-viewed", "2025-03-01T14:00:00Z", 40000, "a1b2c3d4e5", ("STARTED", "VIEWED")),  # 0.62
        ("wistia-percent-viewed", "2025-03-01T14:01:00Z", 40000, "f6g7h8i9j0", ("STARTED", "VIEWED")),  # 62
        ("wistia-fraction-started", "2025-03-01T14:02:00Z", 40001, "a1b2c3d4e5", ("STARTED",)),  # 0.2245
        ("wistia-percent-started", "2025-03-01T14:03:00Z", 40001, "f6g7h8i9j0", ("STARTED",)),  # 22.45
        ("wistia-email-case", "2025-03-01T14:07:00Z", 40001, "f6g7h8i9j0", ("STARTED", "VIEWED")),  # 0.5
        ("wistia-whole", "2025-03-01T14:08:00Z", 40003, "f6g7h8i9j0", ("STARTED", "VIEWED")),  # 1.0 is 100%
        ("wistia-csv-percent-viewed", "2025-03-02T14:00:00Z", 40004, "a1b2c3d4e5", ("STARTED", "VIEWED")),  # "75"
        ("wistia-csv-fraction-started", "2025-03-02T14:01:00Z", 40004, "f6g7h8i9j0", ("STARTED",)),  # "0.3"
    ],
)
def test_planted_sessions(
    wistia: Checked, key: str, at: str, contact: int, media: str, states: tuple[str, ...]
) -> None:
    assert wistia.session(key) == payloads(key, at, contact, media, *states)


@pytest.mark.parametrize("key", ["wistia-not-played", "wistia-anonymous", "wistia-csv-anonymous"])
def test_unplayed_and_anonymous_sessions_are_skipped(wistia: Checked, key: str) -> None:
    assert not wistia.mentions(key)


def test_email_missing_from_the_lookup_is_invalid(wistia: Checked) -> None:
    records = wistia.invalid_for("nobody@example.biz")
    assert sorted((r["source_file"], r["row_number"], r["state"], r["field"]) for r in records) == [
        (str(AS_JSON), 7, "STARTED", "contactId"),
        (str(AS_JSON), 7, "VIEWED", "contactId"),
    ]
    assert all(NOT_FOUND in r["error"] for r in records)


def test_totals_match_a_recount_of_the_files(wistia: Checked) -> None:
    known = read_lookup(CONTACTS, "email")
    events: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    invalid = 0
    for r in rows():
        raw = r["percent_viewed"]
        share = float(raw) if raw not in (None, "") else 0.0
        share = share / 100 if share > 1 else share
        email = (r["email"] or "").strip().lower()
        if share <= 0:
            skipped["skip[0] not played (percent_viewed 0 or empty)"] += 1
        elif not email:
            skipped["skip[1] anonymous visitor (no email)"] += 1
        elif email not in known:
            invalid += 1 + (share >= 0.5)
        else:
            events.update(["STARTED"] + (["VIEWED"] if share >= 0.5 else []))
    report = wistia.report.to_dict()
    assert report["rows"] == 300
    assert report["events"] == dict(events)
    assert report["skipped"] == dict(skipped)
    assert report["invalid"] == invalid == 2
