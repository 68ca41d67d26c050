"""Days a backfill has left at the learned daily quota (``status`` and the run report): what the last
run left of today's quota counts as part of a day while that day lasts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from importer.hubspot.pacing import days_left
from importer.run.backfill import QUOTA_KEY, left_today, progress
from importer.state.journal import Journal, Record


@pytest.mark.parametrize(
    ("to_send", "left", "days"),
    [
        (0, None, 0),  # nothing to send
        (95, None, 1),  # a full day (unknown or reset since) sends 95
        (96, None, 2),
        (90, 5, 1),  # 5 left today is only the reserve: 90 go tomorrow
        (190, 5, 2),
        (90, 55, 2),  # 50 go today, 40 tomorrow
        (50, 55, 1),  # today sends them all
        (150, 55, 3),  # 50 today, 95 tomorrow, 5 the day after
        (100, 500, 2),  # more left than a day's share (another day's figure): at most 95 today
    ],
)
def test_today_counts_when_its_quota_left_sends_some(to_send: int, left: int | None, days: int) -> None:
    assert days_left(to_send, 100, 5, left) == days


def test_no_learned_quota_gives_no_days() -> None:
    assert days_left(1000, None, 0, 10) is None


def test_what_was_left_today_counts_until_the_reset() -> None:
    assert left_today(40, 1_000.0, now=999.0) == 40
    assert left_today(40, 1_000.0, now=1_000.0) is None  # reset since: a full day
    assert left_today(None, None, now=0.0) is None


def test_status_progress_reads_the_state_with_an_injected_clock(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "state")
    try:
        journal.start_run("run", None)
        for i in range(190):
            journal.record(Record(i, i, "not_sent", "a.csv", "", i, "STARTED", b"{}"))
        journal.put(QUOTA_KEY, json.dumps({"daily": 100, "remaining": 45, "reset_at": 5_000.0, "timezone": "UTC"}))
        before_reset = progress(journal, now=4_000.0)
        after_reset = progress(journal, now=6_000.0)
    finally:
        journal.close()
    assert before_reset["left"] == 190 and before_reset["per_day"] == 95
    assert before_reset["days_left"] == 3  # 40 today (45 less the reserve), then 95 and 55
    assert after_reset["days_left"] == 2  # a fresh day: 95, then 95
