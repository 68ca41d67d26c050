"""The send loop: a bounded queue between admission and ``concurrency`` workers, and every way it stops.

Stopping never waits without a bound. A stop (a signal, a terminal answer, an
input or disk error) ends admission at once; events still queued are recorded
``not_sent``; requests in flight get ``grace_s`` to finish, then are cancelled
and recorded ``possibly_sent``. A second Ctrl-C (or SIGTERM) skips the grace.
Workers end on a sentinel, not only on cancellation, so a cancellation lost
inside a library cannot leave one waiting on an empty queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from importer.errors import ImporterError, InputError, Interrupted, TerminalError, redact
from importer.hubspot.events import Event
from importer.hubspot.sender import STOPPED_BEFORE, Outcome, Sender
from importer.run.admission import Admitted
from importer.run.owner import RunOwner
from importer.run.progress import NullProgress, Progress

log = logging.getLogger("media_import")
# Answers to the user's own Ctrl-C or SIGTERM: shown on stderr with --quiet too (importer.cli.main).
ALWAYS = {"always": True}
T = TypeVar("T")
_REPEAT_S = 0.5  # a second signal sooner than this is the first one again
IN_FLIGHT = "the run stopped while this event's request was in flight (it may have arrived)"


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a daemon thread of its own: a stop need not wait for it, nor exit for it."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def target() -> None:
        result: T | None = None
        error: BaseException | None = None
        try:
            result = fn(*args)
        except BaseException as exc:  # handed to the awaiting side, whatever it is
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(deliver, result, error)

    threading.Thread(target=target, name="media-import-reader", daemon=True).start()
    return await future


async def admitted_from(it: Iterator[Admitted]) -> AsyncIterator[Admitted]:
    """An iterator of the reading thread, one ``next`` at a time in a thread."""
    while True:
        item = await in_thread(next, it, None)
        if item is None:
            return
        yield item


class SendLoop:
    """Feeds admitted events to the workers and stops, whatever happens, within the grace period."""

    def __init__(self, owner: RunOwner, sender: Sender, *, concurrency: int, grace_s: float,
                 progress: Progress | None = None, tick: Callable[[], None] | None = None) -> None:  # fmt: skip
        self.owner = owner
        self.sender = sender
        self.concurrency = concurrency
        self.grace_s = grace_s
        self.progress = progress or NullProgress()
        self.tick = tick or (lambda: None)
        self.stop_error: ImporterError | None = None
        self._stopping = asyncio.Event()
        self._abort = asyncio.Event()
        self._in_flight: dict[int, Event] = {}
        self._signals = 0
        self._first_signal = 0.0

    # -- stopping ----------------------------------------------------------------------------
    def stop(self, error: ImporterError) -> None:
        if self.stop_error is None:
            self.stop_error = error
        self._stopping.set()
        self.sender.stop()  # waits for the quota, a backoff or a 429 pause end now

    def on_signal(self, sig: int) -> None:
        now = time.monotonic()
        if self._signals and now - self._first_signal < _REPEAT_S:
            return  # the same stop delivered twice (timeout and kill signal the process and its group)
        self._signals += 1
        name = signal.Signals(sig).name
        if self._signals == 1:
            self._first_signal = now
            self.stop(Interrupted(f"interrupted by {name}", hint="run the same command again to resume"))
            n = len(self._in_flight)
            log.warning("stopping: waiting for %d requests in flight (at most %g s); %s again stops at once",
                        n, self.grace_s, "Ctrl-C" if sig == signal.SIGINT else name, extra=ALWAYS)  # fmt: skip
        else:
            log.warning("stopping now: %d requests in flight count as possibly sent", len(self._in_flight),
                        extra=ALWAYS)  # fmt: skip
            self._abort.set()

    def install_signals(self) -> Callable[[], None]:
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.on_signal, sig)
                installed.append(sig)

        def remove() -> None:
            for sig in installed:
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(sig)

        return remove

    async def until_stop(self, awaitable: Any) -> tuple[bool, Any]:
        """Await ``awaitable`` unless a stop comes first: (finished, result)."""
        task = asyncio.ensure_future(awaitable)
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if task.done():
            return True, task.result()
        task.cancel()
        return False, None

    # -- the loop ----------------------------------------------------------------------------
    async def run(self, source: AsyncIterator[Admitted]) -> None:
        queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=self.concurrency * 4)
        workers = [asyncio.create_task(self._worker(i, queue)) for i in range(self.concurrency)]
        self.progress.start("sending", unit="events")
        try:
            await self._feed(source, queue)
        finally:
            await self._close(queue, workers)
            self.progress.close()

    async def _feed(self, source: AsyncIterator[Admitted], queue: asyncio.Queue[Event | None]) -> None:
        it = aiter(source)
        try:
            while self.stop_error is None:
                got, admitted = await self.until_stop(anext(it, None))
                if not got or admitted is None:
                    break
                events = self.owner.apply(admitted)
                for i, event in enumerate(events):
                    if self.stop_error is None:
                        if not queue.full():
                            queue.put_nowait(event)
                            continue
                        put, _ = await self.until_stop(queue.put(event))
                        if put:
                            continue
                    self.owner.unsent_many(events[i:], STOPPED_BEFORE)
                    break
        except InputError as exc:
            self.stop(exc)
        except TerminalError as exc:
            self.stop(exc)
        except ImporterError as exc:  # a configuration problem found while reading
            self.stop(exc)
        except Exception as exc:  # a bug must stop the run cleanly, not hang it
            log.debug("internal error while reading", exc_info=True)
            self.stop(TerminalError(f"internal error while reading: {type(exc).__name__}: {redact(str(exc))}"))
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(it.aclose(), 1.0)  # type: ignore[attr-defined]

    async def _close(self, queue: asyncio.Queue[Event | None], workers: list[asyncio.Task[None]]) -> None:
        """Sentinels after what is queued; a bounded wait for the workers; the rest cancelled."""
        if self.stop_error is not None:
            self._drain_queue(queue)
        for _ in workers:
            while True:
                if not queue.full():
                    queue.put_nowait(None)
                    break
                put, _ = await self.until_stop(queue.put(None))
                if put:
                    break
                self._drain_queue(queue)
        pending = set(workers)
        while pending and self.stop_error is None:  # a normal end: the workers finish the queue
            _, pending = await asyncio.wait(pending, timeout=0.2)
        if pending:
            deadline = time.monotonic() + self.grace_s
            while pending and not self._abort.is_set() and time.monotonic() < deadline:
                _, pending = await asyncio.wait(pending, timeout=min(0.2, max(0.0, deadline - time.monotonic())))
        for _ in range(3):  # past the grace (or a second signal): cancel, and ask again if one is lost
            if not pending:
                break
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1.0)
        for index, event in list(self._in_flight.items()):  # workers that never answered the cancellation
            self._in_flight.pop(index, None)
            self.owner.unsent(event, IN_FLIGHT, "possibly_sent")
        self._drain_queue(queue)

    def _drain_queue(self, queue: asyncio.Queue[Event | None]) -> None:
        """Record the queued events ``not_sent``; the sentinels stay."""
        sentinels = 0
        left: list[Event] = []
        while not queue.empty():
            item = queue.get_nowait()
            if item is None:
                sentinels += 1
            else:
                left.append(item)
        self.owner.unsent_many(left, STOPPED_BEFORE)
        for _ in range(sentinels):
            queue.put_nowait(None)

    async def _worker(self, index: int, queue: asyncio.Queue[Event | None]) -> None:
        while True:
            event = await queue.get()
            if event is None:
                return
            if self.stop_error is not None:
                self.owner.unsent(event, STOPPED_BEFORE)
                continue
            if event.hold is not None:  # its media object could not be created: a later run sends it
                outcome = Outcome("failed", None, f"media object not created: {event.hold}", transient=True)
                self.owner.outcome(event, outcome, settle=False)  # its file stays unimported: read again
                self.tick()
                continue
            self._in_flight[index] = event
            try:
                outcome = await self.sender.send(event.payload, (event.session, event.state), event.path)
            except TerminalError as exc:
                self._settle(index, event, None, f"not sent: {exc.message}")
                self.stop(exc)
                continue
            except asyncio.CancelledError:
                self._settle(index, event, None, IN_FLIGHT, "possibly_sent")
                raise
            except Exception as exc:  # a bug must stop the run cleanly, not hang the queue
                log.debug("internal error while sending", exc_info=True)
                self._settle(index, event, None, "not sent: internal error")
                self.stop(TerminalError(f"internal error while sending: {type(exc).__name__}: {redact(str(exc))}"))
                continue
            self._settle(index, event, outcome)
            self.tick()

    def _settle(
        self, index: int, event: Event, outcome: Outcome | None, reason: str = "", status: str = "not_sent"
    ) -> None:
        """Record one in-flight event's outcome, once (a stop that gave up on its worker may have)."""
        if self._in_flight.get(index) is not event:
            return
        del self._in_flight[index]
        if outcome is not None:
            self.owner.outcome(event, outcome)
        else:
            self.owner.unsent(event, reason, status)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)


def run_loop(main: Any) -> None:
    """``asyncio.run`` without its unbounded waits: tasks that ignore cancellation are left behind."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main)
    finally:
        try:
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.wait(tasks, timeout=1.0))
            for task in tasks:  # left behind on purpose (their events are recorded possibly_sent)
                if not task.done():
                    task._log_destroy_pending = False  # type: ignore[attr-defined]
            loop.run_until_complete(asyncio.wait_for(loop.shutdown_asyncgens(), 1.0))
        except (TimeoutError, RuntimeError):
            pass
        finally:
            asyncio.set_event_loop(None)
            loop.close()
