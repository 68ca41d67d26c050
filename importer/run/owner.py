"""The one owner of a run's state: the results file, the journal's writes, the manifest and the summary.

Everything here runs on the event loop's thread. Readers, mapping and admission
hand over data (``Admitted``); workers hand over outcomes; only this class turns
them into rows of the results file and records of the journal, so no two
threads ever write the same file.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from importer.errors import TerminalError
from importer.hubspot.events import Event, kind_of
from importer.hubspot.sender import Outcome
from importer.run.admission import Admitted
from importer.state.activity import forget_invalid, invalid_before, record_invalid
from importer.state.identity import key_text
from importer.state.journal import Journal, Record
from importer.state.manifest import FileTracker
from importer.state.results import ResultsWriter, results_table
from importer.state.summary import RunSummary

_FLUSH_ROWS = 1000


class RunOwner:
    """Applies admissions and outcomes to the journal, the results file and the summary."""

    def __init__(self, journal: Journal, results: ResultsWriter, summary: RunSummary, results_all: bool) -> None:
        self.journal = journal
        self.results = results
        self.summary = summary
        self.results_all = results_all
        self.tracker = FileTracker(journal)
        self.admitted = 0  # events handed to the send loop
        self.newest_ms: int | None = None
        self._pending: list[dict[str, Any]] = []
        self.on_error: Callable[[TerminalError], None] = _raise
        self.results_failed: TerminalError | None = None
        self.records = 0  # rows of the results file this run wrote

    # -- from admission --------------------------------------------------------------------
    def apply(self, admitted: Admitted) -> list[Event]:
        """Count, write and claim one admitted batch; the events to send."""
        s = self.summary
        c = admitted.counts
        s.rows += c["rows"]
        s.duplicates += c["duplicates"]
        s.skipped_rows += c["skipped_rows"]
        s.before_since += c["before_since"]
        s.changed += c["changed"]
        s.refused_before += c["refused_before"]
        s.held_before += c["held_before"]
        for status in ("invalid", "skipped"):
            if c[status]:
                s.counts[status] += c[status]
        if admitted.first_of_file and admitted.source is not None:
            # Read again: its invalid events are counted anew in the report's table.
            self._journal(forget_invalid, self.journal.db, admitted.source.path)
        for table in admitted.records:
            self.write_results(table)
            if table.num_rows and table.column("status")[0].as_py() == "invalid":
                self._journal(record_invalid, self.journal.db, table, self.journal.run_id)
        if admitted.newest_ms is not None:
            self.newest_ms = admitted.newest_ms if self.newest_ms is None else max(self.newest_ms, admitted.newest_ms)
        for path in admitted.read_to_end:
            self.tracker.read_to_end(path)
        if admitted.source is not None:
            self._journal(self.journal.claim, admitted.k1, admitted.k2, self.journal.run_id)
            self.tracker.admitted(admitted.source, admitted.fingerprint, admitted.rows, len(admitted.events))
        self.admitted += len(admitted.events)
        return admitted.events

    # -- from the workers ------------------------------------------------------------------
    def outcome(self, event: Event, outcome: Outcome, settle: bool = True) -> None:
        e, o = event, outcome
        rec = Record(e.k1, e.k2, o.status, e.source, e.fingerprint, e.row, e.state, e.payload, o.http_status, o.error,
                     o.attempts, o.transient, kind_of(e.path))  # fmt: skip
        self._journal(self.journal.record, rec)
        self.summary.counts[outcome.status] += 1
        if outcome.status != "sent" or self.results_all:
            self._result(event, outcome.status, outcome.http_status, outcome.error, outcome.attempts)
        if settle:
            self.tracker.settled(event.source)

    def unsent(self, event: Event, reason: str, status: str = "not_sent") -> None:
        """An event without an answer: ``not_sent``, or ``possibly_sent`` when its request went out."""
        rec = Record(event.k1, event.k2, status, event.source, event.fingerprint, event.row, event.state,
                     event.payload, error=reason, kind=kind_of(event.path))  # fmt: skip
        self._journal(self.journal.record, rec)
        self.summary.counts[status] += 1
        self._result(event, status, None, reason, 0)
        self.tracker.settled(event.source)

    def unsent_many(self, events: list[Event], reason: str) -> None:
        """Events a stop left ``not_sent``, recorded in one transaction (a stop stays quick)."""
        if not events:
            return
        recs = [Record(e.k1, e.k2, "not_sent", e.source, e.fingerprint, e.row, e.state, e.payload, error=reason,
                       kind=kind_of(e.path)) for e in events]  # fmt: skip
        self._journal(self.journal.record_many, recs)
        self.summary.counts["not_sent"] += len(events)
        for e in events:
            self._result(e, "not_sent", None, reason, 0)
            self.tracker.settled(e.source)

    # -- the results file ------------------------------------------------------------------
    def _result(self, event: Event, status: str, http: int | None, error: str | None, attempts: int) -> None:
        self._pending.append(
            {
                "source_file": event.source,
                "row_number": event.row,
                "state": event.state,
                "status": status,
                "http_status": http,
                "error": error,
                "attempts": attempts,
                "payload": event.payload.decode(),
                "event_key": key_text(event.k1, event.k2),
            }
        )
        if len(self._pending) >= _FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        cols = {k: [r[k] for r in rows] for k in rows[0]}
        self.write_results(results_table(**cols))

    def write_results(self, table: pa.Table) -> None:
        """Write results records; a results file that cannot be written stops the run (``on_error``)."""
        if self.results_failed is not None:
            return
        try:
            self.results.write(table)
            self.records += table.num_rows
        except (OSError, pa.ArrowException) as exc:
            self.results_failed = TerminalError(
                f"cannot write the results file {self.results.path} ({getattr(exc, 'strerror', None) or exc})",
                hint="free some space (or choose another --results) and run the same command again",
            )
            self.on_error(self.results_failed)

    def carry_earlier(self) -> dict[str, int]:
        """For a run with no results of its own: list what earlier runs left in this results file too.

        Events failed, not sent or possibly sent are copied from the journal (with their payloads, so
        ``retry`` takes this file); invalid rows, which the journal only counts, get one row per file,
        reason and field that points at the results file listing them. Their ``error`` says which run
        left them; the run's own counts do not include them.
        """
        carried: Counter[str] = Counter()
        files = self.journal.results_files()
        try:
            for rows in self.journal.unresolved(self.journal.run_id):
                cols = list(zip(*rows, strict=True))
                self.write_results(
                    results_table(
                        source_file=pa.array(cols[0], pa.string()),
                        row_number=pa.array(cols[1], pa.int64()),
                        state=pa.array(cols[2], pa.string()),
                        status=pa.array(cols[3], pa.string()),
                        http_status=pa.array(cols[4], pa.int32()),
                        error=[_from_run(run, error) for run, error in zip(cols[10], cols[5], strict=True)],
                        attempts=pa.array(cols[6], pa.int32()),
                        payload=pa.array(cols[7], pa.string()),
                        event_key=[key_text(k1, k2) for k1, k2 in zip(cols[8], cols[9], strict=True)],
                    )
                )
                carried.update(cols[3])
            invalid = invalid_before(self.journal.db, self.journal.run_id)
        except sqlite3.Error as exc:
            self.on_error(TerminalError(f"cannot read the journal {self.journal.path} ({exc})"))
            return dict(carried)
        if invalid:
            errors = [
                f"{count:,} invalid row{'' if count == 1 else 's'}: {reason}"
                + (f" (found by run #{run}; each row is listed in {files[run]})" if run in files else "")
                for _, reason, _, count, run in invalid
            ]
            self.write_results(
                results_table(
                    source_file=[r[0] for r in invalid],
                    status="invalid",
                    field=pa.array([r[2] for r in invalid], pa.string()),
                    error=errors,
                )
            )
            carried["invalid"] = sum(r[3] for r in invalid)
        return dict(carried)

    def _journal(self, call: Any, *args: Any) -> None:
        """A journal write; one that fails (a full disk) stops the run through ``on_error``."""
        try:
            call(*args)
        except sqlite3.Error as exc:
            self.on_error(
                TerminalError(
                    f"cannot write the journal {self.journal.path} ({exc})",
                    hint="free some space in the state directory and run the same command again",
                )
            )


def _from_run(run: int | None, error: str | None) -> str:
    left = f"left by run #{run}" if run is not None else "left by an earlier run"
    return f"{left}: {error}" if error else left


def _raise(error: TerminalError) -> None:
    raise error
