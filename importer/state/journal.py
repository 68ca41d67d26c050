"""The journal: what was sent, in SQLite, so reruns and crashes never send an event twice.

An event's identity is a 128-bit hash of its natural key: the mapping's dedupe
fields (sessionId + state by default), or the whole payload when dedupe is
off. It does not depend on file names, so a renamed, moved or re-exported file
sends nothing twice, and a file that grew sends only its new events. Each
record also keeps where the event came from (file fingerprint, row, state) and
a hash of the payload it was sent with.

An event is recorded as ``sent`` only after HubSpot's 2xx, and committed at
once (WAL, synchronous=NORMAL: a commit survives the process being killed).
So a crash can re-send at most the events that were in flight.

Tables: ``events`` (sent / failed / not_sent, with the payload of those not
sent, for re-driving), ``runs`` (history), ``files`` (the manifest of input
files seen, for incremental runs); what the run report needs besides (per-window
send counters, invalid events by reason) is in ``activity.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from importer.errors import ConfigError, StateError
from importer.source.readers import SourceFile
from importer.state.activity import event_facets, migrate
from importer.state.identity import payload_hash

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    k1 INTEGER NOT NULL,
    k2 INTEGER NOT NULL,
    status TEXT NOT NULL,
    transient INTEGER NOT NULL DEFAULT 0,
    source TEXT,
    fingerprint TEXT,
    row INTEGER,
    state TEXT,
    payload_hash INTEGER,
    http_status INTEGER,
    error TEXT,
    attempts INTEGER,
    payload TEXT,
    run_id INTEGER,
    updated_at REAL,
    PRIMARY KEY (k1, k2)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_status ON events(status) WHERE status != 'sent';
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started_at REAL NOT NULL,
    finished_at REAL,
    command TEXT,
    summary TEXT,
    exit_code INTEGER
);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER,
    mtime_ns INTEGER,
    fingerprint TEXT,
    rows INTEGER,
    complete INTEGER,
    run_id INTEGER
);
CREATE TABLE IF NOT EXISTS state (
    name TEXT PRIMARY KEY,
    value TEXT
);
"""
STATUSES = ("sent", "failed", "not_sent", "possibly_sent")
"""Event statuses in the journal. ``possibly_sent``: the request went out but its answer never came
(a timeout, or a stop past the grace period); HubSpot may have it. It is never downgraded from
``sent`` and is re-driven only when asked (``pending(include_held=True)``, ``--on-timeout retry``)."""
JOURNAL = "journal.sqlite"
HISTORY = "history.json"
RECOVERY = (
    "restore the journal from a backup (copy journal.sqlite together with its -wal file); to start "
    "afresh knowingly (every event would be sent again), move the state directory away"
)


def fingerprint(source: SourceFile) -> str:
    """A content fingerprint of a file: its size and a hash of its first MiB."""
    if source.fs is not None:  # object storage: size and modification time stand for the content
        return f"{source.size}-{source.mtime_ns}"
    digest = hashlib.blake2b(digest_size=12)
    try:
        with open(source.path, "rb") as fh:
            digest.update(fh.read(1 << 20))
    except OSError:
        pass
    return f"{source.size}-{digest.hexdigest()}"


@dataclass
class Record:
    """What the journal keeps for one event."""

    k1: int
    k2: int
    status: str
    source: str
    fingerprint: str
    row: int | None
    state: str | None
    payload: bytes
    http_status: int | None = None
    error: str | None = None
    attempts: int = 0
    transient: bool = False
    kind: str | None = None  # the endpoint's type (played / percent), for re-driving


class Lookups:
    """Batch questions to the journal (one join per batch) on a connection of their own.

    The reading thread holds one of these, so it never shares a connection with the event loop,
    which alone writes.
    """

    _SENT = "e.status = 'sent'"
    _REFUSED = "e.status = 'failed' AND e.transient = 0"
    _HELD = "e.status = 'possibly_sent'"  # no answer in time: it may have arrived

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def _matches(self, k1: np.ndarray, k2: np.ndarray, where: str, value: str = "1") -> list[tuple[int, Any]]:
        """(position, value) of each key whose record satisfies ``where``."""
        if len(k1) == 0:
            return []
        self._probe(k1, k2)
        query = f"SELECT p.i, {value} FROM probe p JOIN events e ON e.k1 = p.k1 AND e.k2 = p.k2 WHERE {where}"
        return self.db.execute(query).fetchall()

    def _mask(self, k1: np.ndarray, k2: np.ndarray, where: str) -> np.ndarray:
        mask = np.zeros(len(k1), dtype=bool)
        mask[[i for i, _ in self._matches(k1, k2, where)]] = True
        return mask

    def sent_mask(self, k1: np.ndarray, k2: np.ndarray) -> np.ndarray:
        """Which of these keys are already recorded as sent."""
        return self._mask(k1, k2, self._SENT)

    def refused_mask(self, k1: np.ndarray, k2: np.ndarray) -> np.ndarray:
        """Which of these keys HubSpot refused for good (a 4xx) in an earlier run."""
        return self._mask(k1, k2, self._REFUSED)

    def held_mask(self, k1: np.ndarray, k2: np.ndarray) -> np.ndarray:
        """Which of these keys were possibly sent (their request timed out) and are held."""
        return self._mask(k1, k2, self._HELD)

    def sent_hashes(self, k1: np.ndarray, k2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which of these keys are recorded as sent, and the payload hash each was sent with (0: none)."""
        sent = np.zeros(len(k1), dtype=bool)
        out = np.zeros(len(k1), dtype=np.int64)
        for i, h in self._matches(k1, k2, self._SENT, "e.payload_hash"):
            sent[i] = True
            out[i] = h or 0
        return sent, out

    def _probe(self, k1: np.ndarray, k2: np.ndarray) -> None:
        """Load keys into a temp table, so one join answers for a whole batch."""
        self.db.execute("CREATE TEMP TABLE IF NOT EXISTS probe (i INTEGER PRIMARY KEY, k1 INTEGER, k2 INTEGER)")
        self.db.execute("DELETE FROM probe")
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT INTO probe(i, k1, k2) VALUES (?, ?, ?)",
            zip(range(len(k1)), k1.tolist(), k2.tolist(), strict=True),
        )
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()


class Journal(Lookups):
    """The SQLite journal of one state directory, opened once per run (``Journal.open``)."""

    def __init__(self, state_dir: str | Path, *, create: bool = True) -> None:
        self.dir = Path(state_dir)
        self.path = self.dir / JOURNAL
        if create:
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
                os.chmod(self.dir, 0o700)
            except OSError as exc:
                raise ConfigError(f"cannot create the state directory {self.dir} ({exc.strerror or exc})") from None
        _refuse_lost_journal(self.dir, self.path)
        if not create and not self.path.exists():
            raise ConfigError(f"no journal in {self.dir}", hint="run media-import run first, or pass --state-dir")
        self.run_id: int | None = None
        self._readers: list[Lookups] = []
        try:
            if create and not self.path.exists():
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600))
            super().__init__(self._connect())
            self.db.executescript(SCHEMA)
            _migrate(self.db)
            migrate(self.db)  # the report's columns and counters (importer/state/activity.py)
            runs = int(self.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            raise StateError(
                f"the journal {self.path} is not a usable SQLite database ({exc})", hint=RECOVERY
            ) from None
        except OSError as exc:
            raise StateError(f"cannot open the journal {self.path} ({exc.strerror or exc})", hint=RECOVERY) from None
        for name in (JOURNAL, JOURNAL + "-wal", JOURNAL + "-shm"):
            with contextlib.suppress(OSError):
                os.chmod(self.dir / name, 0o600)
        if runs:
            _write_history(self.dir, runs)

    @classmethod
    def open(cls, state_dir: str | Path, *, create: bool = True) -> Journal:
        return cls(state_dir, create=create)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=10000")
        return db

    def lookups(self) -> Lookups:
        """Read-only batch questions on a second connection, for the reading thread."""
        reader = Lookups(self._connect())
        self._readers.append(reader)
        return reader

    def close(self) -> None:
        for reader in self._readers:
            with contextlib.suppress(sqlite3.Error):
                reader.close()
        self._readers.clear()
        self.db.close()

    # -- runs -------------------------------------------------------------------------------
    def start_run(self, command: str, results: str | None = None) -> int:
        cur = self.db.execute(
            "INSERT INTO runs(started_at, command, pid, results) VALUES (?, ?, ?, ?)",
            (time.time(), command, os.getpid(), results),
        )
        self.run_id = int(cur.lastrowid or 0)
        _write_history(self.dir, self.run_id)
        return self.run_id

    def finish_run(self, summary: dict[str, Any], exit_code: int) -> None:
        self.db.execute(
            "UPDATE runs SET finished_at=?, summary=?, exit_code=? WHERE id=?",
            (time.time(), json.dumps(summary), exit_code, self.run_id),
        )

    def runs(self, limit: int = 10) -> list[dict[str, Any]]:
        """The last runs, newest first; a run that never finished has what it recorded as ``sent_by_run``."""
        rows = self.db.execute(
            "SELECT id, started_at, finished_at, command, summary, exit_code, pid, results FROM runs "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        keys = ("id", "started_at", "finished_at", "command", "summary", "exit_code", "pid", "results")
        out = []
        for row in rows:
            rec = dict(zip(keys, row, strict=True))
            rec["summary"] = json.loads(rec["summary"]) if rec["summary"] else None
            if rec["summary"] is None:
                rec["recorded"] = self.recorded_by_run(int(rec["id"]))
            out.append(rec)
        return out

    def results_files(self) -> dict[int, str]:
        """Each run's results file, by run id."""
        rows = self.db.execute("SELECT id, results FROM runs WHERE results IS NOT NULL").fetchall()
        return {int(i): str(r) for i, r in rows}

    def recorded_by_run(self, run_id: int) -> dict[str, int]:
        """Events whose last outcome was recorded by this run, by status (what a killed run did)."""
        rows = self.db.execute(
            "SELECT status, COUNT(*) FROM events WHERE run_id = ? GROUP BY status", (run_id,)
        ).fetchall()
        return {str(s): int(c) for s, c in rows}

    # -- events -----------------------------------------------------------------------------
    _UPSERT = """INSERT INTO events(k1, k2, status, transient, source, fingerprint, row, state, payload_hash,
                                  http_status, error, attempts, payload, run_id, updated_at, day, media, contact, kind)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(k1, k2) DO UPDATE SET
                 status=excluded.status, transient=excluded.transient, source=excluded.source,
                 fingerprint=excluded.fingerprint, row=excluded.row, state=excluded.state,
                 payload_hash=excluded.payload_hash, http_status=excluded.http_status,
                 error=excluded.error, attempts=excluded.attempts, payload=excluded.payload,
                 run_id=excluded.run_id, updated_at=excluded.updated_at,
                 day=excluded.day, media=excluded.media, contact=excluded.contact, kind=excluded.kind
               WHERE events.status != 'sent' OR excluded.status = 'sent'"""

    def _row(self, rec: Record) -> tuple[Any, ...]:
        keep_payload = rec.status != "sent"
        return (
            rec.k1,
            rec.k2,
            rec.status,
            int(rec.transient),
            rec.source,
            rec.fingerprint,
            rec.row,
            rec.state,
            payload_hash(rec.payload),
            rec.http_status,
            rec.error,
            rec.attempts,
            rec.payload.decode() if keep_payload else None,
            self.run_id,
            time.time(),
            *event_facets(rec.payload),
            rec.kind,
        )

    def record(self, rec: Record) -> None:
        """Record one outcome and commit it. A ``sent`` is never downgraded."""
        self.db.execute(self._UPSERT, self._row(rec))

    def record_many(self, recs: list[Record]) -> None:
        """Record many outcomes in one transaction (the events a stop leaves unsent)."""
        if not recs:
            return
        self.db.execute("BEGIN")
        try:
            self.db.executemany(self._UPSERT, [self._row(r) for r in recs])
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def unresolved(self, before_run: int | None, chunk: int = 10_000) -> Iterator[list[tuple[Any, ...]]]:
        """Events earlier runs left failed, not sent or possibly sent, in chunks, oldest run first:
        (source, row, state, status, http_status, error, attempts, payload, k1, k2, run_id)."""
        cur = self.db.execute(
            "SELECT source, row, state, status, http_status, error, attempts, payload, k1, k2, run_id FROM events "
            "WHERE status != 'sent' AND (run_id IS NULL OR run_id < ?) ORDER BY run_id, source, row",
            (before_run if before_run is not None else 2**62,),
        )
        while rows := cur.fetchmany(chunk):
            yield rows

    def counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT status, COUNT(*) FROM events GROUP BY status").fetchall()
        return {str(s): int(c) for s, c in rows}

    def claim(self, k1: np.ndarray, k2: np.ndarray, run_id: int | None) -> None:
        """Mark these keys' unsent records as this run's, so they are not re-driven as leftovers too."""
        if len(k1) == 0 or run_id is None:
            return
        self._probe(k1, k2)
        self.db.execute(
            "UPDATE events SET run_id = ? WHERE status != 'sent' AND EXISTS "
            "(SELECT 1 FROM probe p WHERE p.k1 = events.k1 AND p.k2 = events.k2)",
            (run_id,),
        )

    def pending(
        self, *, include_terminal: bool = False, include_held: bool = False, before_run: int | None = None
    ) -> list[tuple[int, int, str, int | None, str | None, str, str | None]]:
        """Events left unsent by earlier runs: (k1, k2, source, row, state, payload, kind); with
        ``include_held`` also those possibly sent (sending them again risks a duplicate)."""
        where = "status = 'not_sent' OR (status = 'failed' AND transient = 1)"
        if include_terminal:
            where += " OR status = 'failed'"
        if include_held:
            where += " OR status = 'possibly_sent'"
        args: tuple[int, ...] = ()
        extra = ""
        if before_run is not None:
            extra, args = " AND (run_id IS NULL OR run_id < ?)", (before_run,)
        columns = "k1, k2, source, row, state, payload, kind"
        return self.db.execute(
            f"SELECT {columns} FROM events WHERE ({where}) AND payload IS NOT NULL{extra}", args
        ).fetchall()

    def pending_counts(self) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT CASE WHEN status = 'failed' AND transient = 0 THEN 'failed_terminal' "
            "WHEN status = 'failed' THEN 'failed_transient' ELSE status END, COUNT(*) "
            "FROM events WHERE status != 'sent' GROUP BY 1"
        ).fetchall()
        return {str(k): int(v) for k, v in rows}

    # -- the file manifest and named values ---------------------------------------------------------
    def file_done(self, source: SourceFile) -> bool:
        """True when this exact file (path, size, mtime) was fully imported by an earlier run."""
        row = self.db.execute("SELECT size, mtime_ns, complete FROM files WHERE path = ?", (source.path,)).fetchone()
        return bool(row) and row[0] == source.size and row[1] == source.mtime_ns and row[2] == 1

    def file_record(self, path: str) -> tuple[int, int, str, int] | None:
        row = self.db.execute("SELECT size, mtime_ns, fingerprint, rows FROM files WHERE path = ?", (path,)).fetchone()
        return None if row is None else (int(row[0]), int(row[1]), str(row[2]), int(row[3] or 0))

    def mark_file(self, source: SourceFile, fingerprint: str, rows: int, complete: bool) -> None:
        self.db.execute(
            "INSERT INTO files(path, size, mtime_ns, fingerprint, rows, complete, run_id) VALUES (?,?,?,?,?,?,?) "
            "ON CONFLICT(path) DO UPDATE SET size=excluded.size, mtime_ns=excluded.mtime_ns, "
            "fingerprint=excluded.fingerprint, rows=excluded.rows, complete=excluded.complete, run_id=excluded.run_id",
            (source.path, source.size, source.mtime_ns, fingerprint, rows, int(complete), self.run_id),
        )

    def get(self, name: str) -> str | None:
        row = self.db.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, name: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO state(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value=excluded.value",
            (name, value),
        )


def _migrate(db: sqlite3.Connection) -> None:
    """Columns added since the first version of the journal."""
    for table, name, kind in (("runs", "pid", "INTEGER"), ("runs", "results", "TEXT"), ("events", "kind", "TEXT")):
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if name not in have:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


def _refuse_lost_journal(state_dir: Path, path: Path) -> None:
    """A state directory that has run history but no usable journal would re-send everything: refuse."""
    history = state_dir / HISTORY
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        size = None
    except OSError as exc:
        raise StateError(f"cannot read the journal {path} ({exc.strerror or exc})", hint=RECOVERY) from None
    if size:  # a non-empty file: SQLite says whether it is usable
        return
    wal = path.with_name(JOURNAL + "-wal")
    runs = _history_runs(history)
    if runs is None and not wal.exists():
        return  # a new state directory
    what = "is missing" if size is None else "is empty (0 bytes)"
    since = f"{runs} earlier run(s)" if runs else "earlier runs"
    raise StateError(
        f"the journal {path} {what}, but this state directory has run history ({since}): "
        "a run now would send every event again",
        hint=RECOVERY,
    )


def _history_runs(history: Path) -> int | None:
    try:
        data = json.loads(history.read_text(encoding="utf-8"))
        return int(data.get("runs", 0))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, AttributeError, TypeError):
        return 0


def _write_history(state_dir: Path, runs: int) -> None:
    """A note beside the journal that runs happened here, so a lost journal is noticed."""
    path = state_dir / HISTORY
    if _history_runs(path) == runs:
        return
    tmp = path.with_name(HISTORY + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"journal": JOURNAL, "runs": runs, "updated_at": time.time()}, fh)
        os.replace(tmp, path)
    except OSError:  # a full disk: the journal itself says the same
        pass
