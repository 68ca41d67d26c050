"""An event's endpoint comes from its type (the mapping's ``_type`` column, kept in the journal),
not from searching its payload's text."""

from __future__ import annotations

import json
from pathlib import Path

from importer.hubspot.events import endpoint, kind_of
from importer.hubspot.sender import PERCENT_PATH, PLAYED_PATH
from importer.run.admission import leftover_events
from importer.state.journal import Journal, Record


def test_the_type_decides_and_old_records_fall_back_to_the_parsed_payload() -> None:
    assert endpoint("percent") == PERCENT_PATH
    assert endpoint("played", {"playedPercent": 50}) == PLAYED_PATH  # the recorded type wins
    assert endpoint(None, {"playedPercent": 50}) == PERCENT_PATH  # a record of an older version
    assert endpoint(None, {"mediaName": '"playedPercent": 50'}) == PLAYED_PATH  # text in a value is not a field
    assert kind_of(PERCENT_PATH) == "percent" and kind_of(PLAYED_PATH) == "played"


def test_leftovers_are_re_driven_to_the_endpoint_they_were_meant_for(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "state")
    try:
        journal.start_run("test")
        played = json.dumps({"sessionId": "s-1", "state": "STARTED", "mediaName": '"playedPercent": 5'}).encode()
        percent = json.dumps({"sessionId": "s-2", "playedPercent": 25}).encode()
        journal.record(Record(1, 1, "not_sent", "a.csv", "", 1, "STARTED", played, kind="played"))
        journal.record(Record(2, 2, "not_sent", "a.csv", "", 2, None, percent, kind="percent"))
        events = leftover_events(journal.pending())
    finally:
        journal.close()
    assert {e.session: e.path for e in events} == {"s-1": PLAYED_PATH, "s-2": PERCENT_PATH}
