"""mappings/mux-data-views.yaml on sample_data/mux: planted views one by one, then the totals."""

from __future__ import annotations

import csv
from collections import Counter
from typing import Any

import pytest

from .helpers import NOT_FOUND, SAMPLES, Checked, check_preset, ms, read_lookup

VIEWS = SAMPLES / "mux" / "views-2025-03.csv"
CONTACTS = SAMPLES / "mux" / "contacts.csv"


@pytest.fixture(scope="module")
def mux(tmp_path_factory: pytest.TempPathFactory) -> Checked:
    return check_preset("mux-data-views", [VIEWS], CONTACTS, tmp_path_factory.mktemp("mux") / "results.parquet")


@pytest.fixture(scope="module")
def raw() -> list[dict[str, str]]:
    with VIEWS.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def payload(session: str, state: str, at: str, contact: int, video: str, title: str, **over: Any) -> dict[str, Any]:
    """A Mux view's payload as the preset documents it."""
    page = f"https://www.example.com/videos/{video}"
    out = {
        "mediaType": "VIDEO",
        "sessionId": session,
        "state": state,
        "occurredTimestamp": ms(at),
        "contactId": contact,
        "externalId": video,
        "mediaUrl": f"https://stream.mux.com/{video}.m3u8",
        "mediaName": title,
        "pageUrl": page,
        "pageName": page,
    }
    out.update(over)
    return out


def test_the_sample_has_the_export_quirks(raw: list[dict[str, str]]) -> None:
    header = list(raw[0])
    assert header == sorted(header)  # alphabetical, as from export version 2
    assert {"view_has_ad", "weighted_average_bitrate", "viewer_os_family", "custom_1"} <= set(header)
    by_id = {r["view_id"]: r for r in raw}
    assert by_id["mux-no-duration"]["video_duration"] == ""
    assert by_id["mux-exit"]["exit_before_video_start"] == "true"
    assert by_id["mux-startup-failure"]["video_startup_failure"] == "true"


def test_view_past_half_gives_started_at_view_start_and_viewed_at_view_end(mux: Checked) -> None:
    # view_max_playhead_position 180 000 of video_duration 240 000: 75%.
    assert mux.session("mux-viewed") == {
        "STARTED": payload("mux-viewed", "STARTED", "2025-03-01T09:00:00.250Z", 20001, "vid-intro", "Product intro"),
        "VIEWED": payload("mux-viewed", "VIEWED", "2025-03-01T09:03:04.250Z", 20001, "vid-intro", "Product intro"),
    }


def test_view_under_half_gives_started_only(mux: Checked) -> None:
    # 60 000 of 240 000: 25%.
    assert mux.session("mux-started-only") == {
        "STARTED": payload(
            "mux-started-only", "STARTED", "2025-03-01T09:01:00.250Z", 20002, "vid-intro", "Product intro"
        ),
    }


def test_exactly_half_is_viewed(mux: Checked) -> None:
    # 60 000 of 120 000: the threshold is >= 50%.
    assert mux.session("mux-half")["VIEWED"] == payload(
        "mux-half", "VIEWED", "2025-03-01T09:03:04.250Z", 20003, "vid-demo", "Live demo"
    )


def test_blank_video_duration_falls_back_to_player_source_duration(mux: Checked) -> None:
    # video_duration is blank; 151 000 of player_source_duration 300 480 is 50.3%.
    assert mux.session("mux-no-duration") == {
        "STARTED": payload(
            "mux-no-duration", "STARTED", "2025-03-01T09:03:00.250Z", 20004, "vid-webinar", "Spring webinar"
        ),
        "VIEWED": payload(
            "mux-no-duration", "VIEWED", "2025-03-01T09:05:35.250Z", 20004, "vid-webinar", "Spring webinar"
        ),
    }


def test_asset_id_stands_in_for_a_blank_video_id(mux: Checked) -> None:
    iframe = "https://embed.example.net/player/vid-demo"
    assert mux.session("mux-asset-only") == {
        "STARTED": payload(
            "mux-asset-only",
            "STARTED",
            "2025-03-01T09:06:00.250Z",
            20007,
            "vid-demo",
            "Live demo",
            externalId="asset-demo",
            pageUrl=iframe,
            pageName=iframe,
        ),
    }


@pytest.mark.parametrize("view_id", ["mux-exit", "mux-startup-failure", "mux-anonymous"])
def test_views_that_never_played_or_have_no_viewer_are_skipped(mux: Checked, view_id: str) -> None:
    assert not mux.mentions(view_id)


def test_viewer_missing_from_the_lookup_is_invalid(mux: Checked) -> None:
    records = mux.invalid_for("viewer-999")
    assert sorted((r["state"], r["field"], r["row_number"]) for r in records) == [
        ("STARTED", "contactId", 8),
        ("VIEWED", "contactId", 8),
    ]
    assert all(NOT_FOUND in r["error"] for r in records)


def test_contact_id_saved_by_a_spreadsheet_is_an_integer(mux: Checked, raw: list[dict[str, str]]) -> None:
    assert "viewer-010,20010.0" in CONTACTS.read_text(encoding="utf-8").splitlines()
    sessions = {r["view_id"] for r in raw if r["viewer_user_id"] == "viewer-010"}
    contacts = {p["contactId"] for p in mux.payloads if p["sessionId"] in sessions}
    assert contacts == {20010}


def test_totals_match_a_recount_of_the_file(mux: Checked, raw: list[dict[str, str]]) -> None:
    known = read_lookup(CONTACTS, "viewer_user_id")
    events: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    invalid = 0
    for r in raw:
        if r["exit_before_video_start"] == "true":
            skipped["skip[0] exit_before_video_start is_true"] += 1
        elif r["video_startup_failure"] == "true":
            skipped["skip[1] video_startup_failure is_true"] += 1
        elif not r["viewer_user_id"]:
            skipped["skip[2] anonymous view (no viewer_user_id)"] += 1
        else:
            duration = float(r["video_duration"] or r["player_source_duration"])
            states = ["STARTED"] + (["VIEWED"] if int(r["view_max_playhead_position"]) / duration >= 0.5 else [])
            if r["viewer_user_id"] in known:
                events.update(states)
            else:
                invalid += len(states)
    assert len(raw) == 300
    assert dict(mux.report.events) == dict(events)
    assert dict(mux.report.skipped) == dict(skipped)
    assert mux.report.invalid_events == invalid == 2
    assert mux.report.rows == len(raw)
