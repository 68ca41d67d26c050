"""One owner: reading and mapping hand over data, and only the event loop's thread writes the
results file and the journal. Invalid rows (from reading) and failures (from sending) arrive in
volume at the same time, and every row of the results file reads back whole."""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path

import httpx
import pytest
from support import GENERIC_MAPPING, generator

from importer.hubspot.auth import Credentials
from importer.hubspot.sender import RetryPolicy
from importer.mapping.spec import load_mapping
from importer.run.options import MediaOptions, RunOptions
from importer.run.pipeline import Pipeline
from importer.run.runner import Runner
from importer.state.journal import Journal
from importer.state.results import RESULT_SCHEMA, ResultsWriter, read_results


def test_invalid_rows_and_failures_in_volume_make_a_whole_results_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = generator().canonical(6000, seed=12, invalid_every=3, prefix="o")
    generator().write(table, tmp_path / "plays.csv")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(GENERIC_MAPPING.read_text(encoding="utf-8") + "\ninput:\n  batch_rows: 150\n", "utf-8")

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if int(str(body["sessionId"]).rsplit("-", 1)[-1]) % 2:  # half the sessions are refused
            return httpx.Response(400, json={"status": "error", "message": "refused " + "x" * 300})
        return httpx.Response(200, json=body)

    writers: set[str] = set()
    journal_writers: set[str] = set()
    write, record = ResultsWriter.write, Journal.record

    def watched_write(self: ResultsWriter, t: object) -> None:
        writers.add(threading.current_thread().name)
        write(self, t)

    def watched_record(self: Journal, rec: object) -> None:
        journal_writers.add(threading.current_thread().name)
        record(self, rec)  # type: ignore[arg-type]

    monkeypatch.setattr(ResultsWriter, "write", watched_write)
    monkeypatch.setattr(Journal, "record", watched_record)
    options = RunOptions(
        base_url="https://api.hubapi.com",
        state_dir=str(tmp_path / "state"),
        rate=None,
        concurrency=16,
        retry=RetryPolicy(max_attempts=1),
        transport=httpx.MockTransport(answer),
        media=MediaOptions(sync=False),
    )  # fmt: skip  (the mock answers events only)
    results = tmp_path / "results.csv"
    summary = Runner(options, Credentials("pat-na1-owner-test"), results).run(
        Pipeline(load_mapping(str(mapping)), [str(tmp_path / "plays.csv")])
    )
    counts = summary.counts
    assert counts["invalid"] > 2000 and counts["failed"] > 2000
    assert summary.exit_code == 1

    # One writer thread for each file, and it is the event loop's (not the reading thread).
    assert writers == {threading.current_thread().name}
    assert journal_writers == {threading.current_thread().name}

    with open(results, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == RESULT_SCHEMA.names
    assert {len(r) for r in rows} == {len(RESULT_SCHEMA.names)}
    statuses = [r[RESULT_SCHEMA.names.index("status")] for r in rows[1:]]
    assert statuses.count("invalid") == counts["invalid"]
    assert statuses.count("failed") == counts["failed"]
    assert read_results(results).num_rows == len(rows) - 1
