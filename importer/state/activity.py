"""What the run report needs beyond the journal's events: compact counters, never one row per request.

- ``send_windows``: per run and per rate-limit window (the limiter's window, 10 s on HubSpot), the
  requests made, retries, 429 answers, the limit in force and the daily quota headers last seen.
  A 10M-event backfill at 190/10s makes ~53,000 such rows.
- ``invalid_counts``: invalid events per input file, day of ``occurredTimestamp``, reason and field.
  A file read again replaces its counts (``forget_invalid``), so reruns do not count twice.
- ``invalid_samples``: at most ``SAMPLES`` rows (file, row, field, value) per file and reason —
  the same values the results file holds, nothing more.
- three columns of ``events`` (``day``, ``media``, ``contact``), derived from each payload when it is
  journaled: the day of ``occurredTimestamp``, the media id, and a hash of the contact (never the id).
- running totals of ``events`` kept by triggers: ``event_days`` (events by day, status and
  transient), ``sent_contacts`` (the distinct contact hashes sent) and ``media_sent`` (events sent
  per media). The report reads these instead of scanning the journal.

``migrate`` adds what an older state directory lacks; it is safe to call on every open.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

SAMPLES = 5
DAY_MS = 86_400_000
SCHEMA_VERSION = 1

_TABLES = """
CREATE TABLE IF NOT EXISTS send_windows (
    run_id INTEGER NOT NULL,
    start REAL NOT NULL,
    seconds REAL NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    retries INTEGER NOT NULL DEFAULT 0,
    rate_limited INTEGER NOT NULL DEFAULT 0,
    rate_limit INTEGER,
    daily INTEGER,
    daily_remaining INTEGER,
    PRIMARY KEY (run_id, start)
);
CREATE TABLE IF NOT EXISTS invalid_counts (
    source TEXT NOT NULL,
    day INTEGER,
    reason TEXT NOT NULL,
    field TEXT,
    count INTEGER NOT NULL,
    run_id INTEGER
);
CREATE INDEX IF NOT EXISTS invalid_counts_source ON invalid_counts(source);
CREATE TABLE IF NOT EXISTS invalid_samples (
    source TEXT NOT NULL,
    reason TEXT NOT NULL,
    row INTEGER,
    field TEXT,
    value TEXT
);
CREATE INDEX IF NOT EXISTS invalid_samples_source ON invalid_samples(source, reason);
"""
# Running totals of the events table, kept by triggers in the same transaction as each change, so
# the report reads a few hundred rows instead of scanning (and sorting) millions. (No OR IGNORE in a
# trigger: the conflict clause of the journal's outer UPSERT would override it.)
_COUNTERS = """
CREATE TABLE event_days (
    day INTEGER NOT NULL,  -- -1: not known
    status TEXT NOT NULL,
    transient INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (day, status, transient)
) WITHOUT ROWID;
CREATE TABLE sent_contacts (contact INTEGER PRIMARY KEY);
CREATE TABLE media_sent (media TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO event_days(day, status, transient, n)
    SELECT COALESCE(day, -1), status, transient, COUNT(*) FROM events GROUP BY 1, 2, 3;
INSERT INTO sent_contacts(contact)
    SELECT DISTINCT contact FROM events WHERE status = 'sent' AND contact IS NOT NULL;
INSERT INTO media_sent(media, n)
    SELECT media, COUNT(*) FROM events WHERE status = 'sent' AND media IS NOT NULL GROUP BY media;
CREATE TRIGGER events_counted_insert AFTER INSERT ON events BEGIN
    INSERT INTO event_days(day, status, transient, n) VALUES (COALESCE(NEW.day, -1), NEW.status, NEW.transient, 1)
        ON CONFLICT(day, status, transient) DO UPDATE SET n = n + 1;
    INSERT INTO sent_contacts(contact) SELECT NEW.contact WHERE NEW.status = 'sent' AND NEW.contact IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM sent_contacts WHERE contact = NEW.contact);
    INSERT INTO media_sent(media, n) SELECT NEW.media, 1 WHERE NEW.status = 'sent' AND NEW.media IS NOT NULL
        ON CONFLICT(media) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER events_counted_update AFTER UPDATE ON events
WHEN OLD.status IS NOT NEW.status OR OLD.transient IS NOT NEW.transient OR OLD.day IS NOT NEW.day
     OR OLD.media IS NOT NEW.media OR OLD.contact IS NOT NEW.contact
BEGIN
    UPDATE event_days SET n = n - 1
        WHERE day = COALESCE(OLD.day, -1) AND status = OLD.status AND transient = OLD.transient;
    INSERT INTO event_days(day, status, transient, n) VALUES (COALESCE(NEW.day, -1), NEW.status, NEW.transient, 1)
        ON CONFLICT(day, status, transient) DO UPDATE SET n = n + 1;
    INSERT INTO sent_contacts(contact) SELECT NEW.contact WHERE NEW.status = 'sent' AND NEW.contact IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM sent_contacts WHERE contact = NEW.contact);
    UPDATE media_sent SET n = n - 1 WHERE OLD.status = 'sent' AND media = OLD.media;
    INSERT INTO media_sent(media, n) SELECT NEW.media, 1 WHERE NEW.status = 'sent' AND NEW.media IS NOT NULL
        ON CONFLICT(media) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER events_counted_delete AFTER DELETE ON events BEGIN
    UPDATE event_days SET n = n - 1
        WHERE day = COALESCE(OLD.day, -1) AND status = OLD.status AND transient = OLD.transient;
    UPDATE media_sent SET n = n - 1 WHERE OLD.status = 'sent' AND media = OLD.media;
END;
"""
_EVENT_COLUMNS = {"day": "INTEGER", "media": "TEXT", "contact": "INTEGER"}
_LINE_PREFIX = r"^line \d+: "  # a malformed row's reason names its line: the reason is what follows
_TIMESTAMP = r'"occurredTimestamp":\s*(?P<ms>-?\d+)'


def migrate(db: sqlite3.Connection) -> None:
    """Create the report's tables and add the events' columns an older journal lacks."""
    db.executescript(_TABLES)
    have = {str(row[1]) for row in db.execute("PRAGMA table_info(events)")}
    missing = [name for name in _EVENT_COLUMNS if name not in have]
    for name in missing:
        db.execute(f"ALTER TABLE events ADD COLUMN {name} {_EVENT_COLUMNS[name]}")
    if missing:
        # Events kept with their payload (not sent yet) get their day back; sent ones had their
        # payload dropped, so their day stays unknown and the report says so.
        db.execute(
            f"UPDATE events SET day = CAST(json_extract(payload, '$.occurredTimestamp') / {DAY_MS} AS INTEGER), "
            "media = COALESCE(CAST(json_extract(payload, '$.mediaBridgeId') AS TEXT), "
            "json_extract(payload, '$.externalId')) "
            "WHERE payload IS NOT NULL AND json_valid(payload)"
        )
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'event_days'").fetchone() is None:
        # Counted from the events once (one scan of an older journal), then kept by the triggers.
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'event_days'").fetchone() is None:
                for statement in _statements(_COUNTERS):
                    db.execute(statement)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


def _statements(script: str) -> list[str]:
    """The statements of a script (executescript would commit the transaction they must share)."""
    out, current = [], ""
    for line in script.strip().splitlines():
        current += line + "\n"
        if sqlite3.complete_statement(current):
            out.append(current)
            current = ""
    return out


def event_facets(payload: bytes) -> tuple[int | None, str | None, int | None]:
    """(day of occurredTimestamp, media id, contact hash) of one payload, for the events table."""
    try:
        body = json.loads(payload)
    except ValueError:
        return None, None, None
    if not isinstance(body, dict):
        return None, None, None
    ts = body.get("occurredTimestamp")
    day = int(ts) // DAY_MS if isinstance(ts, int | float) and not isinstance(ts, bool) else None
    media = body.get("mediaBridgeId", body.get("externalId"))
    contact = body.get("contactId", body.get("contactUtk"))
    return day, None if media is None else str(media), None if contact is None else contact_hash(str(contact))


def contact_hash(value: str) -> int:
    """Distinct contacts are counted by this hash: the journal keeps no contact id for sent events."""
    digest = hashlib.blake2b(value.encode(), digest_size=8, person=b"media-contact").digest()
    return int.from_bytes(digest, "big", signed=True)


# -- invalid events ------------------------------------------------------------------------------
def forget_invalid(db: sqlite3.Connection, source: str) -> None:
    """A file is being read again: its invalid events are counted anew."""
    db.execute("BEGIN")
    db.execute("DELETE FROM invalid_counts WHERE source = ?", (source,))
    db.execute("DELETE FROM invalid_samples WHERE source = ?", (source,))
    db.execute("COMMIT")


def record_invalid(db: sqlite3.Connection, invalid: pa.Table, run_id: int | None) -> None:
    """Count a batch's invalid results records by file, day, reason and field; keep a few samples."""
    if invalid.num_rows == 0:
        return
    reason = pc.replace_substring_regex(pc.fill_null(invalid.column("error"), "invalid"), _LINE_PREFIX, "")
    ms = pc.struct_field(pc.extract_regex(pc.fill_null(invalid.column("payload"), ""), _TIMESTAMP), [0])
    day = pc.floor(pc.divide(pc.cast(pc.if_else(pc.equal(ms, ""), None, ms), pa.float64()), float(DAY_MS)))
    table = pa.table(
        {
            "source": invalid.column("source_file"),
            "day": pc.cast(day, pa.int64()),
            "reason": reason,
            "field": invalid.column("field"),
            "row": invalid.column("row_number"),
            "value": invalid.column("value"),
        }
    )
    counts = table.group_by(["source", "day", "reason", "field"], use_threads=False).aggregate([([], "count_all")])
    samples = _first_per_group(table, ["source", "reason"], SAMPLES)
    db.execute("BEGIN")
    try:
        db.executemany(
            "INSERT INTO invalid_counts(source, day, reason, field, count, run_id) VALUES (?, ?, ?, ?, ?, ?)",
            [(*row, run_id) for row in _rows(counts, ["source", "day", "reason", "field", "count_all"])],
        )
        db.executemany(
            "INSERT INTO invalid_samples(source, reason, row, field, value) SELECT ?, ?, ?, ?, ? "
            f"WHERE (SELECT COUNT(*) FROM invalid_samples WHERE source = ?1 AND reason = ?2) < {SAMPLES}",
            _rows(samples, ["source", "reason", "row", "field", "value"]),
        )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def invalid_before(db: sqlite3.Connection, run_id: int | None) -> list[tuple[str, str, str | None, int, int | None]]:
    """Invalid rows earlier runs found in files not read again since: (source, reason, field, count, run)."""
    rows = db.execute(
        "SELECT source, reason, field, SUM(count), MAX(run_id) FROM invalid_counts "
        "WHERE run_id IS NULL OR run_id < ? GROUP BY source, reason, field ORDER BY source, 4 DESC",
        (run_id if run_id is not None else 2**62,),
    ).fetchall()
    return [(str(a), str(b), c, int(d), e) for a, b, c, d, e in rows]


def _first_per_group(table: pa.Table, keys: list[str], n: int) -> pa.Table:
    """The first ``n`` rows of each group (invalid rows are few: this runs on them only)."""
    indexed = table.append_column("_i", pa.array(range(table.num_rows), pa.int64()))
    firsts = indexed.group_by(keys, use_threads=False).aggregate([("_i", "list")])
    take = [i for group in firsts.column("_i_list").to_pylist() for i in group[:n]]
    return table.take(pa.array(sorted(take), pa.int64()))


def _rows(table: pa.Table, names: list[str]) -> list[tuple[Any, ...]]:
    return list(zip(*(table.column(n).to_pylist() for n in names), strict=True))


# -- sending windows -----------------------------------------------------------------------------
class SendMeter:
    """Per-window request counters of a run, sampled from the sender's running totals.

    ``sample`` is called as outcomes arrive (many times a window while sending); the deltas since the
    last sample go to the window the sample falls in, and a window is written when the next begins.
    """

    def __init__(self, db: sqlite3.Connection, run_id: int | None, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.run_id = run_id or 0
        self.clock = clock
        self._seen = (0, 0, 0)  # requests, retries, 429s at the last sample
        self._start: float | None = None
        self._seconds = 10.0
        self._counts = [0, 0, 0]
        self._limit: int | None = None
        self._daily: int | None = None
        self._remaining: int | None = None

    def sample(
        self,
        totals: tuple[int, int, int],
        window_s: float | None,
        limit: int | None,
        daily: int | None,
        remaining: int | None,
    ) -> None:
        """``totals``: the run's requests, retries and 429 answers so far."""
        seconds = window_s if window_s and window_s > 0 else 10.0
        now = self.clock()
        start = math.floor(now / seconds) * seconds
        if self._start is not None and (start != self._start or seconds != self._seconds):
            self.flush()
        self._start, self._seconds = start, seconds
        for i in range(3):
            self._counts[i] += max(0, totals[i] - self._seen[i])
        self._seen = totals
        self._limit, self._daily, self._remaining = limit, daily, remaining

    def flush(self) -> None:
        """Write the current window (a no-op when nothing happened in it)."""
        if self._start is None or not any(self._counts):
            return
        self.db.execute(
            """INSERT INTO send_windows(run_id, start, seconds, requests, retries, rate_limited, rate_limit,
                                        daily, daily_remaining)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(run_id, start) DO UPDATE SET
                 requests = requests + excluded.requests, retries = retries + excluded.retries,
                 rate_limited = rate_limited + excluded.rate_limited, rate_limit = excluded.rate_limit,
                 daily = excluded.daily, daily_remaining = excluded.daily_remaining""",
            (self.run_id, self._start, self._seconds, *self._counts, self._limit, self._daily, self._remaining),
        )
        self._counts = [0, 0, 0]
