"""Time, injected: the sender, its limiter, the daily quota and the simulator all read one ``Clock``.

``SYSTEM`` is real time. ``ScaledClock`` runs faster than real time (and may start at any wall
time, say five seconds before midnight), so a test can play a 30-second 429 storm, an OAuth
expiry or a daily quota reset in a fraction of a second, with the client and the simulator
reading the same clock.
"""

from __future__ import annotations

import asyncio
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
