"""Time, injected: the sender, its limiter, the daily quota and the simulator all read one ``Clock``.

``SYSTEM`` is real time. ``ScaledClock`` runs faster than real time (and may start at any wall
time, say five seconds before midnight), so a test can play a 30-second 429 storm, an OAuth
expiry or a daily quota reset in a fraction of a second, with the client and the simulator
reading the same clock. ``ManualClock`` moves only when a test says so.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (limits, windows, timeouts)."""
        ...

    def time(self) -> float:
        """Wall time, seconds since the epoch (the daily quota's reset at midnight)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


SYSTEM = SystemClock()


class ScaledClock:
    """Real time sped up ``speed`` times, starting from ``start`` (epoch seconds; default now)."""

    def __init__(self, speed: float, start: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._real0 = time.monotonic()
        self._wall0 = time.time() if start is None else start

    def _elapsed(self) -> float:
        return (time.monotonic() - self._real0) * self.speed

    def monotonic(self) -> float:
        return self._real0 + self._elapsed()

    def time(self) -> float:
        return self._wall0 + self._elapsed()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)


class ManualClock:
    """Time that moves only when ``advance`` is called (from any thread): a test plays a window, an
    expiry or a storm step by step, with no wall time between the steps."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = 0.0
        self._wall0 = start
        self._lock = threading.Lock()
        self._sleepers: list[tuple[float, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self._wall0 + self.now

    def advance(self, seconds: float) -> None:
        """Move time on and wake every sleeper whose time has come."""
        with self._lock:
            self.now += seconds
            due = [s for s in self._sleepers if s[0] <= self.now]
            self._sleepers = [s for s in self._sleepers if s[0] > self.now]
        for _, loop, future in due:
            loop.call_soon_threadsafe(_wake, future)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            self._sleepers.append((self.now + seconds, loop, future))
        await future


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def format_duration(seconds: float) -> str:
    """A duration as people say it: ``2 d 3 h``, ``5 h 12 min``, ``4 min 10 s``, ``9 s``."""
    seconds = max(0, round(seconds))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"
