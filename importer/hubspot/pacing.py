"""Pacing: a rolling-window rate limiter fed by HubSpot's rate-limit headers, and the daily quota.

HubSpot counts requests in a rolling window (``X-HubSpot-RateLimit-Max`` per
``-Interval-Milliseconds``) per account, shared by every app. The limiter
keeps the times of this process's requests in the window and lets a new one
go only while fewer than ``limit`` are in it. Two details keep it from ever
tripping the server's own count:

- a request occupies the window from its send time until a full window after
  its *answer* (the server saw it somewhere in between), so latency can never
  let the client's window slide ahead of the server's (the cost: one round
  trip per window, under 2% of HubSpot's 10 s window);
- when the server says fewer requests remain than the client's own count
  implies (another integration shares the account), the difference is booked
  as phantom requests that age out with the window.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from importer.errors import QuotaExhausted

Clock = Callable[[], float]
_RATE_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_RATE_TEXT = re.compile(r"(-?\d+)\s*/\s*(\d+(?:\.\d*)?)?\s*(ms|s|m|h)?", re.IGNORECASE)


@dataclass(frozen=True)
class Rate:
    """``limit`` requests per ``window_s`` seconds."""

    limit: int
    window_s: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        """'100/10s', '200/1s', '50/500ms', '10/1m', '5000/1h'; a window with no number is one unit ('100/s')."""
        found = _RATE_TEXT.fullmatch(text.strip())
        units = "ms, s, m or h"
        if found is None:
            raise ValueError(f"expected N/WINDOW with the window in {units}, such as 100/10s or 10/1m; got {text!r}")
        count, window, unit = found.groups()
        if unit is None:
            # 100/10 could mean seconds or minutes: ask rather than guess.
            raise ValueError(f"N/WINDOW {text!r} has no unit: write {count}/{window}s for seconds ({units})")
        limit, seconds = int(count), float(window or 1) * _RATE_UNITS[unit.lower()]
        if limit < 1 or seconds <= 0:
            raise ValueError(f"expected N/WINDOW with N at least 1 and a window longer than 0; got {text!r}")
        return cls(limit, seconds)

    @property
    def per_second(self) -> float:
        return self.limit / self.window_s


class RateLimiter:
    """Rolling-window limiter shared by every request of the process."""

    def __init__(self, rate: Rate | None, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._ends: deque[float] = deque()  # when each booked slot leaves the window
        self._open: dict[int, float] = {}  # ticket → send time, while unanswered
        self._next_ticket = 0
        self._lock = asyncio.Lock()
        self._blocked_until = 0.0
        self.adapted_from_headers = False

    def _expire(self, now: float) -> None:
        while self._ends and self._ends[0] <= now:
            self._ends.popleft()

    def _in_window(self) -> int:
        return len(self._ends) + len(self._open)

    async def acquire(self) -> int:
        """Wait for a free slot; return a ticket to hand back to ``done``."""
        async with self._lock:
            while True:
                now = self._clock()
                self._expire(now)
                if now < self._blocked_until:  # after a 429: nothing goes out until the window frees
                    await asyncio.sleep(self._blocked_until - now)
                    continue
                if self.rate is None or self._in_window() < self.rate.limit:
                    break
                # With no booked slot, the window is full of unanswered requests: poll for an answer.
                wait = self._ends[0] - now if self._ends else 0.005
                await asyncio.sleep(max(wait, 0.0005))
            ticket = self._next_ticket
            self._next_ticket += 1
            self._open[ticket] = now
            return ticket

    def done(self, ticket: int) -> None:
        """The answer to ``ticket`` arrived: its slot stays booked one window from now."""
        if self._open.pop(ticket, None) is None or self.rate is None:
            return
        # The server saw the request somewhere between send and answer: counting the window
        # from the answer can never free a slot before the server does.
        self._ends.append(self._clock() + self.rate.window_s)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Adapt to X-HubSpot-RateLimit-Max / -Interval-Milliseconds / -Remaining."""
        limit = _int(headers.get("x-hubspot-ratelimit-max"))
        interval = _int(headers.get("x-hubspot-ratelimit-interval-milliseconds"))
        if limit and interval and limit > 0 and interval > 0:
            new = Rate(limit, interval / 1000)
            if new != self.rate:
                self.rate = new
                # Slots booked under the old window end no later than one new window from now.
                cap = self._clock() + new.window_s
                self._ends = deque(min(end, cap) for end in self._ends)
            self.adapted_from_headers = True
        remaining = _int(headers.get("x-hubspot-ratelimit-remaining"))
        if remaining is None or self.rate is None:
            return
        now = self._clock()
        self._expire(now)
        ours = self._in_window()
        free_by_our_count = self.rate.limit - ours
        # Someone else is using the account's burst: book their share so we slow down.
        extra = free_by_our_count - remaining
        for _ in range(max(0, min(extra, self.rate.limit))):
            self._ends.append(now + self.rate.window_s)

    def backoff_window(self, retry_after: float | None) -> None:
        """After a 429: send nothing until Retry-After, or until a whole window has passed."""
        wait = retry_after if retry_after is not None else (self.rate.window_s if self.rate else 1.0)
        self._blocked_until = max(self._blocked_until, self._clock() + wait)


class DailyQuota:
    """The account's daily request quota, from X-HubSpot-RateLimit-Daily / -Daily-Remaining.

    Stops the run once only the reserve (kept for the account's other
    integrations) is left. OAuth apps get no daily headers: then nothing stops.
    """

    def __init__(self, reserve_fraction: float = 0.05) -> None:
        self.reserve_fraction = reserve_fraction
        self.daily: int | None = None
        self.remaining: int | None = None
        self.in_flight = 0  # claimed requests not answered yet: ``remaining`` does not count them

    def observe(self, headers: Mapping[str, str]) -> None:
        daily = _int(headers.get("x-hubspot-ratelimit-daily"))
        remaining = _int(headers.get("x-hubspot-ratelimit-daily-remaining"))
        if daily is not None:
            self.daily = daily
        if remaining is not None:
            self.remaining = remaining if self.remaining is None else min(self.remaining, remaining)

    @property
    def reserve(self) -> int:
        return math.ceil((self.daily or 0) * self.reserve_fraction)

    @property
    def usable(self) -> int | None:
        """Requests this run may still make today, or None when the quota is unknown."""
        if self.remaining is None:
            return None
        return max(0, self.remaining - self.reserve - self.in_flight)

    def check(self) -> None:
        """Raise ``QuotaExhausted`` when only the reserve is left."""
        if self.usable is not None and self.usable <= 0:
            raise QuotaExhausted(
                f"daily API quota reached: {self.remaining:,} of {self.daily or 0:,} requests left, "
                f"{self.reserve:,} kept in reserve for other integrations",
                hint="the quota resets at midnight in the HubSpot account's time zone; "
                "run the same command again then and it resumes where it stopped",
            )

    def claim(self) -> None:
        """Book one request: ``QuotaExhausted`` when it would dip into the reserve, counting the
        requests still in flight, so a run at any concurrency stops short of the reserve."""
        self.check()
        self.in_flight += 1

    def release(self) -> None:
        """A claimed request is answered (or failed): ``remaining`` from its headers takes over."""
        self.in_flight -= 1

    def exhausted_by_429(self) -> None:
        self.remaining = 0
        self.check()


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def plan_text(events: int, rate: Rate | None, quota: DailyQuota | None = None) -> str:
    """How long sending ``events`` takes at ``rate``, and how many days of quota it needs."""
    if rate is None:
        return f"{events:,} events; no rate limit set"
    seconds = events / rate.per_second
    text = f"{events:,} events at {rate.limit}/{rate.window_s:g}s take {format_duration(seconds)} of sending"
    if quota is not None and quota.daily:
        usable_per_day = max(1, quota.daily - quota.reserve)
        days = math.ceil(events / usable_per_day)
        text += f"; {days} day(s) of a {quota.daily:,}/day quota (keeping {quota.reserve:,} in reserve)"
    return text


def format_duration(seconds: float) -> str:
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
