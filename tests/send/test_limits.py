"""Sending at HubSpot's real limits, against the simulator on loopback, in simulated time.

The simulator and the run share one ``ScaledClock``: a 30-second 429 storm, a window of 10 s or a
night until the daily quota resets pass in a second or two of wall time, and give the same answer
on every run.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from support import Cli, seed_sample_media, summary_of

from importer.clock import ScaledClock
from importer.hubspot.auth import Credentials, OAuthApp
from importer.hubspot.pacing import Rate
from importer.hubspot.sender import RetryPolicy
from importer.simulator import Simulator, SimulatorClient, SimulatorConfig
from importer.state.summary import RunSummary

from .helpers import Input, accepted, assert_exactly_once, journal_statuses, run_on_clock


def _run(tmp_path: Path, sim: Simulator, data: Input, clock: ScaledClock, **options: object) -> RunSummary:
    return run_on_clock(tmp_path / "state", sim, data.path, clock, **options)


def _midnight_in(zone: str) -> float:
    """The next midnight in ``zone``."""
    tz = ZoneInfo(zone)
    return dt.datetime.combine(dt.datetime.now(tz).date() + dt.timedelta(days=1), dt.time(), tz).timestamp()


def test_a_30_second_429_storm_loses_and_fails_no_event(tmp_path: Path) -> None:
    # HubSpot Professional's window (190 per 10 s); after 10 calm seconds every request is answered
    # 429 for 30 seconds. Only --max-retry-time (300 s) bounds 429s: none counts as an attempt.
    clock = ScaledClock(speed=10)
    config = SimulatorConfig(
        burst=190, window_ms=10_000, storm_first_s=10, storm_every_s=100, storm_duration_s=30, seed=3
    )
    data = Input(tmp_path / "plays.csv", 200, seed=12)
    with Simulator(config, clock=clock) as sim:
        summary = _run(tmp_path, sim, data, clock, rate=Rate(190, 10.0), concurrency=8)
        stats = sim.client.stats()
        counts = accepted(sim)
    assert stats["faults"]["storm"] > 0  # the storm hit the run
    assert summary.stats["rate_limited"] == stats["by_status"]["429"] > 0
    assert summary.counts["failed"] == summary.counts["not_sent"] == 0
    assert summary.exit_code == 0, summary.render()
    assert_exactly_once(counts, data.valid)
    # Pacing: after a 429 nothing goes out until a window has passed, so a 30 s storm costs about
    # three rounds of the requests in flight, not a retry loop.
    assert summary.stats["rate_limited"] <= 4 * 8


def test_429s_never_use_up_max_attempts(tmp_path: Path) -> None:
    # Two attempts per event, a storm of 15 s: every event is still sent.
    clock = ScaledClock(speed=25)
    config = SimulatorConfig(
        burst=100, window_ms=10_000, storm_first_s=1, storm_every_s=100, storm_duration_s=15, seed=4
    )
    data = Input(tmp_path / "plays.csv", 60, seed=13)
    with Simulator(config, clock=clock) as sim:
        summary = _run(tmp_path, sim, data, clock, rate=Rate(100, 10.0), retry=RetryPolicy(max_attempts=2))
        counts = accepted(sim)
    assert summary.stats["rate_limited"] > 2
    assert summary.counts["failed"] == 0 and summary.exit_code == 0
    assert_exactly_once(counts, data.valid)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_refused_stops_within_30_s_and_the_rerun_sends_everything(
    tmp_path: Path, cli: Cli, make_simulator: object
) -> None:
    data = Input(tmp_path / "plays.csv", 50, seed=14)
    port = _closed_port()
    cli.env(HUBSPOT_ACCESS_TOKEN="demo-token")
    started = time.monotonic()
    ran = cli.run(f"http://127.0.0.1:{port}", data.path, extra=("--no-media-sync",))  # the events meet the stop
    took = time.monotonic() - started
    assert ran.code == 3
    assert took < 30
    assert f"cannot connect to 127.0.0.1:{port}: connection refused" in ran.out + ran.err
    assert ran.counts["failed"] == 0 and ran.counts["sent"] == 0
    assert "failed" not in journal_statuses(cli.state)
    sim = make_simulator(burst=0)  # type: ignore[operator]
    again = cli.run(sim.url, data.path)
    assert again.code == 0, again.out + again.err
    assert_exactly_once(accepted(sim), data.valid)


@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
def test_wait_for_quota_goes_on_after_the_reset_and_sends_everything_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, zone: str
) -> None:
    # 200 requests a day (190 usable, 10 in reserve) for about 240 events, starting 23 h before
    # midnight at 20,000× speed (4 s of wall time to midnight, so a slow machine still uses the
    # day's quota up first): one wait. The OAuth token (4 h) expires during the wait. The account's
    # day ends at midnight in its time zone (New York's is 4 or 5 hours after UTC's): the simulator
    # resets its quota then, and the run, told --account-timezone, waits for that moment (one that
    # waited for UTC's midnight would meet a DAILY 429).
    midnight = _midnight_in(zone)
    clock = ScaledClock(speed=20_000, start=midnight - 23 * 3600)
    config = SimulatorConfig(
        burst=0,
        daily=200,
        timezone=zone,
        client_id="cid",
        client_secret="csecret",
        refresh_token="rtoken",
        token_ttl_s=4 * 3600,
        seed=5,
    )
    data = Input(tmp_path / "plays.csv", 150, seed=15)
    assert len(data.valid) > 190
    oauth = Credentials(None, OAuthApp("cid", "csecret", "rtoken"))
    caplog.set_level(logging.WARNING, logger="media_import")
    with Simulator(config, clock=clock) as sim:
        summary = _run(tmp_path, sim, data, clock, rate=None, wait_for_quota=True, credentials=oauth,
                       account_timezone=zone)  # fmt: skip
        stats = sim.client.stats()
        counts = accepted(sim)
    assert summary.exit_code == 0, summary.render()
    assert summary.stats["quota_waits"] == 1
    assert summary.stats["oauth_refreshes"] >= 2  # the first token, and a fresh one after the wait
    assert f"daily quota used: waiting until 00:00 {zone}" in caplog.text
    assert stats["rate_limited"].get("DAILY", 0) == 0  # it stopped short of the reserve, then waited
    assert_exactly_once(counts, data.valid)
    assert clock.time() >= midnight  # it went on after the account's midnight, not before


def test_a_same_day_rerun_sends_nothing_once_only_the_reserve_is_left(
    tmp_path: Path, cli: Cli, make_simulator: object
) -> None:
    data = Input(tmp_path / "plays.csv", 100, seed=16)
    sim = make_simulator(burst=0, daily=100)  # type: ignore[operator]
    cli.env(HUBSPOT_ACCESS_TOKEN=sim.token)
    first = cli.run(sim.url, data.path)
    assert first.code == 3
    assert "resets at 00:00 UTC" in first.out
    used = sim.client.stats()["requests_total"]
    # The stop message and the summary give the same figure.
    left = first.summary["quota"]["remaining"]
    assert f"{left:,} of 100 requests left" in first.out
    assert f"Daily quota: {left:,} of 100 left" in first.out
    second = cli.run(sim.url, data.path)
    assert second.code == 3
    assert "resets at 00:00 UTC" in second.out
    assert sim.client.stats()["requests_total"] == used  # not one request of the reserve spent
    # status: the backfill's progress at the learned quota (95 a day: 100 less a 5% reserve).
    status = cli("status", "--state-dir", cli.state)
    sent = first.counts["sent"]
    total = len(data.valid)
    days = -(-(total - sent) // 95)
    assert f"Backfill: {sent:,} of {total:,} events sent; about {days} day(s) left at 95 a day" in status.out


def test_a_lower_limit_in_the_headers_is_said_once_and_shown_in_the_summary(
    tmp_path: Path, cli: Cli, make_simulator: object
) -> None:
    data = Input(tmp_path / "plays.csv", 30, seed=17)
    sim = make_simulator(burst=50, window_ms=1000)  # type: ignore[operator]
    cli.env(HUBSPOT_ACCESS_TOKEN=sim.token)
    log = tmp_path / "run.log"
    ran = cli.run(sim.url, data.path, rate="100/1s", extra=("--log-file", log))
    assert ran.code == 0, ran.err
    assert log.read_text().count("below --rate 100/1s") == 1
    assert ran.summary["rate_limit"] == "50/1s" and ran.summary["rate_lowered_by_hubspot"] is True
    assert "lowered the rate to 50/1s" in ran.out


def test_another_integration_using_part_of_the_window_costs_few_429s(tmp_path: Path) -> None:
    clock = ScaledClock(speed=20)
    config = SimulatorConfig(burst=50, window_ms=10_000, background_load=0.3, latency_ms=100, jitter_ms=300, seed=6)
    data = Input(tmp_path / "plays.csv", 60, seed=18)
    with Simulator(config, clock=clock) as sim:
        summary = _run(tmp_path, sim, data, clock, rate=Rate(50, 10.0))
        stats = sim.client.stats()
        counts = accepted(sim)
    assert summary.exit_code == 0
    assert_exactly_once(counts, data.valid)
    assert stats["by_status"].get("429", 0) <= max(1, stats["requests_total"] * 5 // 1000)


def test_timed_out_requests_are_held_as_possibly_sent(tmp_path: Path, cli: Cli, make_simulator: object) -> None:
    data = Input(tmp_path / "plays.csv", 60, seed=19)
    sim = make_simulator(burst=0, slow_rate=0.1, slow_ms=1500, seed=8)  # type: ignore[operator]
    cli.env(HUBSPOT_ACCESS_TOKEN=sim.token)
    seed_sample_media(sim)  # the media exist: only events meet the slow answers
    ran = cli.run(sim.url, data.path, extra=("--timeout", "0.3", "--no-media-sync"))
    slow = sim.client.stats()["faults"]["slow"]
    assert slow > 0
    assert ran.counts["possibly_sent"] == slow
    assert "possibly sent" in ran.out
    assert journal_statuses(cli.state)["possibly_sent"] == slow
    before = sim.client.stats()["requests_total"]
    held = cli.run(sim.url, data.path, extra=("--no-media-sync",))  # held: not sent again
    assert held.counts["sent"] == 0 and sim.client.stats()["requests_total"] == before
    sim.client.configure(slow_rate=0.0)
    again = cli.run(sim.url, data.path, extra=("--on-timeout", "retry"))
    assert again.counts["sent"] == slow, again.out
    assert sim.client.stats()["requests_total"] > before
    assert_exactly_once(accepted(sim), data.valid)


def test_dry_run_plans_only_what_a_run_would_send(tmp_path: Path, cli: Cli, make_simulator: object) -> None:
    data = Input(tmp_path / "plays.csv", 40, seed=20)
    sim = make_simulator(burst=0)  # type: ignore[operator]
    cli.env(HUBSPOT_ACCESS_TOKEN=sim.token)
    first = cli.run(sim.url, data.path, extra=("--dry-run",))
    assert f"Plan: {len(data.valid):,} events" in first.out
    assert sim.client.stats()["requests_total"] == 0
    assert cli.run(sim.url, data.path).code == 0
    again = cli.run(sim.url, data.path, extra=("--dry-run",))
    assert "Plan: 0 events" in again.out, again.out


def test_requests_in_flight_past_the_grace_period_count_as_possibly_sent(tmp_path: Path) -> None:
    # Every answer takes 3 s; SIGTERM once 4 requests are in flight, with a grace period of 0.5 s:
    # they may still arrive, so they are possibly_sent (not sent blindly again), and the run ends
    # within the grace period.
    data = Input(tmp_path / "plays.csv", 20, seed=21)
    clock = ScaledClock(speed=1)
    with Simulator(SimulatorConfig(burst=0, latency_ms=3000), clock=clock) as sim:
        signalled: list[float] = []

        def signal_when_busy() -> None:
            with SimulatorClient(sim.url) as watcher:
                deadline = time.monotonic() + 30
                while watcher.stats()["in_flight"] < 4 and time.monotonic() < deadline:
                    time.sleep(0.02)
            signalled.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGTERM)

        thread = threading.Thread(target=signal_when_busy, daemon=True)
        thread.start()
        summary = _run(tmp_path, sim, data, clock, rate=None, concurrency=4, grace_s=0.5)
        ended = time.monotonic()
        thread.join(5)
    assert summary.exit_code == 3
    assert summary.counts["possibly_sent"] == 4, summary.render()
    assert summary.counts["sent"] == 0 and summary.counts["not_sent"] == len(data.valid) - 4
    assert ended - signalled[0] < 0.5 + 1.0
    assert journal_statuses(tmp_path / "state")["possibly_sent"] == 4


def test_retry_resends_possibly_sent_events_only_with_on_timeout_retry(
    tmp_path: Path, cli: Cli, make_simulator: object
) -> None:
    data = Input(tmp_path / "plays.csv", 60, seed=22)
    sim = make_simulator(burst=0, slow_rate=0.1, slow_ms=1500, seed=9)  # type: ignore[operator]
    cli.env(HUBSPOT_ACCESS_TOKEN=sim.token)
    seed_sample_media(sim)  # the media exist: only events meet the slow answers
    first = cli.run(sim.url, data.path, extra=("--timeout", "0.3", "--no-media-sync"))
    slow = sim.client.stats()["faults"]["slow"]
    assert slow > 0 and first.counts["possibly_sent"] == slow
    sim.client.configure(slow_rate=0.0)
    base = ("--base-url", sim.url, "--state-dir", cli.state, "--rate", "none", "-q")
    held = cli("retry", first.results, "--results", tmp_path / "held.csv", *base)
    assert held.code == 0 and summary_of(tmp_path / "held.csv")["counts"]["sent"] == 0
    again = cli("retry", first.results, "--results", tmp_path / "again.csv", "--on-timeout", "retry", *base)
    assert again.code == 0 and summary_of(tmp_path / "again.csv")["counts"]["sent"] == slow
    assert_exactly_once(accepted(sim), data.valid)


def test_a_signal_during_the_quota_wait_stops_at_once_with_exit_3(tmp_path: Path) -> None:
    # 20 requests a day (19 usable): the run waits for midnight in real time; SIGTERM as soon as
    # it says so ends the wait, and the run, at once.
    data = Input(tmp_path / "plays.csv", 20, seed=23)
    waiting = threading.Event()
    signalled: list[float] = []

    class OnWait(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("daily quota used: waiting until"):
                signalled.append(time.monotonic())
                waiting.set()
                os.kill(os.getpid(), signal.SIGTERM)

    handler = OnWait()
    logger = logging.getLogger("media_import")
    logger.addHandler(handler)
    clock = ScaledClock(speed=1, start=_midnight_in("UTC") - 3600)  # an hour to midnight
    try:
        with Simulator(SimulatorConfig(burst=0, daily=20), clock=clock) as sim:
            summary = _run(tmp_path, sim, data, clock, rate=None, wait_for_quota=True)
            ended = time.monotonic()
    finally:
        logger.removeHandler(handler)
    assert waiting.is_set()
    assert summary.exit_code == 3 and summary.stats["quota_waits"] == 1
    assert ended - signalled[0] < 2.0
    assert summary.counts["sent"] == 19 and summary.counts["failed"] == 0
    assert summary.counts["not_sent"] == len(data.valid) - 19
