"""A run with no results of its own lists what earlier runs left in its results file: failed, not sent
and possibly sent events copied from the journal (``retry`` takes the file), invalid rows pointed at."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from importer.run.admission import events_from_results
from importer.run.owner import RunOwner
from importer.state.activity import record_invalid
from importer.state.identity import key_text
from importer.state.journal import Journal, Record
from importer.state.results import ResultsWriter, read_results, results_table
from importer.state.summary import RunSummary


def _payload(session: str) -> bytes:
    body = {"sessionId": session, "state": "STARTED", "mediaBridgeId": 7, "contactId": 1, "occurredTimestamp": 0}
    return json.dumps(body).encode()


def _carry(journal: Journal, path: Path) -> tuple[dict[str, int], list[dict[str, object]]]:
    journal.start_run("run", str(path))
    with ResultsWriter(path) as writer:
        owner = RunOwner(journal, writer, RunSummary(), results_all=False)
        carried = owner.carry_earlier()
    return carried, read_results(path).to_pylist()


def test_failed_and_possibly_sent_events_are_copied_with_their_payloads(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "state")
    try:
        first = tmp_path / "r1.csv"
        journal.start_run("run", str(first))
        journal.record(Record(11, 12, "failed", "a.csv", "", 3, "STARTED", _payload("s1"), 400, "HTTP 400: bad", 1))
        journal.record(Record(21, 22, "possibly_sent", "a.csv", "", 4, "STARTED", _payload("s2"), error="timeout"))
        journal.record(Record(31, 32, "sent", "a.csv", "", 5, "STARTED", _payload("s3")))
        carried, rows = _carry(journal, tmp_path / "r2.csv")
    finally:
        journal.close()
    assert carried == {"failed": 1, "possibly_sent": 1}
    by_key = {r["event_key"]: r for r in rows}
    assert set(by_key) == {key_text(11, 12), key_text(21, 22)}  # never a sent event
    failed = by_key[key_text(11, 12)]
    assert (failed["status"], failed["http_status"], failed["row_number"]) == ("failed", 400, 3)
    assert failed["error"] == "left by run #1: HTTP 400: bad"
    assert json.loads(str(failed["payload"]))["sessionId"] == "s1"
    # ``retry`` on the new file sends the failed event under the key the journal knows it by.
    events = events_from_results(tmp_path / "r2.csv")
    assert [(e.k1, e.k2) for e in events] == [(11, 12)]
    assert [(e.k1, e.k2) for e in events_from_results(tmp_path / "r2.csv", possibly_sent=True)] == [(11, 12), (21, 22)]


def test_invalid_rows_get_one_row_per_file_and_reason_naming_the_results_file(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "state")
    try:
        first = tmp_path / "r1.csv"
        run = journal.start_run("run", str(first))
        invalid = results_table(
            source_file=["a.csv", "a.csv", "a.csv", "b.csv"],
            row_number=pa.array([2, 3, 4, 9], pa.int64()),
            status="invalid",
            field=["contactId", "contactId", "occurredTimestamp", "contactId"],
            error=["contactId: missing", "contactId: missing", "occurredTimestamp: not a date", "contactId: missing"],
        )
        record_invalid(journal.db, invalid, run)
        carried, rows = _carry(journal, tmp_path / "r2.csv")
    finally:
        journal.close()
    assert carried == {"invalid": 4}
    got = sorted((r["source_file"], r["field"], r["error"]) for r in rows)
    pointer = f"(found by run #1; each row is listed in {first})"
    assert got == [
        ("a.csv", "contactId", f"2 invalid rows: contactId: missing {pointer}"),
        ("a.csv", "occurredTimestamp", f"1 invalid row: occurredTimestamp: not a date {pointer}"),
        ("b.csv", "contactId", f"1 invalid row: contactId: missing {pointer}"),
    ]
    assert {r["status"] for r in rows} == {"invalid"}
    assert all(r["row_number"] is None and not r["payload"] for r in rows)  # no row, no payload


def test_nothing_left_writes_nothing(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "state")
    try:
        journal.start_run("run", str(tmp_path / "r1.csv"))
        journal.record(Record(1, 2, "sent", "a.csv", "", 1, "STARTED", _payload("s")))
        carried, rows = _carry(journal, tmp_path / "r2.csv")
    finally:
        journal.close()
    assert carried == {}
    assert rows == []
