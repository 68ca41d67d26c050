"""Incremental runs: which input files still need reading, and when a file counts as imported.

A file is *imported* once it was read to the end and every one of its events
has an outcome in the journal (sent, invalid, failed, or not_sent — the last
two are re-driven by later runs from the journal's copy of the payload). Only
then is it written to the manifest, so a crash can never mark a file whose
events were not all recorded. A later run skips a file whose path, size and
modification time match a complete manifest entry, without opening it.

Watermarks (``--since``) keep events at or after a time, minus a lookback window
so late rows are not lost; the journal dedupes the overlap.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

from importer.errors import ConfigError
from importer.source.readers import SourceFile
from importer.state.journal import Journal

WATERMARK = "watermark_ms"


@dataclass
class _FileState:
    source: SourceFile
    fingerprint: str = ""
    rows: int = 0
    outstanding: int = 0
    fully_read: bool = False
    marked: bool = False


@dataclass
class FileTracker:
    """Counts each file's events without an outcome; marks files imported in the manifest."""

    journal: Journal
    files: dict[str, _FileState] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def admitted(self, source: SourceFile, fingerprint: str, rows: int, events: int) -> None:
        """Called from the reading thread for each batch."""
        with self._lock:
            state = self.files.setdefault(source.path, _FileState(source, fingerprint))
            state.rows += rows
            state.outstanding += events

    def settled(self, path: str) -> None:
        """One event of ``path`` has its outcome recorded."""
        with self._lock:
            state = self.files.get(path)
            if state is None:
                return
            state.outstanding -= 1
        self._maybe_mark(state)

    def read_to_end(self, path: str) -> None:
        with self._lock:
            state = self.files.get(path)
            if state is None:
                return
            state.fully_read = True
        self._maybe_mark(state)

    def _maybe_mark(self, state: _FileState) -> None:
        if state.fully_read and state.outstanding <= 0 and not state.marked:
            state.marked = True
            self.journal.mark_file(state.source, state.fingerprint, state.rows, complete=True)


def split_done(journal: Journal, sources: list[SourceFile]) -> tuple[list[SourceFile], list[SourceFile]]:
    """(to read, already imported and unchanged) — by path, size and mtime only: no byte is read."""
    todo: list[SourceFile] = []
    done: list[SourceFile] = []
    for source in sources:
        (done if journal.file_done(source) else todo).append(source)
    return todo, done


def parse_since(text: str, journal: Journal | None) -> int | None:
    """``--since``: an ISO 8601 time, epoch milliseconds, or ``last`` (the previous run's watermark)."""
    if text == "last":
        if journal is None:
            return None
        value = journal.get(WATERMARK)
        return int(value) if value is not None else None
    try:
        return int(text) if text.isdigit() else _iso_ms(text)
    except ValueError:
        raise ConfigError(
            f"--since: cannot read {text!r}", hint="give an ISO 8601 time (2026-11-01T00:00:00Z), epoch ms, or 'last'"
        ) from None


def _iso_ms(text: str) -> int:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
