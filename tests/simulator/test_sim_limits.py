"""Rate limits: the rolling burst window, the daily quota, their 429 bodies and headers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from importer.clock import ManualClock
from importer.simulator import Simulator
from importer.simulator.limits import DAILY, TEN_SECONDLY, AccountLimits

from .helpers import CONTACTS, event, is_uuid, post


def test_burst_window_429_then_recovery(make_simulator: Callable[..., Simulator]) -> None:
    clock = ManualClock()  # the window moves only when the test says so
    sim = make_simulator(burst=5, window_ms=1000, clock=clock)
    ok = [post(sim, body=event(sessionId=f"s{i}")) for i in range(5)]
    assert [r.status_code for r in ok] == [200] * 5
    assert [r.headers["X-HubSpot-RateLimit-Remaining"] for r in ok] == ["4", "3", "2", "1", "0"]
    clock.advance(0.99)
    limited = post(sim, body=event(sessionId="late"))
    assert limited.status_code == 429
    body = limited.json()
    assert set(body) == {"status", "message", "errorType", "correlationId", "policyName"}
    assert body["status"] == "error" and body["errorType"] == "RATE_LIMIT"
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert is_uuid(body["correlationId"])
    assert "Retry-After" not in limited.headers
    assert limited.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    # Retrying hard inside the window keeps failing and does not extend it.
    assert post(sim, body=event(sessionId="late")).status_code == 429
    clock.advance(0.02)  # a whole window after the first five
    assert post(sim, body=event(sessionId="late")).status_code == 200
    stats = sim.client.stats()
    assert stats["rate_limited"][TEN_SECONDLY] == 2 and stats["by_status"] == {"200": 6, "429": 2}
    assert [r["event"]["sessionId"] for r in sim.client.events()] == [f"s{i}" for i in range(5)] + ["late"]


def test_every_authenticated_request_uses_the_window_but_401_does_not(
    make_simulator: Callable[..., Simulator],
) -> None:
    sim = make_simulator(burst=3, window_ms=60_000)
    assert post(sim, body=event(), token="wrong").status_code == 401
    assert post(sim, body=event(state="BAD")).status_code == 400
    assert post(sim, path=CONTACTS, body={"inputs": []}).status_code == 200
    assert post(sim, body=event()).status_code == 200
    assert post(sim, body=event()).status_code == 429


def test_retry_after_on_429_is_optional(make_simulator: Callable[..., Simulator]) -> None:
    sim = make_simulator(burst=1, window_ms=3000, retry_after_on_429=True)
    post(sim)
    limited = post(sim)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 3


def test_daily_quota(make_simulator: Callable[..., Simulator]) -> None:
    sim = make_simulator(burst=0, daily=3)
    answers = [post(sim, body=event(sessionId=f"s{i}")) for i in range(3)]
    assert [r.headers["X-HubSpot-RateLimit-Daily-Remaining"] for r in answers] == ["2", "1", "0"]
    assert all(r.headers["X-HubSpot-RateLimit-Daily"] == "3" for r in answers)
    assert "X-HubSpot-RateLimit-Max" not in answers[0].headers  # burst 0: no burst limit to describe
    limited = post(sim, body=event(sessionId="over"))
    assert limited.status_code == 429
    assert limited.json()["policyName"] == "DAILY"
    assert limited.json()["message"] == "You have reached your daily limit."
    stats = sim.client.stats()
    assert stats["rate_limited"][DAILY] == 1 and stats["accepted_events"] == 3 and stats["daily_used"] == 3
    sim.client.reset()
    assert post(sim).status_code == 200


def test_reset_empties_the_window(make_simulator: Callable[..., Simulator]) -> None:
    sim = make_simulator(burst=2, window_ms=60_000)
    post(sim), post(sim)
    assert post(sim).status_code == 429
    sim.client.reset()
    assert post(sim).status_code == 200
    assert sim.client.stats()["by_status"] == {"200": 1}


def test_limits_change_at_runtime(make_simulator: Callable[..., Simulator]) -> None:
    sim = make_simulator(burst=1, window_ms=60_000)
    post(sim)
    assert post(sim).status_code == 429
    sim.client.configure(burst=0)
    assert [post(sim).status_code for _ in range(5)] == [200] * 5
    sim.client.configure(daily=6)
    response = post(sim)
    assert response.status_code == 429 and response.json()["policyName"] == "DAILY"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.day = dt.date(2025, 1, 1)

    def __call__(self) -> float:
        return self.now

    def today(self) -> dt.date:
        return self.day


def test_rolling_window_frees_slots_one_by_one() -> None:
    clock = FakeClock()
    limiter = AccountLimits(burst=3, window_ms=10_000, daily=None, clock=clock, today=clock.today)
    for _ in range(3):
        assert limiter.acquire() is None
        clock.now += 1.0
    assert limiter.acquire() == TEN_SECONDLY
    assert limiter.retry_after_s(TEN_SECONDLY) == 7
    clock.now = 1010.0  # the first request, at t=1000, leaves the window
    assert limiter.acquire() is None
    assert limiter.acquire() == TEN_SECONDLY
    clock.now = 1011.0
    assert limiter.acquire() is None


def test_daily_quota_resets_when_the_utc_day_changes() -> None:
    clock = FakeClock()
    limiter = AccountLimits(burst=0, window_ms=10_000, daily=2, clock=clock, today=clock.today)
    assert [limiter.acquire() for _ in range(3)] == [None, None, DAILY]
    clock.day += dt.timedelta(days=1)
    assert limiter.acquire() is None
    assert dict(limiter.headers()) == {"X-HubSpot-RateLimit-Daily": "2", "X-HubSpot-RateLimit-Daily-Remaining": "1"}


def test_background_load_is_another_integration_using_part_of_the_window(
    make_simulator: Callable[..., Simulator],
) -> None:
    # burst 10 with 30% used by another integration: 7 slots are left, and Remaining counts the
    # other's 3 too. A whole window later the 7 are free again; the other's share stays.
    clock = ManualClock()
    sim = make_simulator(burst=10, window_ms=1000, background_load=0.3, clock=clock)
    answers = [post(sim, body=event(sessionId=f"s{i}")) for i in range(8)]
    assert [r.status_code for r in answers] == [200] * 7 + [429]
    assert [r.headers["X-HubSpot-RateLimit-Remaining"] for r in answers[:7]] == [str(6 - i) for i in range(7)]
    clock.advance(1.0)
    assert post(sim, body=event(sessionId="later")).headers["X-HubSpot-RateLimit-Remaining"] == "6"
    sim.client.configure(background_load=0.0)
    assert post(sim, body=event(sessionId="alone")).headers["X-HubSpot-RateLimit-Remaining"] == "8"


def test_daily_quota_resets_at_midnight_in_the_accounts_time_zone() -> None:
    # 2026-07-01 in New York (EDT, UTC-4): its midnight is 04:00 UTC; UTC's midnight is 20:00 there.
    wall = ManualClock(start=dt.datetime(2026, 7, 1, 21, 0, tzinfo=dt.UTC).timestamp())  # 17:00 in New York
    limits = AccountLimits(0, 10_000, 2, wall.monotonic, wall=wall.time, timezone="America/New_York")
    assert limits.acquire() is None and limits.acquire() is None
    assert limits.acquire() == DAILY
    assert limits.retry_after_s(DAILY) == 7 * 3600  # until 00:00 in New York, not 3 h to UTC's midnight
    wall.advance(3 * 3600 + 60)  # 00:01 UTC, 20:01 in New York: the same account day
    assert limits.acquire() == DAILY
    wall.advance(4 * 3600)  # 04:01 UTC, 00:01 in New York: a new day
    assert limits.acquire() is None


def test_an_unknown_time_zone_is_refused() -> None:
    from importer.simulator import SimulatorConfig

    assert any("timezone must be an IANA time zone" in p for p in SimulatorConfig(timezone="Mars/Olympus").problems())
