"""``run`` and ``retry``: admission → send loop → finish, with the state opened once.

The runner takes the state directory's lock once, opens the journal once and
creates the results file after the lock (a run refused for the lock never
touches another run's results). Reading and mapping run in a daemon thread
ahead of sending (``admission``), through a bounded queue (``sendloop``), so
memory stays flat on any input. Whatever ends the run — the end of the input,
a signal, a terminal answer, an input error, a full disk — ``finish`` writes
the journal's run record and the summary file and the lock is released.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from importer.clock import format_duration
from importer.errors import EXIT_CONFIG, ImporterError, Interrupted, QuotaExhausted, TerminalError, redact
from importer.hubspot.auth import Credentials
from importer.hubspot.contacts import NOT_FOUND, ContactCache, hubspot_lookups, install_cached, resolve
from importer.hubspot.events import Event, external_id_of
from importer.hubspot.pacing import DailyQuota, RateLimiter, per_day
from importer.hubspot.sender import Sender
from importer.mapping.media import MediaResolver, MediaTable
from importer.run.admission import Admission, Admitted, leftover_events
from importer.run.backfill import load_quota, save_quota, save_unread
from importer.run.estimate import estimate_rows
from importer.run.finish import outstanding, record_run, settle, write_summary_file
from importer.run.media import fill_known_ids, prepare_media
from importer.run.options import RunOptions
from importer.run.owner import RunOwner
from importer.run.pipeline import Pipeline
from importer.run.prepass import media_after_contacts, read_needs
from importer.run.progress import NullProgress, Progress
from importer.run.sendloop import SendLoop, admitted_from, in_thread, run_loop
from importer.state.activity import SendMeter
from importer.state.journal import Journal
from importer.state.lock import StateLock
from importer.state.manifest import split_done
from importer.state.media import MediaMap
from importer.state.results import ResultsWriter
from importer.state.summary import RunSummary

__all__ = ["RunOptions", "RunSummary", "Runner"]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _set_handlers(handlers: dict[signal.Signals, Any]) -> None:
    """Set signal handlers, from the main thread only (elsewhere the caller handles signals)."""
    for sig, handler in handlers.items():
        if handler is None:  # not set from Python: left as it is
            continue
        with contextlib.suppress(ValueError, TypeError):
            signal.signal(sig, handler)


class InternalError(ImporterError):
    """A bug met during a run: reported with the run's summary (exit 2, or 3 once sending started)."""

    exit_code = EXIT_CONFIG

    def __init__(self, message: str) -> None:
        super().__init__(message, hint="rerun with --debug for the traceback, and report it")


log = logging.getLogger("media_import")


class Runner:
    """One run of ``run`` or ``retry``: ``Runner(options, credentials, results_path).run(pipeline)``."""

    def __init__(
        self,
        options: RunOptions,
        credentials: Credentials,
        results: str | Path,
        progress: Progress | None = None,
    ) -> None:
        self.options = options
        self.credentials = credentials
        self.results_path = str(results)
        self.progress = progress or NullProgress()
        self.summary = RunSummary()
        self.quota = DailyQuota(options.daily_reserve, timezone=options.account_timezone, clock=options.clock)
        self.limiter = RateLimiter(options.rate, clock=options.clock)
        self._meter: SendMeter | None = None
        self.loop: SendLoop | None = None
        self._sender: Sender | None = None
        self._owner: RunOwner | None = None
        self._total_rows = 0
        self._media: MediaResolver | None = None
        self._last_tick = 0.0

    # -- public entry points -----------------------------------------------------------------
    def run(self, pipeline: Pipeline | Callable[[], Pipeline]) -> RunSummary:
        """Send the pipeline's events (``pipeline`` may be a function that makes it, inside the lock).

        The summary file is written whatever happens. An error met before sending could start
        (the lock, the journal, the inputs' headers) is raised after that; one met later ends the
        run and is in the returned summary (``stopped``, ``exit_code``).
        """
        return self._execute(pipeline, None)

    def retry(self, events: list[Event]) -> RunSummary:
        return self._execute(None, events)

    # -- the run -------------------------------------------------------------------------------
    def _execute(self, pipeline: Pipeline | Callable[[], Pipeline] | None, listed: list[Event] | None) -> RunSummary:
        error: ImporterError | None = None
        # Before the send loop has handlers of its own, SIGTERM stops cleanly too (as Ctrl-C does).
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        _set_handlers({signal.SIGTERM: _interrupt})
        try:
            with StateLock(self.options.state_dir):
                journal = Journal.open(self.options.state_dir)
                try:
                    self.quota.restore(load_quota(journal))
                    with ResultsWriter(self.results_path) as results:
                        owner = self._owner = RunOwner(journal, results, self.summary, self.options.results_all)
                        journal.start_run(self.options.command, self.results_path)
                        try:
                            made = pipeline() if callable(pipeline) else pipeline
                            self._go(journal, owner, made, listed)
                        except ImporterError as exc:
                            error = exc
                        except KeyboardInterrupt:
                            error = Interrupted("interrupted", hint="run the same command again to resume")
                        except Exception as exc:  # a bug: the run still ends with its summary
                            log.debug("internal error", exc_info=True)
                            error = InternalError(f"internal error: {type(exc).__name__}: {redact(str(exc))}")
                        finally:
                            _set_handlers(dict.fromkeys((signal.SIGTERM, signal.SIGINT), signal.SIG_IGN))  # finishing
                            if self.loop is not None and self.loop.stop_error is not None:
                                error = error or self.loop.stop_error
                            owner.flush()
                            if listed is None and owner.records == 0 and owner.results_failed is None:
                                self.summary.carried = owner.carry_earlier()
                            if owner.results_failed is not None:
                                error = error or owner.results_failed
                            error = self._finish(journal, owner, error)
                finally:
                    journal.close()
        except ImporterError as exc:  # the lock, the journal or the results file: the run never started
            error = exc
            settle(self.summary, exc)
        finally:
            _set_handlers(previous)
        write_summary_file(self.results_path, self.summary)
        if error is not None and self.loop is None:
            raise error  # nothing was sent: the caller reports it as an error
        return self.summary

    def _go(self, journal: Journal, owner: RunOwner, pipeline: Pipeline | None, listed: list[Event] | None) -> None:
        opts = self.options
        if pipeline is not None:
            if opts.incremental and not opts.force:
                todo, done = split_done(journal, pipeline.sources)
                for source in done:
                    log.info("skipping %s: imported by an earlier run and unchanged", source.path)
                self.summary.files_skipped = len(done)
                pipeline.sources = todo
            self.summary.files_read = len(pipeline.sources)
            pipeline.preflight()
        elif listed:
            filled = fill_known_ids(listed, MediaMap(journal.db))
            if filled:
                log.info("%d events get the media id a later sync recorded", filled)
        run_loop(self._main(journal, owner, pipeline, listed))

    async def _main(
        self, journal: Journal, owner: RunOwner, pipeline: Pipeline | None, listed: list[Event] | None
    ) -> None:
        opts = self.options
        sender = self._sender = Sender(
            opts.base_url,
            self.credentials,
            self.limiter,
            self.quota,
            concurrency=opts.concurrency,
            timeout_s=opts.timeout_s,
            retry=opts.retry,
            transport=opts.transport,
            http2=opts.http2,
            on_timeout=opts.on_timeout,
            wait_for_quota=opts.wait_for_quota,
            clock=opts.clock,
        )
        sender.on_notice = self.progress.describe
        self._meter = SendMeter(journal.db, journal.run_id)
        loop = self.loop = SendLoop(owner, sender, concurrency=opts.concurrency, grace_s=opts.grace_s,
                                    progress=self.progress, tick=self._tick)  # fmt: skip
        owner.on_error = loop.stop
        if not opts.wait_for_quota:
            try:  # a rerun the same day, with only the reserve left: nothing to send until the reset
                self.quota.check()
            except QuotaExhausted as exc:
                loop.stop(exc)
        remove_signals = loop.install_signals()
        lookups = journal.lookups()
        try:
            admission = Admission(opts, lookups)
            if pipeline is not None:
                await self._before_events(journal, pipeline, sender)
                self._total_rows = await in_thread(estimate_rows, pipeline.sources)
                source: Iterator[Admitted] = admission.stream(pipeline)
            else:
                events = listed or []
                self._total_rows = len(events)
                source = admission.listed(events)
            await loop.run(self._chain(admitted_from(source), self._leftovers(journal, pipeline is not None)))
        finally:
            remove_signals()
            try:
                await asyncio.wait_for(sender.aclose(), 5.0)
            except (TimeoutError, Exception) as exc:  # closing sockets must not hold the stop up
                log.debug("closing the HTTP clients: %s", redact(str(exc)))

    async def _before_events(self, journal: Journal, pipeline: Pipeline, sender: Sender) -> None:
        """Contacts looked up and media objects made sure of, from one read of the inputs (``prepass``)."""
        assert self.loop is not None
        lookups = hubspot_lookups(pipeline)
        has_media = pipeline.mapping.media is not None
        if not lookups and not has_media:
            return
        media_later = media_after_contacts(pipeline, lookups)
        read = in_thread(read_needs, pipeline, lookups, has_media and not media_later)
        done, needs = await self.loop.until_stop(read)
        if not done:  # stopped while reading
            return
        if lookups:
            try:
                await self.loop.until_stop(self._resolve_contacts(journal, pipeline, sender, needs.emails))
            except TerminalError as exc:
                self.loop.stop(exc)
        if has_media:
            await self._media_first(journal, pipeline, sender, needs.media)

    async def _resolve_contacts(
        self, journal: Journal, pipeline: Pipeline, sender: Sender, wanted: dict[str, set[str]]
    ) -> None:
        """Ask HubSpot for the emails the inputs need and the cache lacks; then serve lookups from it."""
        cache = ContactCache(journal.db)
        for emails in wanted.values():
            missing = cache.missing(emails, self.options.recheck_contacts_s)
            log.info("contacts: %d distinct emails, %d not cached yet", len(emails), len(missing))
            calls = await resolve(missing, sender, cache)
            self.summary.contact_lookups = {"emails": len(emails), "asked": len(missing), "calls": calls}
        install_cached(pipeline, journal.db, NOT_FOUND)

    async def _media_first(
        self, journal: Journal, pipeline: Pipeline, sender: Sender, media: MediaTable | None
    ) -> None:
        """Media objects before events (importer.run.media): each event then carries its media's id."""
        assert self.loop is not None
        if self.loop.stop_error is not None:
            return
        try:
            done, report = await self.loop.until_stop(
                prepare_media(pipeline, sender, journal.db, self.options.media, media)
            )
        except TerminalError as exc:
            self.loop.stop(exc)
            return
        if done:
            self.summary.media = report.to_dict()
            self._media = pipeline.media

    async def _chain(self, *sources: AsyncIterator[Admitted]) -> AsyncIterator[Admitted]:
        for source in sources:
            async for item in source:
                yield item

    async def _leftovers(self, journal: Journal, enabled: bool) -> AsyncIterator[Admitted]:
        """Events earlier runs left not_sent, transiently failed or possibly sent, from the journal's copy."""
        opts = self.options
        if not enabled or not opts.retry_leftovers or (self.loop is not None and self.loop.stop_error is not None):
            return
        rows = journal.pending(
            include_terminal=opts.retry_terminal,
            include_held=opts.on_timeout == "retry",
            before_run=journal.run_id,
        )
        events = leftover_events(rows)
        if self._media is not None:  # still no media object: held again, sent by a later run
            for event in events:
                event.hold = self._media.hold_reason(external_id_of(event.payload))
        if events:
            log.info("re-driving %d events left by earlier runs", len(events))
            self.summary.leftovers = len(events)
            yield Admitted(events=events)

    # -- progress --------------------------------------------------------------------------------
    def _tick(self) -> None:
        self._sample()
        now = time.monotonic()
        if now - self._last_tick < 0.25:  # the postfix is text work: a few times a second is plenty
            self.progress.update(1)
            return
        self._last_tick = now
        c = self.summary.counts
        retrying = self._sender.stats.retrying if self._sender is not None else 0
        rate = self.limiter.rate
        self.progress.update(1, sent=c["sent"], failed=c["failed"], retrying=retrying,
                             limit=rate.text if rate else "none", eta=self._eta())  # fmt: skip

    def _sample(self) -> None:
        """Feed the per-window counters of the run report (requests, retries, 429s, limit, quota)."""
        if self._sender is None or self._meter is None:
            return
        st, rate = self._sender.stats, self.limiter.rate
        self._meter.sample((st.requests, st.retries, st.rate_limited), rate.window_s if rate else None,
                           rate.limit if rate else None, self.quota.daily, self.quota.remaining)  # fmt: skip

    def _eta(self) -> str:
        rate = self.limiter.rate
        remaining = self._estimate_remaining()
        if rate is None or remaining is None:
            return "?"
        seconds = remaining / rate.per_second
        usable = self.quota.usable
        if usable is not None and remaining > usable and self.quota.daily:
            days = math.ceil((remaining - usable) / per_day(self.quota.daily, self.quota.reserve))
            return f"{format_duration(max(seconds, days * 86_400))}, quota-bound"
        return format_duration(seconds)

    def _unread_events(self) -> int | None:
        """Events of the inputs not read yet (a stop before the end), at the events per row seen so far."""
        if not self.summary.rows:
            return 0 if self._total_rows == 0 else None
        admitted = self._owner.admitted if self._owner is not None else 0
        unread = max(0, self._total_rows - self.summary.rows)
        return int(unread * admitted / self.summary.rows)

    def _estimate_remaining(self) -> int | None:
        """Events still to go: unread rows at the events-per-row seen so far, plus the queue."""
        owner = self._owner
        if owner is None or not self._total_rows or not self.summary.rows:
            return None
        per_row = owner.admitted / self.summary.rows
        done = sum(self.summary.counts[s] for s in ("sent", "failed", "not_sent", "possibly_sent"))
        unread = max(0, self._total_rows - self.summary.rows)
        return int(unread * per_row) + max(0, owner.admitted - done)

    # -- the end ----------------------------------------------------------------------------
    def _finish(self, journal: Journal, owner: RunOwner, error: ImporterError | None) -> ImporterError | None:
        """Close the summary and record the run; returns the error as the summary tells it."""
        sender = self._sender
        if isinstance(error, QuotaExhausted):
            error = self.quota.exhausted_error()  # the figures the summary shows too
        settle(self.summary, error, stats=sender.stats if sender else None, refreshes=self.credentials.refreshes,
               quota=self.quota, limiter=self.limiter, on_timeout=self.options.on_timeout)  # fmt: skip
        try:
            if self._meter is not None:
                self._sample()
                self._meter.flush()
            self.summary.outstanding = outstanding(journal)
            save_quota(journal, self.quota.to_state())
            save_unread(journal, self._unread_events())
            record_run(journal, self.summary, owner.newest_ms, completed=error is None)
        except Exception as exc:  # a full disk: the summary file still tells
            log.error("cannot record the run in the journal (%s)", redact(str(exc)))
        return error
