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
  implies (another integration shares the account), the difference is the
  other's share: measured against the requests this process had sent in the
  window the server counted (up to that request's send time), and the upper
  quartile of the shares measured within the last window is held back (single
  answers are off by the requests whose latency differs: the largest would
  hold back too much, the median leaves no margin).
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import logging
import math
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from importer.clock import SYSTEM, Clock, format_duration
from importer.errors import ConfigError, QuotaExhausted

log = logging.getLogger("media_import")
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

    @property
    def text(self) -> str:
        """'190/10s', '50/250ms': the form --rate takes."""
        if self.window_s < 1:
            return f"{self.limit}/{self.window_s * 1000:g}ms"
        return f"{self.limit}/{self.window_s:g}s"


class RateLimiter:
    """Rolling-window limiter shared by every request of the process."""

    def __init__(self, rate: Rate | None, clock: Clock = SYSTEM) -> None:
        self.rate = rate
        self.requested = rate  # what --rate asked for; ``rate`` follows HubSpot's headers
        self._time = clock
        self._clock = clock.monotonic
        self._ends: deque[float] = deque()  # when each booked slot leaves the window
        self._open: dict[int, float] = {}  # ticket → send time, while unanswered
        self._next_ticket = 0
        self._sent: list[float] = []  # send times of this process's requests, for the last two windows
        self._others: deque[tuple[float, int]] = deque()  # (seen at, other's share measured), last window
        self._other_share = 0  # their upper quartile
        self._lock = asyncio.Lock()
        self._answered = asyncio.Event()  # set by ``done``: a window full of unanswered requests moves
        self._blocked_until = 0.0
        self.adapted_from_headers = False

    def _expire(self, now: float) -> None:
        while self._ends and self._ends[0] <= now:
            self._ends.popleft()

    def _in_window(self) -> int:
        return len(self._ends) + len(self._open) + self.others

    @property
    def others(self) -> int:
        """Slots of the window other integrations of the account use: the most seen in one window."""
        if not self._others or self.rate is None:
            return 0
        horizon = self._clock() - self.rate.window_s
        if self._others[0][0] <= horizon:
            while self._others and self._others[0][0] <= horizon:
                self._others.popleft()
            self._other_share = _upper_quartile(self._others)
        return self._other_share

    async def acquire(self) -> int:
        """Wait for a free slot; return a ticket to hand back to ``done``."""
        async with self._lock:
            while True:
                now = self._clock()
                self._expire(now)
                if now < self._blocked_until:  # after a 429: nothing goes out until the window frees
                    await self._time.sleep(self._blocked_until - now)
                    continue
                if self.rate is None or self._in_window() < self.rate.limit:
                    break
                if self._ends:
                    await self._time.sleep(max(self._ends[0] - now, 0.0005))
                elif self._open:  # the window is full of unanswered requests: wait for an answer
                    self._answered.clear()
                    await self._answered.wait()
                else:  # other integrations use the whole window: wait until that share is old news
                    await self._time.sleep(max(self._others[0][0] + self.rate.window_s - now, 0.0005))
            ticket = self._next_ticket
            self._next_ticket += 1
            self._open[ticket] = now
            self._sent.append(now)
            return ticket

    def done(self, ticket: int) -> None:
        """The answer to ``ticket`` arrived: its slot stays booked one window from now."""
        if self._open.pop(ticket, None) is None or self.rate is None:
            return
        self._answered.set()
        # The server saw the request somewhere between send and answer: counting the window
        # from the answer can never free a slot before the server does.
        self._ends.append(self._clock() + self.rate.window_s)

    def observe(self, headers: Mapping[str, str], ticket: int | None = None) -> None:
        """Adapt to X-HubSpot-RateLimit-Max / -Interval-Milliseconds / -Remaining (of ``ticket``'s answer)."""
        limit = _int(headers.get("x-hubspot-ratelimit-max"))
        interval = _int(headers.get("x-hubspot-ratelimit-interval-milliseconds"))
        if limit and interval and limit > 0 and interval > 0:
            new = Rate(limit, interval / 1000)
            if new != self.rate:
                if (
                    self.requested is not None
                    and new.per_second < self.requested.per_second
                    and (self.rate is None or self.rate.per_second >= self.requested.per_second)
                ):
                    log.warning(
                        "HubSpot's headers limit this account to %s requests per %s, below --rate %s: "
                        "sending at the account's limit",
                        new.limit,
                        format_duration(new.window_s) if new.window_s >= 1 else f"{new.window_s * 1000:g} ms",
                        self.requested.text,
                    )
                self.rate = new
                # Slots booked under the old window end no later than one new window from now.
                cap = self._clock() + new.window_s
                self._ends = deque(min(end, cap) for end in self._ends)
            self.adapted_from_headers = True
        remaining = _int(headers.get("x-hubspot-ratelimit-remaining"))
        if remaining is None or self.rate is None:
            return
        now = self._clock()
        window = self.rate.window_s
        sent_at = self._open.get(ticket, now) if ticket is not None else now
        # The server counted our requests sent in the window up to this one (this one included).
        lo = bisect.bisect_right(self._sent, sent_at - window)
        hi = bisect.bisect_right(self._sent, sent_at)
        other = min(self.rate.limit, max(0, self.rate.limit - remaining - (hi - lo)))
        self._others.append((now, other))
        horizon = now - window
        while self._others[0][0] <= horizon:
            self._others.popleft()
        self._other_share = _upper_quartile(self._others)
        drop = bisect.bisect_left(self._sent, now - 2 * window)
        if drop > 256:
            del self._sent[:drop]

    def backoff_window(self, retry_after: float | None) -> None:
        """After a 429: send nothing until Retry-After, or until a whole window has passed."""
        wait = retry_after if retry_after is not None else (self.rate.window_s if self.rate else 1.0)
        self._blocked_until = max(self._blocked_until, self._clock() + wait)


class DailyQuota:
    """The account's daily request quota, from X-HubSpot-RateLimit-Daily / -Daily-Remaining.

    Stops the run once only the reserve (kept for the account's other
    integrations) is left. OAuth apps get no daily headers: then nothing stops.
    The quota resets at midnight in the account's time zone (``timezone``); the
    last known figures are kept in the state directory (``to_state`` / ``restore``)
    so a rerun the same day does not spend the reserve learning them again.
    """

    def __init__(self, reserve_fraction: float = 0.05, *, timezone: str = "UTC", clock: Clock = SYSTEM) -> None:
        self.reserve_fraction = reserve_fraction
        self.timezone = timezone
        self._tz = zone(timezone)
        self._clock = clock
        self.daily: int | None = None
        self.remaining: int | None = None
        self.reset_at: float | None = None  # epoch seconds of the next reset, once the quota is known
        self.in_flight = 0  # claimed requests not answered yet: ``remaining`` does not count them
        self.used_today = 0  # requests answered since the quota was last known to reset

    def next_reset(self) -> float:
        """Epoch seconds of the next midnight in the account's time zone."""
        now = dt.datetime.fromtimestamp(self._clock.time(), self._tz)
        midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), self._tz)
        return midnight.timestamp()

    def roll_over(self) -> bool:
        """Forget the figures once the reset time has passed (the next headers tell the new ones)."""
        if self.reset_at is not None and self._clock.time() >= self.reset_at:
            self.remaining = self.reset_at = None
            self.used_today = 0
            return True
        return False

    def observe(self, headers: Mapping[str, str]) -> None:
        daily = _int(headers.get("x-hubspot-ratelimit-daily"))
        remaining = _int(headers.get("x-hubspot-ratelimit-daily-remaining"))
        if daily is not None:
            self.daily = daily
        if remaining is not None:
            self.roll_over()
            self.remaining = remaining if self.remaining is None else min(self.remaining, remaining)
            if self.reset_at is None:
                self.reset_at = self.next_reset()

    @property
    def reserve(self) -> int:
        return math.ceil((self.daily or 0) * self.reserve_fraction)

    @property
    def usable(self) -> int | None:
        """Requests this run may still make today, or None when the quota is unknown."""
        if self.remaining is None:
            return None
        return max(0, self.remaining - self.reserve - self.in_flight)

    @property
    def held_in_flight(self) -> bool:
        """What is left above the reserve is all booked by requests in flight. Their answers tell
        whether HubSpot had counted them already in the figure last seen: then some of it is free."""
        self.roll_over()
        return self.remaining is not None and self.in_flight > 0 and self.remaining - self.reserve > 0

    @property
    def exhausted(self) -> bool:
        """Only the reserve is left (after forgetting a quota whose reset time has passed)."""
        self.roll_over()
        usable = self.usable
        return usable is not None and usable <= 0

    def reset_text(self) -> str:
        """'00:00 America/New_York (5 h 12 min)': when the quota resets, and how far off that is."""
        at = self.reset_at if self.reset_at is not None else self.next_reset()
        local = dt.datetime.fromtimestamp(at, self._tz)
        return f"{local:%H:%M} {self.timezone} ({format_duration(at - self._clock.time())})"

    def exhausted_error(self) -> QuotaExhausted:
        """The stop message, with the figures as they stand (the summary shows the same ones)."""
        return QuotaExhausted(
            f"daily API quota reached: {self.remaining or 0:,} of {self.daily or 0:,} requests left, "
            f"{self.reserve:,} kept in reserve for other integrations; it resets at {self.reset_text()}",
            hint="it resets at midnight in the account's time zone: run the same command again then and it resumes "
            "where it stopped (or pass --wait-for-quota to wait for it; --account-timezone sets the zone)",
        )

    def check(self) -> None:
        """Raise ``QuotaExhausted`` when only the reserve is left."""
        self.roll_over()
        if self.usable is not None and self.usable <= 0:
            raise self.exhausted_error()

    def claim(self) -> None:
        """Book one request: ``QuotaExhausted`` when it would dip into the reserve, counting the
        requests still in flight, so a run at any concurrency stops short of the reserve."""
        self.check()
        self.in_flight += 1

    def release(self, answered: bool = False) -> None:
        """A claimed request is answered (or failed): ``remaining`` from its headers takes over."""
        self.in_flight -= 1
        if answered:
            self.used_today += 1

    def exhausted_by_429(self) -> None:
        self.remaining = 0
        if self.reset_at is None:
            self.reset_at = self.next_reset()
        self.check()

    def to_state(self) -> dict[str, Any]:
        """The figures worth keeping across runs (see ``restore``)."""
        return {"daily": self.daily, "remaining": self.remaining, "reset_at": self.reset_at, "timezone": self.timezone}

    def restore(self, saved: Mapping[str, Any] | None) -> None:
        """Take the last run's figures, unless the quota has reset since."""
        if not saved or saved.get("reset_at") is None or saved.get("remaining") is None:
            if saved and saved.get("daily"):
                self.daily = int(saved["daily"])
            return
        if self._clock.time() >= float(saved["reset_at"]):
            self.daily = int(saved["daily"]) if saved.get("daily") else None
            return
        self.daily = int(saved["daily"]) if saved.get("daily") else None
        self.remaining = int(saved["remaining"])
        self.reset_at = float(saved["reset_at"])


def zone(name: str) -> ZoneInfo:
    """A time zone by its IANA name ('UTC', 'America/New_York'), or a ``ConfigError``."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone {name!r}", hint="use an IANA name such as UTC, Europe/Paris or America/New_York"
        ) from None


def _upper_quartile(seen: deque[tuple[float, int]]) -> int:
    if not seen:
        return 0
    shares = sorted(share for _, share in seen)
    return shares[len(shares) * 3 // 4]


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
        days = days_left(events, quota.daily, quota.reserve)
        text += f"; {days} day(s) of a {quota.daily:,}/day quota (keeping {quota.reserve:,} in reserve)"
    return text


def days_left(to_send: int, daily: int | None, reserve: int, left_today: int | None = None) -> int | None:
    """Days the events left take at the daily quota less the reserve, today counted when what is
    left of today's quota (``left_today``, None: unknown, a full day) sends some of them."""
    if not daily:
        return None
    if to_send <= 0:
        return 0
    full = per_day(daily, reserve)
    today = full if left_today is None else max(0, min(full, left_today - reserve))
    if today >= to_send:
        return 1
    return (1 if today else 0) + math.ceil((to_send - today) / full)


def per_day(daily: int, reserve: int) -> int:
    """Requests a day leaves for the backfill: the daily quota less the reserve."""
    return max(1, daily - reserve)
