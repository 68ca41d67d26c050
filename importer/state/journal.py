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

import hashlib
import json
import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from importer.errors import ConfigError, LockedError
from importer.mapping.keyset import hash_keys
from importer.source.readers import SourceFile
from importer.state.activity import event_facets, migrate

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
_KEY_SALT_1 = "journal-key-1..."
_KEY_SALT_2 = "journal-key-2..."


def event_keys(events: pa.Table, dedupe: tuple[str, ...] | None) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit hashes of each event's natural key, as int64 (SQLite integers)."""
    names = list(dedupe) if dedupe else ["payload"]
    cols = [events.column(n).combine_chunks() for n in names]
    k1 = hash_keys(cols, salt=_KEY_SALT_1).view(np.int64)
    k2 = hash_keys(cols, salt=_KEY_SALT_2).view(np.int64)
    return k1, k2


def payload_hash(payload: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(payload, digest_size=8).digest(), "big", signed=True)


def payload_hashes(events: pa.Table) -> np.ndarray:
    """``payload_hash`` of every event's payload column."""
    return np.array([payload_hash(p.encode()) for p in events.column("payload").to_pylist()], dtype=np.int64)


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


class Journal:
    """The SQLite journal of one state directory."""

    def __init__(self, state_dir: str | Path) -> None:
        self.dir = Path(state_dir)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            os.chmod(self.dir, 0o700)
        except OSError as exc:
            raise ConfigError(f"cannot create the state directory {self.dir} ({exc.strerror or exc})") from None
        self.path = self.dir / "journal.sqlite"
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=10000")
        self.db.executescript(SCHEMA)
        migrate(self.db)  # the report's columns and counters (importer/state/activity.py)
        self.run_id: int | None = None

    def close(self) -> None:
        self.db.close()

    # -- runs -------------------------------------------------------------------------------
    def start_run(self, command: str) -> int:
        cur = self.db.execute("INSERT INTO runs(started_at, command) VALUES (?, ?)", (time.time(), command))
        self.run_id = int(cur.lastrowid or 0)
        return self.run_id

    def finish_run(self, summary: dict[str, Any], exit_code: int) -> None:
        self.db.execute(
            "UPDATE runs SET finished_at=?, summary=?, exit_code=? WHERE id=?",
            (time.time(), json.dumps(summary), exit_code, self.run_id),
        )

    def runs(self, limit: int = 10) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT id, started_at, finished_at, command, summary, exit_code FROM runs ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        keys = ("id", "started_at", "finished_at", "command", "summary", "exit_code")
        out = []
        for row in rows:
            rec = dict(zip(keys, row, strict=True))
            rec["summary"] = json.loads(rec["summary"]) if rec["summary"] else None
            out.append(rec)
        return out

    # -- events -----------------------------------------------------------------------------
    _SENT = "e.status = 'sent'"
    _REFUSED = "e.status = 'failed' AND e.transient = 0"
    _HELD = "e.status = 'possibly_sent'"  # no answer in time: it may have arrived

    def _matches(self, k1: np.ndarray, k2: np.ndarray, where: str, value: str = "1") -> list[tuple[int, Any]]:
        """(position, value) of each key whose record satisfies ``where`` — one join for a whole batch."""
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

    def sent_hashes(self, k1: np.ndarray, k2: np.ndarray) -> np.ndarray:
        """The payload hash each key was sent with (0 where it was not sent)."""
        out = np.zeros(len(k1), dtype=np.int64)
        for i, h in self._matches(k1, k2, self._SENT, "e.payload_hash"):
            out[i] = h or 0
        return out

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

    def record(self, rec: Record) -> None:
        """Record one outcome and commit it. A ``sent`` is never downgraded."""
        keep_payload = rec.status != "sent"
        self.db.execute(
            """INSERT INTO events(k1, k2, status, transient, source, fingerprint, row, state, payload_hash,
                                  http_status, error, attempts, payload, run_id, updated_at, day, media, contact)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(k1, k2) DO UPDATE SET
                 status=excluded.status, transient=excluded.transient, source=excluded.source,
                 fingerprint=excluded.fingerprint, row=excluded.row, state=excluded.state,
                 payload_hash=excluded.payload_hash, http_status=excluded.http_status,
                 error=excluded.error, attempts=excluded.attempts, payload=excluded.payload,
                 run_id=excluded.run_id, updated_at=excluded.updated_at,
                 day=excluded.day, media=excluded.media, contact=excluded.contact
               WHERE events.status != 'sent' OR excluded.status = 'sent'""",
            (
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
            ),
        )

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
    ) -> list[tuple[int, int, str, int | None, str | None, str]]:
        """Events left unsent by earlier runs: (k1, k2, source, row, state, payload); with
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
        return self.db.execute(
            f"SELECT k1, k2, source, row, state, payload FROM events WHERE ({where}) AND payload IS NOT NULL{extra}",
            args,
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


_HELD: dict[str, int] = {}  # lock path → how many times this process took it
log = logging.getLogger("media_import")


class StateLock:
    """One run per state directory: a lock file holding the owner's pid.

    ``O_EXCL`` creation makes taking it atomic; a lock whose process is gone
    (a crash, a kill -9) is stale and taken over, with a warning.
    """

    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir) / "lock"
        self.took_over_from: int | None = None

    def acquire(self) -> StateLock:
        key = str(self.path.resolve())
        if _HELD.get(key):  # this process holds it already (the CLI around the runner)
            _HELD[key] += 1
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                owner = self._owner()
                if owner is not None and _alive(owner) and owner != os.getpid():
                    raise LockedError(
                        f"another media-import run (pid {owner}) is using the state directory {self.path.parent}",
                        hint="wait for it to finish; if no such process exists, delete the lock file",
                    ) from None
                self.took_over_from = owner
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(str(os.getpid()))
            if self.took_over_from is not None:
                log.warning(
                    "took over a stale lock of pid %s in %s (that run ended without cleaning up)",
                    self.took_over_from,
                    self.path.parent,
                )
            _HELD[key] = 1
            return self
        raise LockedError(f"cannot take the lock {self.path}", hint="another run took it at the same moment")

    def release(self) -> None:
        key = str(self.path.resolve())
        depth = _HELD.get(key, 0)
        if depth > 1:
            _HELD[key] = depth - 1
            return
        _HELD.pop(key, None)
        if self._owner() == os.getpid():
            self.path.unlink(missing_ok=True)

    def _owner(self) -> int | None:
        try:
            return int(self.path.read_text().strip() or "0") or None
        except (OSError, ValueError):
            return None

    def __enter__(self) -> StateLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
