"""``run`` and ``retry``: prepared events → journal → concurrent sender → results and summary.

Reading and mapping run in a worker thread, ahead of sending, through a
bounded queue, so memory stays flat on any input. Worker tasks take events
from the queue, send them, and record each outcome in the journal at once.
A terminal error or a signal stops new sends; in-flight requests finish
(bounded wait) and every event not sent is recorded as ``not_sent``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from importer.auth import Credentials
from importer.errors import ImporterError, Interrupted, TerminalError, redact
from importer.journal import Journal, Record, StateLock, event_keys, fingerprint
from importer.pacing import DailyQuota, Rate, RateLimiter, format_duration
from importer.pipeline import Pipeline, PreparedBatch
from importer.progress import NullProgress, Progress
from importer.results import ResultsWriter, results_table
from importer.sender import Outcome, RetryPolicy, Sender

EXIT_OK, EXIT_ROWS, EXIT_STOPPED = 0, 1, 3
log = logging.getLogger("media_import")


@dataclass
class RunOptions:
    base_url: str
    state_dir: str = ".media-import"
    concurrency: int = 8
    rate: Rate | None = field(default_factory=lambda: Rate(100, 10.0))
    daily_reserve: float = 0.05
    timeout_s: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    force: bool = False
    results_all: bool = False
    grace_s: float = 30.0
    transport: httpx.AsyncBaseTransport | None = None
    command: str = "run"


@dataclass
class Event:
    """One event ready to send."""

    k1: int
    k2: int
    payload: bytes
    source: str
    fingerprint: str
    row: int | None
    state: str | None
    session: str | None


@dataclass
class RunSummary:
    counts: Counter[str] = field(default_factory=Counter)
    rows: int = 0
    duplicates: int = 0
    skipped_rows: int = 0
    started: float = field(default_factory=time.time)
    finished: float | None = None
    stopped: str | None = None
    stop_hint: str | None = None
    exit_code: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    quota: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return (self.finished or time.time()) - self.started

    def to_dict(self) -> dict[str, Any]:
        sent = self.counts.get("sent", 0)
        return {
            "counts": {s: self.counts.get(s, 0) for s in ("sent", "skipped", "invalid", "failed", "not_sent")},
            "rows": self.rows,
            "duplicates": self.duplicates,
            "rows_skipped_by_rules": self.skipped_rows,
            "duration_s": round(self.duration_s, 3),
            "events_per_s": round(sent / self.duration_s, 2) if self.duration_s > 0 else 0.0,
            **self.stats,
            "quota": self.quota,
            "stopped": self.stopped,
            "exit_code": self.exit_code,
        }

    def render(self) -> str:
        c = self.counts
        lines = [
            f"Sent {c['sent']:,}, already sent before {c['skipped']:,}, invalid {c['invalid']:,}, "
            f"failed {c['failed']:,}, not sent {c['not_sent']:,}  ({self.rows:,} rows, {self.duplicates:,} duplicates)",
            f"{self.to_dict()['events_per_s']:,} events/s over {format_duration(self.duration_s)}; "
            f"{self.stats.get('retries', 0):,} retries, {self.stats.get('rate_limited', 0):,} answers 429",
        ]
        if self.stats.get("unconfirmed"):
            lines.append(f"warning: {self.stats['unconfirmed']:,} 2xx answers did not echo the event")
        if self.quota.get("daily"):
            lines.append(f"Daily quota: {self.quota.get('remaining', '?'):,} of {self.quota['daily']:,} left")
        if self.stopped:
            lines.append(f"Stopped early: {self.stopped}")
            if self.stop_hint:
                lines.append(f"  hint: {self.stop_hint}")
        return "\n".join(lines)


class _Stop(Exception):
    pass


class Runner:
    """One run: owns the journal, the sender, the results writer and the summary."""

    def __init__(
        self,
        options: RunOptions,
        credentials: Credentials,
        results: ResultsWriter,
        progress: Progress | None = None,
    ) -> None:
        self.options = options
        self.credentials = credentials
        self.results = results
        self.progress = progress or NullProgress()
        self.summary = RunSummary()
        self.journal = Journal(options.state_dir)
        self.quota = DailyQuota(options.daily_reserve)
        self.limiter = RateLimiter(options.rate)
        self._stop_error: ImporterError | None = None
        self._pending_results: list[dict[str, Any]] = []
        self._fingerprints: dict[str, str] = {}
        self._total_rows = 0
        self._admitted = 0

    # -- public entry points -----------------------------------------------------------------
    def run(self, pipeline: Pipeline) -> RunSummary:
        pipeline.preflight()
        return self._execute(self._from_pipeline(pipeline))

    def retry(self, events: list[Event]) -> RunSummary:
        return self._execute(self._from_list(events))

    # -- the run -------------------------------------------------------------------------------
    def _execute(self, source: AsyncIterator[list[Event]]) -> RunSummary:
        lock = StateLock(self.options.state_dir).acquire()
        if lock.took_over_from is not None:
            log.warning("took over a stale lock of pid %s (that run ended without cleaning up)", lock.took_over_from)
        try:
            self.journal.start_run(self.options.command)
            try:
                asyncio.run(self._main(source))
            finally:
                self._flush_results()
                self._finish()
        finally:
            lock.release()
        return self.summary

    async def _main(self, source: AsyncIterator[list[Event]]) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self._on_signal, sig)
        sender = Sender(
            self.options.base_url,
            self.credentials,
            self.limiter,
            self.quota,
            concurrency=self.options.concurrency,
            timeout_s=self.options.timeout_s,
            retry=self.options.retry,
            transport=self.options.transport,
        )
        self._sender = sender
        queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=self.options.concurrency * 4)
        self.progress.start("sending", unit="events")
        workers = [asyncio.create_task(self._worker(sender, queue)) for _ in range(self.options.concurrency)]
        try:
            async for events in source:
                for event in events:
                    if self._stop_error is not None:
                        self._not_sent(event, "the run stopped before this event was sent")
                        continue
                    await queue.put(event)
            for _ in workers:
                await queue.put(None)
            await self._drain(workers)
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            while not queue.empty():
                item = queue.get_nowait()
                if item is not None:
                    self._not_sent(item, "the run stopped before this event was sent")
            await sender.aclose()
            self.progress.close()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(sig)

    async def _drain(self, workers: list[asyncio.Task[None]]) -> None:
        """Wait for the workers; once a stop is asked, give in-flight requests ``grace_s`` to finish."""
        pending = set(workers)
        while pending:
            _, pending = await asyncio.wait(pending, timeout=0.2)
            if self._stop_error is not None:
                await asyncio.wait(pending, timeout=self.options.grace_s)
                return

    def _on_signal(self, sig: int) -> None:
        name = signal.Signals(sig).name
        self._stop(Interrupted(f"interrupted by {name}", hint="run the same command again to resume"))

    def _stop(self, error: ImporterError) -> None:
        if self._stop_error is None:
            self._stop_error = error

    async def _worker(self, sender: Sender, queue: asyncio.Queue[Event | None]) -> None:
        while True:
            event = await queue.get()
            if event is None:
                return
            if self._stop_error is not None:
                self._not_sent(event, "the run stopped before this event was sent")
                continue
            try:
                outcome = await sender.send(event.payload, (event.session or "", event.state or ""))
            except TerminalError as exc:
                self._stop(exc)
                self._not_sent(event, f"not sent: {exc.message}")
                continue
            except asyncio.CancelledError:
                self._not_sent(event, "cancelled while in flight (it may have arrived)")
                raise
            except Exception as exc:  # a bug must stop the run cleanly, not hang the queue
                self._stop(TerminalError(f"internal error while sending: {type(exc).__name__}: {redact(str(exc))}"))
                self._not_sent(event, "not sent: internal error")
                continue
            self._record(event, outcome)

    def _record(self, event: Event, outcome: Outcome) -> None:
        self.journal.record(
            Record(
                event.k1,
                event.k2,
                outcome.status,
                event.source,
                event.fingerprint,
                event.row,
                event.state,
                event.payload,
                outcome.http_status,
                outcome.error,
                outcome.attempts,
                outcome.transient,
            )
        )
        self.summary.counts[outcome.status] += 1
        if outcome.status != "sent" or self.options.results_all:
            self._result(event, outcome.status, outcome.http_status, outcome.error, outcome.attempts)
        stats = self._sender.stats
        self.progress.update(
            1,
            sent=self.summary.counts["sent"],
            failed=self.summary.counts["failed"],
            retrying=stats.retrying,
            eta=self._eta(),
        )

    def _not_sent(self, event: Event, reason: str) -> None:
        self.journal.record(
            Record(
                event.k1,
                event.k2,
                "not_sent",
                event.source,
                event.fingerprint,
                event.row,
                event.state,
                event.payload,
                error=reason,
            )
        )
        self.summary.counts["not_sent"] += 1
        self._result(event, "not_sent", None, reason, 0)

    def _result(self, event: Event, status: str, http: int | None, error: str | None, attempts: int) -> None:
        self._pending_results.append(
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
        if len(self._pending_results) >= 1000:
            self._flush_results()

    def _flush_results(self) -> None:
        if not self._pending_results:
            return
        rows = self._pending_results
        self._pending_results = []
        cols = {k: [r[k] for r in rows] for k in rows[0]}
        self.results.write(results_table(**cols))

    def _eta(self) -> str:
        rate = self.limiter.rate
        remaining = self._estimate_remaining()
        if rate is None or remaining is None:
            return "?"
        seconds = remaining / rate.per_second
        usable = self.quota.usable
        if usable is not None and remaining > usable and self.quota.daily:
            per_day = max(1, self.quota.daily - self.quota.reserve)
            days = math.ceil((remaining - usable) / per_day)
            return f"{format_duration(max(seconds, days * 86_400))}, quota-bound"
        return format_duration(seconds)

    def _estimate_remaining(self) -> int | None:
        """Events still to go: unread rows at the events-per-row seen so far, plus the queue."""
        if not self._total_rows or not self.summary.rows:
            return None
        per_row = self._admitted / self.summary.rows
        done = sum(self.summary.counts[s] for s in ("sent", "failed", "not_sent"))
        unread = max(0, self._total_rows - self.summary.rows)
        return int(unread * per_row) + max(0, self._admitted - done)

    # -- sources of events ------------------------------------------------------------------
    async def _from_pipeline(self, pipeline: Pipeline) -> AsyncIterator[list[Event]]:
        reader = Journal(self.options.state_dir)  # a connection of its own for the reading thread
        self._total_rows = await asyncio.to_thread(count_rows, pipeline)
        it: Iterator[PreparedBatch] = pipeline.batches()
        try:
            while self._stop_error is None:
                prepared = await asyncio.to_thread(next, it, None)
                if prepared is None:
                    break
                events = await asyncio.to_thread(self._admit, prepared, pipeline, reader)
                self._admitted += len(events)
                yield events
        finally:
            reader.close()

    def _admit(self, prepared: PreparedBatch, pipeline: Pipeline, reader: Journal) -> list[Event]:
        """Record invalid events, drop those already sent, and turn the rest into Events."""
        self.summary.rows += prepared.rows
        self.summary.duplicates += prepared.duplicates
        self.summary.skipped_rows += sum(prepared.skipped.values())
        if prepared.invalid.num_rows:
            self.results.write(prepared.invalid)
            self.summary.counts["invalid"] += prepared.invalid.num_rows
        events = prepared.events
        if events.num_rows == 0:
            return []
        k1, k2 = event_keys(events, pipeline.mapping.dedupe)
        if not self.options.force:
            sent = reader.sent_mask(k1, k2)
            if sent.any():
                skipped = int(sent.sum())
                self.summary.counts["skipped"] += skipped
                if self.options.results_all:
                    self.results.write(_skipped_records(prepared, sent))
                keep = ~sent
                events = events.filter(pa.array(keep))
                k1, k2 = k1[keep], k2[keep]
        path = prepared.source.path
        fp = self._fingerprints.get(path)
        if fp is None:
            fp = self._fingerprints[path] = fingerprint(prepared.source)
        payloads = events.column("payload").to_pylist()
        rows = events.column("_row").to_pylist()
        states = events.column("state").to_pylist()
        sessions = events.column("sessionId").to_pylist()
        return [
            Event(a, b, p.encode(), path, fp, r, s, sid)
            for a, b, p, r, s, sid in zip(k1.tolist(), k2.tolist(), payloads, rows, states, sessions, strict=True)
        ]

    async def _from_list(self, events: list[Event]) -> AsyncIterator[list[Event]]:
        self._total_rows = self.summary.rows = self._admitted = len(events)
        reader = Journal(self.options.state_dir)
        try:
            chunk = 10_000
            for start in range(0, len(events), chunk):
                part = events[start : start + chunk]
                k1 = np.array([e.k1 for e in part], dtype=np.int64)
                k2 = np.array([e.k2 for e in part], dtype=np.int64)
                sent = reader.sent_mask(k1, k2) if not self.options.force else np.zeros(len(part), dtype=bool)
                self.summary.counts["skipped"] += int(sent.sum())
                yield [e for e, s in zip(part, sent.tolist(), strict=True) if not s]
        finally:
            reader.close()

    # -- the end ----------------------------------------------------------------------------
    def _finish(self) -> None:
        s = self.summary
        s.finished = time.time()
        stats = getattr(self, "_sender", None)
        if stats is not None:
            st = stats.stats
            s.stats = {
                "requests": st.requests,
                "retries": st.retries,
                "rate_limited": st.rate_limited,
                "unconfirmed": st.unconfirmed,
                "oauth_refreshes": self.credentials.refreshes,
            }
        s.quota = {
            "daily": self.quota.daily,
            "remaining": self.quota.remaining,
            "reserve": self.quota.reserve,
        }
        if self._stop_error is not None:
            s.stopped = redact(self._stop_error.message)
            s.stop_hint = self._stop_error.hint
            s.exit_code = EXIT_STOPPED
        elif s.counts["invalid"] or s.counts["failed"]:
            s.exit_code = EXIT_ROWS
        else:
            s.exit_code = EXIT_OK
        self.journal.finish_run(s.to_dict(), s.exit_code)
        self.journal.close()
        write_summary(self.results.path, s.to_dict())


def _skipped_records(prepared: PreparedBatch, sent: Any) -> pa.Table:
    ev = prepared.events.filter(pa.array(sent))
    n = ev.num_rows
    return results_table(
        source_file=prepared.source.path,
        row_number=ev.column("_row"),
        state=ev.column("state"),
        status=pa.repeat(pa.scalar("skipped"), n),
        error=pa.repeat(pa.scalar("sent by an earlier run"), n),
        payload=ev.column("payload"),
    )


def write_summary(results_path: str, summary: dict[str, Any]) -> str:
    path = f"{results_path}.summary.json"
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2)
    os.replace(tmp, path)
    return path


def count_rows(pipeline: Pipeline) -> int:
    """Rows in every input, cheaply: Parquet metadata, or newlines in text files."""
    import gzip

    import pyarrow.parquet as pq

    total = 0
    for source in pipeline.sources:
        try:
            if source.format == "parquet":
                total += pq.ParquetFile(source.path).metadata.num_rows
                continue
            opener = gzip.open if source.compressed else open
            with opener(source.path, "rb") as fh:
                lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 22), b""))
            total += max(0, lines - (0 if source.format == "jsonl" else 1))
        except (OSError, EOFError, pa.ArrowException):
            continue
    return total


def key_text(k1: int, k2: int) -> str:
    """An event's journal key as 32 hex digits (carried in results files for ``retry``)."""
    return f"{k1 & 0xFFFFFFFFFFFFFFFF:016x}{k2 & 0xFFFFFFFFFFFFFFFF:016x}"


def _key_ints(text: str) -> tuple[int, int]:
    a, b = int(text[:16], 16), int(text[16:32], 16)
    return (a - (1 << 64) if a >= 1 << 63 else a), (b - (1 << 64) if b >= 1 << 63 else b)


def events_from_results(path: str | Path) -> list[Event]:
    """The failed / not_sent events of a results file, to send again."""
    from importer.journal import event_keys as _keys
    from importer.results import read_results

    table = read_results(path)
    mask = pc.is_in(table.column("status"), value_set=pa.array(["failed", "not_sent"]))
    table = table.filter(mask)
    table = table.filter(pc.is_valid(table.column("payload")))
    out: list[Event] = []
    if table.num_rows == 0:
        return out
    payloads = table.column("payload").to_pylist()
    sessions, states = [], []
    for p in payloads:
        body = json.loads(p)
        sessions.append(body.get("sessionId"))
        states.append(body.get("state"))
    keyed = pa.table({"sessionId": pa.array(sessions, pa.string()), "state": pa.array(states, pa.string())})
    k1, k2 = _keys(keyed, ("sessionId", "state"))
    given = table.column("event_key").to_pylist()
    sources = table.column("source_file").to_pylist()
    rows = table.column("row_number").to_pylist()
    for i, p in enumerate(payloads):
        # The key the run journaled under; sessionId + state when the file does not carry it.
        a, b = _key_ints(given[i]) if given[i] else (int(k1[i]), int(k2[i]))
        out.append(Event(a, b, p.encode(), sources[i] or "", "", rows[i], states[i], sessions[i]))
    return out
