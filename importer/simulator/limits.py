"""HubSpot's two request limits: a rolling burst window and a daily quota.

Counting rule (HubSpot does not document it; this is the simulator's): every authenticated
request that is not itself answered 429 uses one slot of the window and one of the day, whatever
its outcome (200, 400, a 5xx fault, a dropped connection). 401/403 answers and 429s use nothing,
so after a 429 the window empties on schedule and a well-paced client always recovers.
The daily quota resets at midnight in the account's time zone (``timezone``, default UTC), as HubSpot's does.

``background_load`` plays another integration of the same account that keeps that share of the
burst window busy: fewer slots are left, and the Remaining header counts the other's requests too.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections import deque
from collections.abc import Callable
from zoneinfo import ZoneInfo

TEN_SECONDLY = "TEN_SECONDLY_ROLLING"
DAILY = "DAILY"


def _seconds_to_midnight(wall: float, zone: dt.tzinfo) -> float:
    now = dt.datetime.fromtimestamp(wall, zone)
    tomorrow = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), zone)
    return tomorrow.timestamp() - wall


class AccountLimits:
    """The account's burst window and daily quota as the simulated HubSpot counts them (the client's
    pacing is importer.hubspot.pacing.RateLimiter)."""

    def __init__(
        self,
        burst: int,
        window_ms: int,
        daily: int | None,
        clock: Callable[[], float],
        wall: Callable[[], float] = time.time,
        background_load: float = 0.0,
        today: Callable[[], dt.date] | None = None,
        timezone: str = "UTC",
    ) -> None:
        self._zone: dt.tzinfo = ZoneInfo(timezone)
        self._clock = clock
        self._wall = wall
        self._today_of = today
        self._hits: deque[float] = deque()
        self._day = self._today()
        self.daily_used = 0
        self.burst = burst
        self.window_s = window_ms / 1000
        self.window_ms = window_ms
        self.daily = daily
        self.background_load = background_load

    def _today(self) -> dt.date:
        if self._today_of is not None:
            return self._today_of()
        return dt.datetime.fromtimestamp(self._wall(), self._zone).date()

    @property
    def background(self) -> int:
        """Slots of the window the other integration keeps busy."""
        return int(self.burst * self.background_load)

    def reconfigure(
        self, burst: int, window_ms: int, daily: int | None, background_load: float = 0.0, timezone: str = "UTC"
    ) -> None:
        """New limits keep the requests already counted."""
        self.burst, self.window_ms, self.window_s, self.daily = burst, window_ms, window_ms / 1000, daily
        self.background_load = background_load
        self._zone = ZoneInfo(timezone)

    def reset(self) -> None:
        self._hits.clear()
        self.daily_used = 0
        self._day = self._today()

    def _expire(self) -> None:
        horizon = self._clock() - self.window_s
        hits = self._hits
        while hits and hits[0] <= horizon:
            hits.popleft()
        today = self._today()
        if today != self._day:
            self._day, self.daily_used = today, 0

    def acquire(self) -> str | None:
        """Count one request, or return the policy name that refuses it (nothing is counted then)."""
        self._expire()
        if self.daily and self.daily_used >= self.daily:
            return DAILY
        if self.burst and len(self._hits) + self.background >= self.burst:
            return TEN_SECONDLY
        self.daily_used += 1
        if self.burst:
            self._hits.append(self._clock())
        return None

    @property
    def window_used(self) -> int:
        self._expire()
        return len(self._hits)

    def retry_after_s(self, policy: str) -> int:
        """Whole seconds until a refused request could pass (never 0, so clients do wait)."""
        if policy == DAILY:
            return max(1, math.ceil(_seconds_to_midnight(self._wall(), self._zone)))
        self._expire()
        if not self._hits:
            return 1
        return max(1, math.ceil(self._hits[0] + self.window_s - self._clock()))

    def headers(self) -> list[tuple[str, str]]:
        """The X-HubSpot-RateLimit-* headers as they stand now."""
        self._expire()
        out: list[tuple[str, str]] = []
        if self.burst:
            out += [
                ("X-HubSpot-RateLimit-Max", str(self.burst)),
                ("X-HubSpot-RateLimit-Remaining", str(max(0, self.burst - len(self._hits) - self.background))),
                ("X-HubSpot-RateLimit-Interval-Milliseconds", str(self.window_ms)),
            ]
        if self.daily:
            out += [
                ("X-HubSpot-RateLimit-Daily", str(self.daily)),
                ("X-HubSpot-RateLimit-Daily-Remaining", str(max(0, self.daily - self.daily_used))),
            ]
        return out
