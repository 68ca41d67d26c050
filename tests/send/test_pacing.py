"""Pacing: the rolling-window limiter under a virtual clock, the daily quota, the plan text, and
the base-URL check."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random

import pytest

from importer.clock import ScaledClock, format_duration
from importer.errors import ConfigError, QuotaExhausted
from importer.hubspot.pacing import DailyQuota, Rate, RateLimiter, plan_text
from importer.hubspot.sender import check_base_url

_real_sleep = asyncio.sleep


class VirtualTime:
    """A clock that only moves when every task waits: ``sleep`` parks a task until ``now + d``."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return 1_800_000_000.0 + self.now

    async def sleep(self, delay: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, delay), next(self._seq), future))
        await future

    async def run(self, tasks: list[asyncio.Task[None]]) -> None:
        while not all(t.done() for t in tasks):
            for _ in range(20):  # let every runnable task reach its next sleep
                await _real_sleep(0)
            if self._sleepers:
                wake, _, future = heapq.heappop(self._sleepers)
                self.now = max(self.now, wake)
                future.set_result(None)
        for t in tasks:
            t.result()


@pytest.fixture
def vt() -> VirtualTime:
    return VirtualTime()


def _max_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max(sum(1 for u in times[i:] if u < t + window) for i, t in enumerate(times))


@pytest.mark.parametrize("seed", range(6))
def test_never_more_than_limit_acquisitions_in_any_window(vt: VirtualTime, seed: int) -> None:
    """Eight workers, random latencies (some longer than the window), 300 requests at 10 per 1 s."""
    rng = random.Random(seed)
    limiter = RateLimiter(Rate(10, 1.0), clock=vt)
    granted: list[float] = []
    todo = iter(range(300))

    async def worker() -> None:
        for _ in todo:
            ticket = await limiter.acquire()
            granted.append(vt.now)
            await vt.sleep(rng.choice([0.001, 0.02, 0.3, 1.5]) * rng.random())
            limiter.done(ticket)

    async def main() -> None:
        tasks = [asyncio.create_task(worker()) for _ in range(8)]
        await vt.run(tasks)

    asyncio.run(main())
    assert len(granted) == 300
    assert _max_in_any_window(granted, 1.0) == 10
    assert granted[-1] < 40.0  # slow answers hold their slots, but nothing stalls


def test_short_answers_ride_the_ceiling(vt: VirtualTime) -> None:
    """300 requests at 10 per 1 s with 10 ms answers: 29 windows after the first burst, each
    longer by one round trip (the issue's goal: within 2% of the ideal time)."""
    limiter = RateLimiter(Rate(10, 1.0), clock=vt)
    granted: list[float] = []
    todo = iter(range(300))

    async def worker() -> None:
        for _ in todo:
            ticket = await limiter.acquire()
            granted.append(vt.now)
            await vt.sleep(0.01)
            limiter.done(ticket)

    async def main() -> None:
        await vt.run([asyncio.create_task(worker()) for _ in range(10)])

    asyncio.run(main())
    assert _max_in_any_window(granted, 1.0) == 10
    assert 29.0 <= granted[-1] <= 29 * 1.02 + 0.001


def test_a_slow_answer_keeps_its_slot_until_a_window_after_the_answer(vt: VirtualTime) -> None:
    limiter = RateLimiter(Rate(2, 1.0), clock=vt)
    granted: list[float] = []

    async def main() -> None:
        first = await limiter.acquire()
        await limiter.acquire()

        async def third() -> None:
            await limiter.acquire()
            granted.append(vt.now)

        async def answer_late() -> None:
            await vt.sleep(5.0)  # an answer five windows later: the slot stays booked till then
            limiter.done(first)

        await vt.run([asyncio.create_task(third()), asyncio.create_task(answer_late())])

    asyncio.run(main())
    # Booked from its send until one window after its answer: 5 s + 1 s.
    assert granted == [pytest.approx(6.0)]


def test_done_books_a_window_from_the_answer(vt: VirtualTime) -> None:
    limiter = RateLimiter(Rate(1, 10.0), clock=vt)
    granted: list[float] = []

    async def main() -> None:
        ticket = await limiter.acquire()

        async def answer() -> None:
            await vt.sleep(0.05)
            limiter.done(ticket)

        async def second() -> None:
            await limiter.acquire()
            granted.append(vt.now)

        await vt.run([asyncio.create_task(answer()), asyncio.create_task(second())])

    asyncio.run(main())
    assert granted == [pytest.approx(10.05)]


def test_no_rate_means_no_waiting(vt: VirtualTime) -> None:
    limiter = RateLimiter(None, clock=vt)

    async def main() -> None:
        for _ in range(1000):
            limiter.done(await limiter.acquire())

    asyncio.run(main())
    assert vt.now == 0.0


@pytest.mark.parametrize("retry_after", [3.0, None])
def test_after_a_429_nothing_is_granted_before_retry_after_or_a_window(
    vt: VirtualTime, retry_after: float | None
) -> None:
    limiter = RateLimiter(Rate(5, 1.0), clock=vt)
    granted: list[float] = []

    async def main() -> None:
        for _ in range(3):  # three answered requests, their slots end at 1.0 s
            limiter.done(await limiter.acquire())
        vt.now = 0.5
        limiter.backoff_window(retry_after)  # a 429 at 0.5 s

        async def next_one() -> None:
            await limiter.acquire()
            granted.append(vt.now)

        await vt.run([asyncio.create_task(next_one())])

    asyncio.run(main())
    assert granted[0] >= 0.5 + (retry_after or 1.0)


def test_observe_adapts_limit_and_window() -> None:
    limiter = RateLimiter(Rate(100, 10.0), clock=ScaledClock(1e-9))
    limiter.observe({"x-hubspot-ratelimit-max": "190", "x-hubspot-ratelimit-interval-milliseconds": "10000"})
    assert limiter.rate == Rate(190, 10.0)
    limiter.observe({"x-hubspot-ratelimit-max": "0", "x-hubspot-ratelimit-interval-milliseconds": "10000"})
    assert limiter.rate == Rate(190, 10.0)
    limiter.observe({"x-hubspot-ratelimit-max": "20", "x-hubspot-ratelimit-interval-milliseconds": "500"})
    assert limiter.rate == Rate(20, 0.5)
    limiter.observe({"x-hubspot-ratelimit-max": "20"})
    assert limiter.rate == Rate(20, 0.5)


# ---- Rate, DailyQuota, plan -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("100/10s", Rate(100, 10.0)),
        ("190/10s", Rate(190, 10.0)),
        ("200/1s", Rate(200, 1.0)),
        ("50/500ms", Rate(50, 0.5)),
        (" 250/10s ", Rate(250, 10.0)),
        ("10/1m", Rate(10, 60.0)),
        ("10/2M", Rate(10, 120.0)),
        ("5000/1h", Rate(5000, 3600.0)),
        ("100/s", Rate(100, 1.0)),
        ("100 / 1.5s", Rate(100, 1.5)),
    ],
)
def test_rate_parse(text: str, rate: Rate) -> None:
    assert Rate.parse(text) == rate


@pytest.mark.parametrize("text", ["100", "abc/10s", "100/ten", "100/10d", "100/1.5.2s", ""])
def test_rate_parse_rejects_and_lists_the_units(text: str) -> None:
    with pytest.raises(ValueError, match=r"N/WINDOW with the window in ms, s, m or h"):
        Rate.parse(text)


@pytest.mark.parametrize("text", ["0/10s", "-1/10s", "100/0s", "100/0m"])
def test_rate_parse_rejects_empty_rates(text: str) -> None:
    with pytest.raises(ValueError, match="N at least 1 and a window longer than 0"):
        Rate.parse(text)


def test_a_window_without_a_unit_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="no unit") as info:
        Rate.parse("100/10")
    assert "100/10s for seconds" in str(info.value)
    assert "ms, s, m or h" in str(info.value)


def test_daily_quota_reserve_and_usable() -> None:
    quota = DailyQuota(0.05)
    assert (quota.daily, quota.remaining, quota.reserve, quota.usable) == (None, None, 0, None)
    quota.check()  # unknown: nothing stops
    quota.observe({"x-hubspot-ratelimit-daily": "250000", "x-hubspot-ratelimit-daily-remaining": "20000"})
    assert (quota.daily, quota.remaining, quota.reserve, quota.usable) == (250_000, 20_000, 12_500, 7_500)
    # Answers arrive out of order: the lowest remaining seen wins.
    quota.observe({"x-hubspot-ratelimit-daily-remaining": "20005"})
    assert quota.remaining == 20_000
    quota.observe({"x-hubspot-ratelimit-daily-remaining": "12500"})
    with pytest.raises(QuotaExhausted) as info:
        quota.check()
    assert "12,500 of 250,000" in info.value.message
    assert info.value.hint is not None and "midnight" in info.value.hint


def test_requests_in_flight_count_against_the_quota() -> None:
    quota = DailyQuota(0.05)
    quota.observe({"x-hubspot-ratelimit-daily": "100", "x-hubspot-ratelimit-daily-remaining": "10"})
    assert quota.usable == 5
    for _ in range(5):  # five claimed, none answered yet: the remaining figure has not moved
        quota.claim()
    assert quota.usable == 0
    with pytest.raises(QuotaExhausted):
        quota.claim()
    quota.release()  # one answered, with the figure that counts it
    quota.observe({"x-hubspot-ratelimit-daily-remaining": "9"})
    assert quota.usable == 0
    with pytest.raises(QuotaExhausted):
        quota.claim()


def test_daily_quota_reserve_rounds_up() -> None:
    quota = DailyQuota(0.05)
    quota.observe({"x-hubspot-ratelimit-daily": "101", "x-hubspot-ratelimit-daily-remaining": "50"})
    assert quota.reserve == 6
    assert quota.usable == 44


def test_no_daily_headers_never_stop() -> None:
    quota = DailyQuota(0.05)
    for _ in range(3):
        quota.observe({"x-hubspot-ratelimit-max": "110"})
        quota.check()
    assert quota.usable is None


def test_plan_text_time_and_quota_days() -> None:
    quota = DailyQuota(0.05)
    quota.observe({"x-hubspot-ratelimit-daily": "625000", "x-hubspot-ratelimit-daily-remaining": "625000"})
    assert plan_text(1_000_000, Rate(190, 10.0), quota) == (
        "1,000,000 events at 190/10s take 14 h 37 min of sending; "
        "2 day(s) of a 625,000/day quota (keeping 31,250 in reserve)"
    )
    assert plan_text(487, Rate(100, 10.0)) == "487 events at 100/10s take 49 s of sending"
    assert plan_text(10, None) == "10 events; no rate limit set"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59.4, "59 s"), (61, "1 min 1 s"), (3600, "1 h 0 min"), (90_061, "1 d 1 h"), (-5, "0 s")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


# ---- base URL ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("https://api.hubapi.com", "https://api.hubapi.com"),
        ("https://api.hubapi.com/", "https://api.hubapi.com"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("http://localhost:1234", "http://localhost:1234"),
        ("http://[::1]:9000", "http://[::1]:9000"),
        ("https://proxy.example.com/hubspot", "https://proxy.example.com/hubspot"),
    ],
)
def test_check_base_url_accepts_https_and_loopback_http(url: str, clean: str) -> None:
    assert check_base_url(url) == clean


@pytest.mark.parametrize(
    "url",
    [
        "http://api.hubapi.com",
        "http://example.com:8080",
        "http://10.0.0.5",
        "http://127.0.0.1.nip.io",
        "http://localhost.example.com",
        "http://user:pw@evil.example.com",
    ],
)
def test_check_base_url_refuses_plain_http_to_other_hosts(url: str) -> None:
    with pytest.raises(ConfigError, match="refusing plain http"):
        check_base_url(url)


@pytest.mark.parametrize("url", ["ftp://api.hubapi.com", "api.hubapi.com", "https://", ""])
def test_check_base_url_refuses_non_http_urls(url: str) -> None:
    with pytest.raises(ConfigError, match="not an http"):
        check_base_url(url)
