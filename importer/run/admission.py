"""Admission: which prepared events go to the sender, decided in the reading thread.

It reads the journal (on a connection of its own) to drop events sent or refused
before, and produces data only: an ``Admitted`` per batch with the events to
send, the results records to write and the counters to add. The run's owner
(``importer.run.owner``) applies it on the event loop, which alone writes.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from importer.hubspot.events import Event, endpoint, session_of
from importer.mapping.plan import PreparedBatch
from importer.run.options import RunOptions
from importer.run.pipeline import Pipeline
from importer.source.readers import SourceFile
from importer.state.identity import event_keys, key_ints, payload_hashes
from importer.state.journal import Lookups, fingerprint
from importer.state.results import read_results, results_table

_EMPTY = np.zeros(0, dtype=np.int64)


@dataclass
class Admitted:
    """One batch's worth of admission: what to send, what to write, what to count."""

    events: list[Event] = field(default_factory=list)
    source: SourceFile | None = None
    fingerprint: str = ""
    rows: int = 0  # rows read from the source
    k1: np.ndarray = field(default_factory=lambda: _EMPTY)  # the keys of ``events``, claimed for this run
    k2: np.ndarray = field(default_factory=lambda: _EMPTY)
    records: list[pa.Table] = field(default_factory=list)  # results records (invalid, skipped)
    counts: Counter[str] = field(default_factory=Counter)  # summary counters to add
    newest_ms: int | None = None  # the newest event time among those kept
    read_to_end: list[str] = field(default_factory=list)  # files read to their end before this batch
    first_of_file: bool = False  # the first batch of its file in this run


def since(events: pa.Table, opts: RunOptions) -> tuple[pa.Table, int]:
    """The events ``--since`` keeps (less the lookback), and how many it left out."""
    if opts.since_ms is None or not events.num_rows:
        return events, 0
    cutoff = opts.since_ms - int(opts.lookback_s * 1000)
    recent = pc.fill_null(pc.greater_equal(events.column("occurredTimestamp"), cutoff), False)
    return events.filter(recent), events.num_rows - int(pc.sum(recent).as_py() or 0)


@dataclass
class Known:
    """What the journal holds of a batch's events that keeps them from being sent (one mask each,
    none overlapping): sent before (with the payload hash sent), refused for good before (a 4xx:
    the same payload would be refused again, unless --retry-terminal), possibly sent before (held,
    unless --on-timeout retry). ``run`` admits by it and ``run --dry-run`` plans by it."""

    sent: np.ndarray
    sent_with: np.ndarray  # the payload hash each sent event was sent with (0: not kept)
    refused: np.ndarray
    held: np.ndarray

    @property
    def to_send(self) -> np.ndarray:
        return np.asarray(~(self.sent | self.refused | self.held))

    @classmethod
    def of(cls, lookups: Lookups, k1: np.ndarray, k2: np.ndarray, opts: RunOptions) -> Known:
        n = len(k1)
        none = np.zeros(n, dtype=bool)
        known = cls(none, np.zeros(n, dtype=np.int64), none.copy(), none.copy())
        if opts.force or n == 0:
            return known
        known.sent, known.sent_with = lookups.sent_hashes(k1, k2)
        rest = np.flatnonzero(~known.sent)  # only the events not sent are asked about further
        if len(rest) and not opts.retry_terminal:
            known.refused[rest] = lookups.refused_mask(k1[rest], k2[rest])
            rest = rest[~known.refused[rest]]
        if len(rest) and opts.on_timeout == "hold":
            known.held[rest] = lookups.held_mask(k1[rest], k2[rest])
        return known


class Admission:
    """Turns the pipeline's prepared batches into ``Admitted`` values (in the reading thread)."""

    def __init__(self, options: RunOptions, lookups: Lookups) -> None:
        self.options = options
        self.lookups = lookups
        self._fingerprints: dict[str, str] = {}

    def stream(self, pipeline: Pipeline) -> Iterator[Admitted]:
        """Every batch admitted; the last value names the last file read to its end."""
        current: str | None = None
        for prepared in pipeline.batches():
            admitted = self.admit(prepared, pipeline.mapping.identity)
            path = prepared.source.path
            if current is not None and path != current:
                admitted.read_to_end.append(current)
            current = path
            yield admitted
        if current is not None:
            yield Admitted(read_to_end=[current])

    def admit(self, prepared: PreparedBatch, identity: tuple[str, ...] | None) -> Admitted:
        """Drop events sent or refused before, keep those at or after --since, and make Events."""
        opts = self.options
        source = prepared.source
        out = Admitted(source=source, rows=prepared.rows)
        out.counts["rows"] = prepared.rows
        out.counts["duplicates"] = prepared.duplicates
        out.counts["skipped_rows"] = sum(prepared.skipped.values())
        if prepared.invalid.num_rows:
            out.records.append(prepared.invalid)
            out.counts["invalid"] = prepared.invalid.num_rows
        fp = self._fingerprints.get(source.path)
        if fp is None:
            fp = self._fingerprints[source.path] = fingerprint(source)
            out.first_of_file = True
        out.fingerprint = fp
        events, before = since(prepared.events, opts)
        if before:
            out.counts["before_since"] = before
        if events.num_rows:
            out.newest_ms = pc.max(events.column("occurredTimestamp")).as_py()
        k1, k2 = event_keys(events, identity)
        known = Known.of(self.lookups, k1, k2, opts)
        if known.sent.any():
            out.counts["skipped"] = int(known.sent.sum())
            # The rule: an event already sent is never re-sent, even if its row changed since.
            sent_with = known.sent_with[known.sent]  # 0: a journal that kept no hash cannot tell
            now = payload_hashes(events.filter(pa.array(known.sent)))
            out.counts["changed"] = int(((sent_with != 0) & (sent_with != now)).sum())
            if opts.results_all:
                out.records.append(_skipped_records(source, events, known.sent))
        for name, mask in (("refused_before", known.refused), ("held_before", known.held)):
            if mask.any():
                out.counts[name] = int(mask.sum())
        keep = known.to_send
        if not keep.all():
            events = events.filter(pa.array(keep))
            k1, k2 = k1[keep], k2[keep]
        out.k1, out.k2 = k1, k2
        payloads = events.column("payload").to_pylist()
        rows = events.column("_row").to_pylist()
        states = events.column("state").to_pylist()
        sessions = events.column("sessionId").to_pylist()
        paths = [endpoint(t) for t in events.column("_type").to_pylist()]
        holds = events.column("_hold").to_pylist() if "_hold" in events.column_names else [None] * len(rows)
        columns = zip(k1.tolist(), k2.tolist(), payloads, rows, states, sessions, paths, holds, strict=True)
        out.events = [Event(a, b, p.encode(), source.path, fp, r, s, sid, ep, h)
                      for a, b, p, r, s, sid, ep, h in columns]  # fmt: skip
        return out

    def listed(self, events: list[Event], chunk: int = 10_000) -> Iterator[Admitted]:
        """``retry``: the events of a results file, less those the journal says were sent since."""
        for start in range(0, len(events), chunk):
            part = events[start : start + chunk]
            out = Admitted(rows=len(part))
            out.counts["rows"] = len(part)
            if not self.options.force:
                k1 = np.array([e.k1 for e in part], dtype=np.int64)
                k2 = np.array([e.k2 for e in part], dtype=np.int64)
                sent = self.lookups.sent_mask(k1, k2)
                out.counts["skipped"] = int(sent.sum())
                part = [e for e, s in zip(part, sent.tolist(), strict=True) if not s]
            out.events = part
            yield out


def leftover_events(rows: list[tuple[int, int, str, int | None, str | None, str, str | None]]) -> list[Event]:
    """Events of earlier runs, from the journal's copy of their payload and type."""
    out = []
    for k1, k2, src, row, state, payload, kind in rows:
        body = json.loads(payload)
        out.append(Event(k1, k2, payload.encode(), src or "", "", row, state, session_of(body), endpoint(kind, body)))
    return out


def events_from_results(path: str | Path, possibly_sent: bool = False) -> list[Event]:
    """The failed / not_sent events of a results file, to send again; with ``possibly_sent`` also
    those whose requests got no answer (sending them again risks a duplicate)."""
    table = read_results(path)
    statuses = ["failed", "not_sent", *(["possibly_sent"] if possibly_sent else [])]
    mask = pc.is_in(table.column("status"), value_set=pa.array(statuses))
    table = table.filter(mask)
    table = table.filter(pc.is_valid(table.column("payload")))
    out: list[Event] = []
    if table.num_rows == 0:
        return out
    payloads = table.column("payload").to_pylist()
    sessions, states, paths = [], [], []
    for p in payloads:
        body = json.loads(p)
        sessions.append(body.get("sessionId"))
        states.append(body.get("state"))
        paths.append(endpoint(None, body))
    keyed = pa.table({"sessionId": pa.array(sessions, pa.string()), "state": pa.array(states, pa.string())})
    k1, k2 = event_keys(keyed, ("sessionId", "state"))
    given = table.column("event_key").to_pylist()
    sources = table.column("source_file").to_pylist()
    rows = table.column("row_number").to_pylist()
    for i, p in enumerate(payloads):
        # The key the run journaled under; sessionId + state when the file does not carry it.
        a, b = key_ints(given[i]) if given[i] else (int(k1[i]), int(k2[i]))
        out.append(Event(a, b, p.encode(), sources[i] or "", "", rows[i], states[i], sessions[i], paths[i]))
    return out


def _skipped_records(source: SourceFile, events: pa.Table, sent: np.ndarray) -> pa.Table:
    ev = events.filter(pa.array(sent))
    n = ev.num_rows
    return results_table(
        source_file=source.path,
        row_number=ev.column("_row"),
        state=ev.column("state"),
        status=pa.repeat(pa.scalar("skipped"), n),
        error=pa.repeat(pa.scalar("sent by an earlier run"), n),
        payload=ev.column("payload"),
    )
