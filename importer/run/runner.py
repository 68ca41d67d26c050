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
import logging
import math
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from importer.clock import SYSTEM, Clock
from importer.errors import ImporterError, Interrupted, QuotaExhausted, TerminalError, redact
from importer.hubspot.auth import Credentials
from importer.hubspot.contacts import NOT_FOUND, ContactCache, collect_emails, hubspot_lookups, install_cached, resolve
from importer.hubspot.events import Event, events_from_results, external_id_of, key_text, path_of, session_of
from importer.hubspot.pacing import DailyQuota, Rate, RateLimiter, format_duration
from importer.hubspot.sender import DEFAULT_TIMEOUT_S, PERCENT_PATH, PLAYED_PATH, Outcome, RetryPolicy, Sender
from importer.mapping.media import MediaResolver
from importer.run.backfill import load_quota, save_quota, save_unread
from importer.run.media import MediaOptions, prepare_media
from importer.run.pipeline import Pipeline, PreparedBatch
from importer.run.progress import NullProgress, Progress
from importer.source.readers import SourceFile, count_rows
from importer.state.activity import SendMeter, forget_invalid, record_invalid
from importer.state.journal import Journal, Record, StateLock, event_keys, fingerprint, payload_hashes
from importer.state.manifest import WATERMARK, FileTracker, split_done
from importer.state.results import ResultsWriter, results_table
from importer.state.summary import RunSummary, write_summary

__all__ = ["Event", "RunOptions", "RunSummary", "Runner", "events_from_results", "write_summary"]

EXIT_OK, EXIT_ROWS, EXIT_STOPPED = 0, 1, 3
log = logging.getLogger("media_import")


@dataclass
class RunOptions:
    base_url: str
    state_dir: str = ".media-import"
    concurrency: int = 8
    rate: Rate | None = field(default_factory=lambda: Rate(100, 10.0))
    daily_reserve: float = 0.05
    timeout_s: float = DEFAULT_TIMEOUT_S
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    force: bool = False
    results_all: bool = False
    grace_s: float = 30.0
    transport: httpx.AsyncBaseTransport | None = None
    command: str = "run"
    incremental: bool = True  # skip files the manifest says were fully imported and are unchanged
    since_ms: int | None = None  # keep events at or after since - lookback
    lookback_s: float = 86_400.0
    retry_leftovers: bool = True  # re-drive not_sent / transiently failed events of earlier runs
    retry_terminal: bool = False  # ...and those HubSpot refused with a 4xx
    recheck_contacts_s: float = 86_400.0  # ask again for emails HubSpot did not know this long ago
    http2: bool = False
    on_timeout: str = "hold"  # an event whose request got no answer: held as possibly_sent, or sent again
    wait_for_quota: bool = False  # sleep until the daily quota resets instead of stopping
    account_timezone: str = "UTC"  # where the account's midnight (the quota's reset) is
    clock: Clock = SYSTEM  # the sender's, limiter's and quota's time (tests run it fast)
    media: MediaOptions = field(default_factory=MediaOptions)  # mappings with a media: section


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
        self.quota = DailyQuota(options.daily_reserve, timezone=options.account_timezone, clock=options.clock)
        self.quota.restore(load_quota(self.journal))
        self.limiter = RateLimiter(options.rate, clock=options.clock)
        self._stop_error: ImporterError | None = None
        self._pending_results: list[dict[str, Any]] = []
        self._fingerprints: dict[str, str] = {}
        self._total_rows = 0
        self._admitted = 0
        self._tracker = FileTracker(self.journal)
        self._prepare: Callable[[Sender], Awaitable[None]] | None = None
        self._max_ts: int | None = None
        self._last_tick = 0.0
        self._media: MediaResolver | None = None

    # -- public entry points -----------------------------------------------------------------
    def run(self, pipeline: Pipeline) -> RunSummary:
        if self.options.incremental and not self.options.force:
            todo, done = split_done(self.journal, pipeline.sources)
            for source in done:
                log.info("skipping %s: imported by an earlier run and unchanged", source.path)
            self.summary.files_skipped = len(done)
            pipeline.sources = todo
        self.summary.files_read = len(pipeline.sources)
        pipeline.preflight()
        if hubspot_lookups(pipeline):
            self._prepare = lambda sender: self._resolve_contacts(pipeline, sender)
        if pipeline.mapping.media is not None:
            self._prepare = self._then_media(pipeline, self._prepare)
        return self._execute(self._chain(self._from_pipeline(pipeline), self._leftovers()))

    async def _resolve_contacts(self, pipeline: Pipeline, sender: Sender) -> None:
        """Ask HubSpot for the emails the inputs need and the cache lacks; then serve lookups from it."""
        cache = ContactCache(self.journal.db)
        for name in hubspot_lookups(pipeline):
            emails = await asyncio.to_thread(collect_emails, pipeline, name)
            missing = cache.missing(emails, self.options.recheck_contacts_s)
            log.info("contacts: %d distinct emails, %d not cached yet", len(emails), len(missing))
            calls = await resolve(missing, sender, cache)
            self.summary.contact_lookups = {"emails": len(emails), "asked": len(missing), "calls": calls}
        install_cached(pipeline, self.journal.db, NOT_FOUND)

    def _then_media(
        self, pipeline: Pipeline, before: Callable[[Sender], Awaitable[None]] | None
    ) -> Callable[[Sender], Awaitable[None]]:
        """Media objects first (importer.run.media): each event then carries its media's id."""

        async def step(sender: Sender) -> None:
            if before is not None:
                await before(sender)
            report = await prepare_media(pipeline, sender, self.journal.db, self.options.media)
            self.summary.media = report.to_dict()
            self._media = pipeline.media

        return step

    def retry(self, events: list[Event]) -> RunSummary:
        return self._execute(self._from_list(events))

    # -- the run -------------------------------------------------------------------------------
    def _execute(self, source: AsyncIterator[list[Event]]) -> RunSummary:
        lock = StateLock(self.options.state_dir).acquire()
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
            http2=self.options.http2,
            on_timeout=self.options.on_timeout,
            wait_for_quota=self.options.wait_for_quota,
            clock=self.options.clock,
        )
        sender.on_notice = self.progress.describe
        self._sender = sender
        self._meter = SendMeter(self.journal.db, self.journal.run_id)
        if not self.options.wait_for_quota:
            try:  # a rerun the same day, with only the reserve left: nothing to send until the reset
                self.quota.check()
            except QuotaExhausted as exc:
                self._stop(exc)
        if self._prepare is not None:
            try:
                await self._prepare(sender)
            except TerminalError as exc:
                self._stop(exc)
        queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=self.options.concurrency * 4)
        self.progress.start("sending", unit="events")
        workers = [asyncio.create_task(self._worker(sender, queue)) for _ in range(self.options.concurrency)]
        self._workers, self._queue = workers, queue  # for ``_grace_over``
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
            grace = getattr(self, "_grace", None)
            if grace is not None:
                grace.cancel()
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
                if pending:
                    await asyncio.wait(pending, timeout=self.options.grace_s)
                return

    def _on_signal(self, sig: int) -> None:
        name = signal.Signals(sig).name
        self._stop(Interrupted(f"interrupted by {name}", hint="run the same command again to resume"))

    def _stop(self, error: ImporterError) -> None:
        if self._stop_error is None:
            self._stop_error = error
            with contextlib.suppress(RuntimeError):  # no loop running: nothing in flight
                self._grace = asyncio.get_running_loop().call_later(self.options.grace_s, self._grace_over)
        sender = getattr(self, "_sender", None)
        if sender is not None:
            sender.stop()  # waits for the quota, a backoff or a 429 pause end now

    def _grace_over(self) -> None:
        """The grace period is a bound: requests still in flight then count as possibly sent (the
        workers record them so when cancelled), and queued events as not sent."""
        for task in getattr(self, "_workers", []):
            task.cancel()
        queue = getattr(self, "_queue", None)
        while queue is not None and not queue.empty():
            item = queue.get_nowait()
            if item is not None:
                self._not_sent(item, "the run stopped before this event was sent")

    async def _worker(self, sender: Sender, queue: asyncio.Queue[Event | None]) -> None:
        while True:
            event = await queue.get()
            if event is None:
                return
            if self._stop_error is not None:
                self._not_sent(event, "the run stopped before this event was sent")
                continue
            if event.hold is not None:  # its media object could not be created: a later run sends it
                outcome = Outcome("failed", None, f"media object not created: {event.hold}", transient=True)
                self._record(event, outcome, settle=False)  # its file stays unimported: read again next run
                continue
            try:
                outcome = await sender.send(event.payload, (event.session, event.state), event.path)
            except TerminalError as exc:
                self._stop(exc)
                self._not_sent(event, f"not sent: {exc.message}")
                continue
            except asyncio.CancelledError:
                # In flight past the grace period: it may have arrived, so it is not sent blindly again.
                self._record(event, Outcome("possibly_sent", None, "still in flight when the run stopped", 1, True))
                raise
            except Exception as exc:  # a bug must stop the run cleanly, not hang the queue
                self._stop(TerminalError(f"internal error while sending: {type(exc).__name__}: {redact(str(exc))}"))
                self._not_sent(event, "not sent: internal error")
                continue
            self._record(event, outcome)

    async def _chain(self, *sources: AsyncIterator[list[Event]]) -> AsyncIterator[list[Event]]:
        for source in sources:
            async for events in source:
                yield events

    async def _leftovers(self) -> AsyncIterator[list[Event]]:
        """Events earlier runs left not_sent or transiently failed, from the journal's copy."""
        if not self.options.retry_leftovers or self._stop_error is not None:
            return
        rows = self.journal.pending(
            include_terminal=self.options.retry_terminal,
            include_held=self.options.on_timeout == "retry",
            before_run=self.journal.run_id,
        )
        events = [Event(k1, k2, payload.encode(), src or "", "", row, state, session_of(payload), path_of(payload))
                  for k1, k2, src, row, state, payload in rows]  # fmt: skip
        if self._media is not None:
            for event in events:
                event.hold = self._media.hold_reason(external_id_of(event.payload))
        if events:
            log.info("re-driving %d events left by earlier runs", len(events))
            self.summary.leftovers = len(events)
            self._admitted += len(events)
            yield events

    def _record(self, event: Event, outcome: Outcome, settle: bool = True) -> None:
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
        if settle:
            self._tracker.settled(event.source)
        self._tick()

    def _tick(self) -> None:
        self._sample()
        now = time.monotonic()
        if now - self._last_tick < 0.25:  # the postfix is text work: a few times a second is plenty
            self.progress.update(1)
            return
        self._last_tick = now
        c = self.summary.counts
        rate = self.limiter.rate
        self.progress.update(1, sent=c["sent"], failed=c["failed"], retrying=self._sender.stats.retrying,
                             limit=rate.text if rate else "none", eta=self._eta())  # fmt: skip

    def _sample(self) -> None:
        """Feed the per-window counters of the run report (requests, retries, 429s, limit, quota)."""
        st, rate = self._sender.stats, self.limiter.rate
        self._meter.sample((st.requests, st.retries, st.rate_limited), rate.window_s if rate else None,
                           rate.limit if rate else None, self.quota.daily, self.quota.remaining)  # fmt: skip

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
        self._tracker.settled(event.source)

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

    def _unread_events(self) -> int | None:
        """Events of the inputs not read yet (a stop before the end), at the events per row seen so far."""
        if not self.summary.rows:
            return 0 if self._total_rows == 0 else None
        unread = max(0, self._total_rows - self.summary.rows)
        return int(unread * self._admitted / self.summary.rows)

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
        self._total_rows = await asyncio.to_thread(count_rows, pipeline.sources)
        it: Iterator[PreparedBatch] = pipeline.batches()
        current: str | None = None
        try:
            while self._stop_error is None:
                prepared = await asyncio.to_thread(next, it, None)
                if prepared is None:
                    break
                if current is not None and prepared.source.path != current:
                    self._tracker.read_to_end(current)
                current = prepared.source.path
                events = await asyncio.to_thread(self._admit, prepared, pipeline, reader)
                self._admitted += len(events)
                yield events
            else:
                current = None  # stopped: the file being read was not read to its end
            if current is not None:
                self._tracker.read_to_end(current)
        finally:
            reader.close()

    def _admit(self, prepared: PreparedBatch, pipeline: Pipeline, reader: Journal) -> list[Event]:
        """Record invalid events, drop those already sent, and turn the rest into Events."""
        self.summary.rows += prepared.rows
        self.summary.duplicates += prepared.duplicates
        self.summary.skipped_rows += sum(prepared.skipped.values())
        path = prepared.source.path
        fp = self._fingerprints.get(path)
        if fp is None:
            fp = self._fingerprints[path] = fingerprint(prepared.source)
            forget_invalid(reader.db, path)  # read again: its invalid events are counted anew
        if prepared.invalid.num_rows:
            self.results.write(prepared.invalid)
            self.summary.counts["invalid"] += prepared.invalid.num_rows
            record_invalid(reader.db, prepared.invalid, self.journal.run_id)
        events = prepared.events
        if self.options.since_ms is not None and events.num_rows:
            cutoff = self.options.since_ms - int(self.options.lookback_s * 1000)
            recent = pc.fill_null(pc.greater_equal(events.column("occurredTimestamp"), cutoff), False)
            self.summary.before_since += events.num_rows - int(pc.sum(recent).as_py() or 0)
            events = events.filter(recent)
        if events.num_rows:
            newest = pc.max(events.column("occurredTimestamp")).as_py()
            self._max_ts = newest if self._max_ts is None else max(self._max_ts, newest)
        k1, k2 = event_keys(events, pipeline.mapping.identity)
        if not self.options.force and events.num_rows:
            sent_with = reader.sent_hashes(k1, k2)
            sent = sent_with != 0
            if sent.any():
                self.summary.counts["skipped"] += int(sent.sum())
                changed = int((sent_with[sent] != payload_hashes(events.filter(pa.array(sent)))).sum())
                if changed:
                    # The rule: an event already sent is never re-sent, even if its row changed since.
                    self.summary.changed += changed
                if self.options.results_all:
                    self.results.write(_skipped_records(prepared.source, events, sent))
                keep = ~sent
                events = events.filter(pa.array(keep))
                k1, k2 = k1[keep], k2[keep]
        if not self.options.force and not self.options.retry_terminal and events.num_rows:
            # HubSpot refused these for good before: the same payload would be refused again.
            refused = reader.refused_mask(k1, k2)
            if refused.any():
                self.summary.refused_before += int(refused.sum())
                keep = ~refused
                events = events.filter(pa.array(keep))
                k1, k2 = k1[keep], k2[keep]
        if not self.options.force and self.options.on_timeout == "hold" and events.num_rows:
            # Possibly sent before (no answer in time): held, unless --on-timeout retry.
            held = reader.held_mask(k1, k2)
            if held.any():
                self.summary.held_before += int(held.sum())
                keep = ~held
                events = events.filter(pa.array(keep))
                k1, k2 = k1[keep], k2[keep]
        reader.claim(k1, k2, self.journal.run_id)
        self._tracker.admitted(prepared.source, fp, prepared.rows, events.num_rows)
        payloads = events.column("payload").to_pylist()
        rows = events.column("_row").to_pylist()
        states = events.column("state").to_pylist()
        sessions = events.column("sessionId").to_pylist()
        paths = [PERCENT_PATH if t == "percent" else PLAYED_PATH for t in events.column("_type").to_pylist()]
        holds = events.column("_hold").to_pylist() if "_hold" in events.column_names else [None] * len(rows)
        columns = zip(k1.tolist(), k2.tolist(), payloads, rows, states, sessions, paths, holds, strict=True)
        return [Event(a, b, p.encode(), path, fp, r, s, sid, ep, h) for a, b, p, r, s, sid, ep, h in columns]

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
            self._sample()
            self._meter.flush()
            st = stats.stats
            s.stats = {
                "requests": st.requests,
                "retries": st.retries,
                "rate_limited": st.rate_limited,
                "unconfirmed": st.unconfirmed,
                "timed_out": st.timed_out,
                "connection_errors": st.connection_errors,
                "quota_waits": st.quota_waits,
                "oauth_refreshes": self.credentials.refreshes,
                "on_timeout": self.options.on_timeout,
            }
            limit = self.limiter.rate
            s.stats["rate_limit"] = limit.text if limit is not None else None
            s.stats["rate_lowered_by_hubspot"] = bool(
                self.limiter.adapted_from_headers
                and limit is not None
                and self.limiter.requested is not None
                and limit.per_second < self.limiter.requested.per_second
            )
        s.quota = {
            "daily": self.quota.daily,
            "remaining": self.quota.remaining,
            "reserve": self.quota.reserve,
            "resets_at": self.quota.reset_at,
            "timezone": self.quota.timezone,
        }
        save_quota(self.journal, self.quota.to_state())
        save_unread(self.journal, self._unread_events())
        if isinstance(self._stop_error, QuotaExhausted):
            self._stop_error = self.quota.exhausted_error()  # the figures the summary shows too
        if self._stop_error is not None:
            s.stopped = redact(self._stop_error.message)
            s.stop_hint = self._stop_error.hint
            s.exit_code = EXIT_STOPPED
        elif s.counts["invalid"] or s.counts["failed"]:
            s.exit_code = EXIT_ROWS
        else:
            s.exit_code = EXIT_OK
        if self._max_ts is not None and self._stop_error is None:
            previous = self.journal.get(WATERMARK)
            newest = max(self._max_ts, int(previous)) if previous is not None else self._max_ts
            self.journal.put(WATERMARK, str(newest))
        if s.changed:
            log.warning(
                "%d events were sent before with a different payload (their rows changed since); "
                "they are not sent again: an event's identity is its dedupe key",
                s.changed,
            )
        self.journal.finish_run(s.to_dict(), s.exit_code)
        self.journal.close()
        write_summary(self.results.path, s.to_dict())


def _skipped_records(source: SourceFile, events: pa.Table, sent: Any) -> pa.Table:
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
