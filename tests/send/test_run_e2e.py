"""``media-import run`` end to end against the simulator on loopback, in this process."""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from support import Cli, media_requests

from importer.clock import ScaledClock
from importer.hubspot.pacing import Rate
from importer.simulator import Simulator, SimulatorConfig
from importer.state.journal import Journal

from .helpers import Input, accepted, assert_exactly_once, journal_statuses, key_of, run_on_clock

SUMMARY_KEYS = {
    "counts",
    "rows",
    "duration_s",
    "events_per_s",
    "requests",
    "retries",
    "rate_limited",
    "unconfirmed",
    "oauth_refreshes",
    "quota",
    "stopped",
    "exit_code",
}
RESULT_COLUMNS = ["source_file", "row_number", "state", "status", "http_status", "error", "attempts", "payload"]

MakeSim = Callable[..., Simulator]


def test_every_valid_event_is_accepted_exactly_once(tmp_path: Path, cli: Cli, make_simulator: MakeSim) -> None:
    data = Input(tmp_path / "plays.csv", 300, invalid_every=23)
    sim = make_simulator(burst=0)
    cli.env(HUBSPOT_ACCESS_TOKEN=sim.token)
    ran = cli.run(sim.url, data.path)
    assert ran.code == 1  # some rows are invalid
    assert_exactly_once(accepted(sim), data.valid)
    assert ran.counts == {
        "sent": len(data.valid),
        "skipped": 0,
        "invalid": len(data.invalid),
        "failed": 0,
        "not_sent": 0,
        "possibly_sent": 0,
    }
    stats = sim.client.stats()
    assert stats["requests_total"] - media_requests(sim) == len(data.valid)
    assert stats["duplicates"] == 0
    assert {key_of(json.loads(r["payload"])) for r in ran.rows} == data.invalid
    assert {r["status"] for r in ran.rows} == {"invalid"}


def test_5xx_and_dropped_connections_leave_every_event_exactly_once(
    tmp_path: Path, cli: Cli, make_simulator: MakeSim
) -> None:
    data = Input(tmp_path / "plays.csv", 400, seed=3)
    sim = make_simulator(burst=0, error_rate=0.05, drop_rate=0.01, seed=11)
    cli.env(HUBSPOT_ACCESS_TOKEN=sim.token)
    ran = cli.run(sim.url, data.path, extra=("--timeout", "5"))
    assert ran.code == 0, ran.out + ran.err
    counts = accepted(sim)
    assert_exactly_once(counts, data.valid)
    stats = sim.client.stats()
    faults = stats["faults"]
    assert faults["dropped"] > 0 and faults["server_error"] > 0
    # A dropped connection left nothing recorded: each fault cost exactly one retry.
    assert ran.summary["retries"] == faults["dropped"] + faults["server_error"]
    assert ran.summary["requests"] == stats["requests_total"]
    assert ran.counts["sent"] == len(data.valid)
    assert stats["duplicates"] == 0


def test_429_storms_with_faults_leave_every_event_exactly_once(tmp_path: Path) -> None:
    # 20 requests per second in windows of 2.5 s; 429 storms of 5 s every 10 s from the 3rd second,
    # 5% 5xx and 1% dropped connections: seeded, and in the simulator's time (5× real time), so the
    # storms hit the run however busy the machine is.
    clock = ScaledClock(speed=5)
    config = SimulatorConfig(
        burst=50,
        window_ms=2500,
        storm_first_s=3,
        storm_every_s=10,
        storm_duration_s=5,
        error_rate=0.05,
        drop_rate=0.01,
        seed=5,
    )
    data = Input(tmp_path / "plays.csv", 150, seed=4)
    with Simulator(config, clock=clock) as sim:
        summary = run_on_clock(tmp_path / "state", sim, data.path, clock, rate=Rate(50, 2.5), timeout_s=5.0)
        stats = sim.client.stats()
        counts = accepted(sim)
    assert stats["faults"]["storm"] > 0
    assert summary.stats["rate_limited"] == stats["by_status"]["429"]
    assert_exactly_once(counts, data.valid)
    assert summary.exit_code == 0, summary.render()


def test_429_storms_with_retry_after_leave_every_event_exactly_once(tmp_path: Path) -> None:
    clock = ScaledClock(speed=5)
    config = SimulatorConfig(
        burst=50, window_ms=2500, storm_first_s=3, storm_every_s=10, storm_duration_s=4, retry_after_on_429=True, seed=5
    )
    data = Input(tmp_path / "plays.csv", 150, seed=4)
    with Simulator(config, clock=clock) as sim:
        summary = run_on_clock(tmp_path / "state", sim, data.path, clock, rate=Rate(50, 2.5))
        stats = sim.client.stats()
        counts = accepted(sim)
    assert stats["faults"]["storm"] > 0
    assert summary.stats["rate_limited"] == stats["by_status"]["429"]
    assert_exactly_once(counts, data.valid)
    assert summary.exit_code == 0, summary.render()


def test_rerun_sends_nothing_also_after_moving_the_file_and_force_resends(
    tmp_path: Path, cli: Cli, make_simulator: MakeSim
) -> None:
    data = Input(tmp_path / "plays.csv", 120, seed=5)
    sim = make_simulator(burst=0)
    cli.env(HUBSPOT_ACCESS_TOKEN=sim.token)
    first = cli.run(sim.url, data.path)
    assert first.code == 0
    n = len(data.valid)
    requests = sim.client.stats()["requests_total"]
    assert requests - media_requests(sim) == n

    # The same command: the manifest knows the file, nothing is read or sent.
    again = cli.run(sim.url, data.path)
    assert again.code == 0
    assert again.counts["sent"] == 0
    assert again.counts["skipped"] + n * again.summary.get("files_skipped_unchanged", 0) == n
    assert sim.client.stats()["requests_total"] == requests

    # Moved and renamed: read again, every event counted as skipped by the journal.
    moved = tmp_path / "elsewhere" / "renamed-export.csv"
    moved.parent.mkdir()
    shutil.move(data.path, moved)
    after_move = cli.run(sim.url, moved)
    assert after_move.code == 0
    assert after_move.counts == {"sent": 0, "skipped": n, "invalid": 0, "failed": 0, "not_sent": 0, "possibly_sent": 0}
    assert sim.client.stats()["requests_total"] == requests

    # Touched (new mtime, same content): read again, still nothing sent.
    os.utime(moved, (1_800_000_000, 1_800_000_000))
    touched = cli.run(sim.url, moved)
    assert touched.counts["skipped"] == n and touched.counts["sent"] == 0
    assert sim.client.stats()["requests_total"] == requests

    forced = cli.run(sim.url, moved, extra=("--force",))
    assert forced.code == 0
    assert forced.counts["sent"] == n
    assert accepted(sim) == Counter(dict.fromkeys(data.valid, 2))


def test_rerun_with_results_all_lists_skipped_events(tmp_path: Path, cli: Cli, make_simulator: MakeSim) -> None:
    data = Input(tmp_path / "plays.csv", 40, seed=6)
    sim = make_simulator(burst=0)
    cli.env(HUBSPOT_ACCESS_TOKEN=sim.token)
    first = cli.run(sim.url, data.path, extra=("--results-all",))
    assert Counter(r["status"] for r in first.rows) == {"sent": len(data.valid)}
    moved = tmp_path / "copy.csv"
    shutil.copy(data.path, moved)
    again = cli.run(sim.url, moved, extra=("--results-all",))
    assert Counter(r["status"] for r in again.rows) == {"skipped": len(data.valid)}
    assert {key_of(json.loads(r["payload"])) for r in again.rows} == data.valid


# ---- terminal errors ---------------------------------------------------------------------------


def test_wrong_token_stops_with_exit_3_and_marks_nothing_failed(
    tmp_path: Path, cli: Cli, make_simulator: MakeSim
) -> None:
    data = Input(tmp_path / "plays.csv", 200, seed=7)
    sim = make_simulator(burst=0)
    wrong = "pat-na1-00000000-wrong-token-0000"
    cli.env(HUBSPOT_ACCESS_TOKEN=wrong)
    ran = cli.run(sim.url, data.path, extra=("--no-media-sync",))  # the events' own path to the stop
    assert ran.code == 3
    counts = ran.counts
    assert (counts["sent"], counts["failed"], counts["invalid"]) == (0, 0, 0)
    assert counts["not_sent"] > 0
    assert {r["status"] for r in ran.rows} == {"not_sent"}
    assert journal_statuses(cli.state).keys() == {"not_sent"}
    assert "401" in ran.out and "token" in ran.out
    assert wrong not in ran.out + ran.err + ran.results.read_text() + json.dumps(ran.summary)
    stats = sim.client.stats()
    assert stats["accepted_events"] == 0
    assert stats["by_status"]["401"] <= 8  # stops at once: at most one request per worker


def test_rerun_after_a_stop_sends_every_event_exactly_once(tmp_path: Path, cli: Cli, make_simulator: MakeSim) -> None:
    data = Input(tmp_path / "plays.csv", 200, seed=7)
    sim = make_simulator(burst=0)
    cli.env(HUBSPOT_ACCESS_TOKEN="pat-na1-00000000-wrong-token-0000")
    # Stopped on the events (not on the media sync, which stops before any row is read).
    stopped = cli.run(sim.url, data.path, extra=("--no-media-sync",), check=False)
    assert stopped.counts["not_sent"] > 0
    cli.env(HUBSPOT_ACCESS_TOKEN=sim.token)
    rerun = cli.run(sim.url, data.path)
    assert rerun.code == 0
    assert_exactly_once(accepted(sim), data.valid)
    assert rerun.counts["sent"] == len(data.valid)


def test_missing_scope_stops_with_exit_3_naming_the_scope(tmp_path: Path, cli: Cli, make_simulator: MakeSim) -> None:
    data = Input(tmp_path / "plays.csv", 50, seed=8)
    sim = make_simulator(burst=0, tokens={"pat-na1-contacts-only": frozenset({"crm.objects.contacts.read"})})
    cli.env(HUBSPOT_ACCESS_TOKEN="pat-na1-contacts-only")
    ran = cli.run(sim.url, data.path, extra=("--no-media-sync",))  # the events' own path to the stop
    assert ran.code == 3
    assert "media_bridge.write" in ran.out
    assert ran.counts["failed"] == 0 and ran.counts["sent"] == 0 and ran.counts["not_sent"] > 0
    assert "403" in ran.summary["stopped"]
    assert sim.client.stats()["by_status"]["403"] <= 8


def test_wrong_base_url_path_stops_with_exit_3(tmp_path: Path, cli: Cli, make_simulator: MakeSim) -> None:
    data = Input(tmp_path / "plays.csv", 50, seed=9)
    sim = make_simulator(burst=0)
    cli.env(HUBSPOT_ACCESS_TOKEN=sim.token)
    ran = cli.run(sim.url + "/nope", data.path, extra=("--no-media-sync",))  # the events' own path to the stop
    assert ran.code == 3
    assert "base URL looks wrong" in ran.out
    assert ran.counts["failed"] == 0 and ran.counts["not_sent"] > 0
    assert sim.client.stats()["by_status"]["404"] <= 8


def test_plain_http_to_another_host_is_refused_before_anything(tmp_path: Path, cli: Cli) -> None:
    data = Input(tmp_path / "plays.csv", 5)
    cli.env(HUBSPOT_ACCESS_TOKEN="pat-na1-whatever")
    ran = cli.run("http://api.hubapi.com", data.path)
    assert ran.code == 2
    assert "refusing plain http" in ran.err
    assert not ran.results.exists()


def test_no_token_is_a_config_error(tmp_path: Path, cli: Cli, make_simulator: MakeSim) -> None:
    data = Input(tmp_path / "plays.csv", 5)
    sim = make_simulator(burst=0)
    ran = cli.run(sim.url, data.path)
    assert ran.code == 2
    assert "HUBSPOT_ACCESS_TOKEN" in ran.err
    assert sim.client.stats()["requests_total"] == 0


# ---- daily quota -------------------------------------------------------------------------------


@pytest.mark.parametrize("next_day", ["reset", "raised-limit"])
def test_daily_quota_stops_cleanly_and_the_rerun_sends_the_rest(
    tmp_path: Path, cli: Cli, make_simulator: MakeSim, next_day: str
) -> None:
    data = Input(tmp_path / "plays.csv", 150, seed=10)  # about 240 events
    sim = make_simulator(burst=0, daily=200)
    cli.env(HUBSPOT_ACCESS_TOKEN=sim.token)
    first = cli.run(sim.url, data.path)
    assert first.code == 3, first.out
    failed = [r for r in first.rows if r["status"] == "failed"]
    assert failed == []
    assert first.counts["not_sent"] > 0
    assert "midnight" in first.out
    assert first.summary["quota"]["daily"] == 200
    assert first.summary["quota"]["reserve"] == 10
    day_one = accepted(sim)
    assert first.counts["sent"] == sum(day_one.values())
    stats = sim.client.stats()
    assert stats["rate_limited"]["DAILY"] == 0  # stopped on the headers, before HubSpot refused
    # The reserve (10) is left to other integrations: requests still in flight count against the
    # quota before their answers lower the remaining figure, so none of them dips into it; and
    # the run waits for their answers before it stops, so it uses every request above the reserve.
    assert stats["daily_used"] == 190
    assert first.summary["quota"]["remaining"] == 10

    # The same day, the rerun knows the quota is used up: it asks HubSpot nothing.
    same_day = cli.run(sim.url, data.path)
    assert same_day.code == 3 and "resets at 00:00 UTC" in same_day.out
    assert sim.client.stats()["requests_total"] == stats["requests_total"]

    if next_day == "reset":
        sim.client.reset()
    else:
        sim.client.configure(daily=10_000)
    _midnight_passes(cli.state)
    second = cli.run(sim.url, data.path)
    assert second.code == 0, second.out
    union = day_one + accepted(sim) if next_day == "reset" else accepted(sim)
    assert_exactly_once(union, data.valid)


def _midnight_passes(state: Path) -> None:
    """The next day, for the quota the state directory remembers: its reset time is past."""
    journal = Journal(state)
    try:
        saved = json.loads(journal.get("daily_quota") or "{}")
        saved["reset_at"] = time.time() - 1
        journal.put("daily_quota", json.dumps(saved))
    finally:
        journal.close()


# ---- OAuth -----------------------------------------------------------------------------------


def test_oauth_tokens_are_refreshed_before_they_expire(tmp_path: Path, cli: Cli, make_simulator: MakeSim) -> None:
    data = Input(tmp_path / "plays.csv", 150, seed=11)  # about 240 events at 100/s: 2.4 s
    sim = make_simulator(
        burst=100,
        window_ms=1000,
        client_id="client-oauth-1",
        client_secret="secret-oauth-1",
        refresh_token="refresh-oauth-1",
        token_ttl_s=1.0,
    )
    cli.env(
        HUBSPOT_CLIENT_ID="client-oauth-1",
        HUBSPOT_CLIENT_SECRET="secret-oauth-1",
        HUBSPOT_REFRESH_TOKEN="refresh-oauth-1",
    )
    ran = cli.run(sim.url, data.path, rate="100/1s")
    assert ran.code == 0, ran.out
    stats = sim.client.stats()
    assert ran.summary["oauth_refreshes"] >= 2
    assert ran.summary["oauth_refreshes"] == stats["tokens_issued"]
    assert "401" not in stats["by_status"]
    assert all(r["http_status"] != "401" for r in ran.rows)
    assert_exactly_once(accepted(sim), data.valid)


def test_oauth_with_a_wrong_client_secret_stops_with_exit_3(tmp_path: Path, cli: Cli, make_simulator: MakeSim) -> None:
    data = Input(tmp_path / "plays.csv", 20, seed=12)
    sim = make_simulator(burst=0, client_id="c", client_secret="right-secret", refresh_token="r")
    cli.env(HUBSPOT_CLIENT_ID="c", HUBSPOT_CLIENT_SECRET="wrong-secret-value", HUBSPOT_REFRESH_TOKEN="r")
    ran = cli.run(sim.url, data.path)
    assert ran.code == 3
    assert "OAuth refresh failed" in ran.out
    assert ran.counts["sent"] == 0 and ran.counts["failed"] == 0
    assert "wrong-secret-value" not in ran.out + ran.err + ran.results.read_text()


# ---- results file and summary ---------------------------------------------------------------


def test_results_file_and_summary(tmp_path: Path, cli: Cli, make_simulator: MakeSim) -> None:
    data = Input(tmp_path / "plays.csv", 150, seed=13, invalid_every=17)
    sim = make_simulator(burst=0)
    cli.env(HUBSPOT_ACCESS_TOKEN=sim.token)
    cli.media_sync(sim.url, data.path)
    sim.client.reset()
    sim.client.configure(error_rate=0.2, seed=3)
    ran = cli.run(sim.url, data.path, extra=("--results-all", "--max-attempts", "1"))
    assert ran.code == 1

    assert stat.S_IMODE(ran.results.stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(f"{ran.results}.summary.json").stat().st_mode) == 0o600
    header = ran.results.read_text().splitlines()[0].replace('"', "").split(",")
    assert set(RESULT_COLUMNS) <= set(header)

    rows = ran.rows
    by_status = Counter(r["status"] for r in rows)
    assert set(by_status) == {"sent", "failed", "invalid"}
    server = {key_of(rec["event"]): rec["event"] for rec in sim.client.events()}
    for r in rows:
        body = json.loads(r["payload"])
        assert r["source_file"] == str(data.path)
        assert r["state"] == body["state"]
        if r["status"] == "sent":
            assert body == server[key_of(body)]  # the payload column is exactly what was sent
            assert r["error"] == ""
        elif r["status"] == "failed":
            assert key_of(body) not in server
            assert r["http_status"] in {"500", "502", "503", "504"}
            assert r["attempts"] == "1"
            assert r["error"].startswith(f"gave up after 1 attempts: HTTP {r['http_status']}")
        else:
            assert r["error"] and r["attempts"] == "0"
    assert {key_of(json.loads(r["payload"])) for r in rows if r["status"] == "invalid"} == data.invalid
    assert {key_of(json.loads(r["payload"])) for r in rows if r["status"] != "invalid"} == data.valid

    summary = ran.summary
    assert set(summary) >= SUMMARY_KEYS
    stats = sim.client.stats()
    assert summary["counts"] == {
        "sent": by_status["sent"],
        "skipped": 0,
        "invalid": by_status["invalid"],
        "failed": by_status["failed"],
        "not_sent": 0,
        "possibly_sent": 0,
    }
    assert summary["counts"]["failed"] == stats["faults"]["server_error"]
    assert summary["exit_code"] == 1
    assert summary["requests"] == stats["requests_total"]
    assert (summary["retries"], summary["rate_limited"], summary["unconfirmed"]) == (0, 0, 0)
    assert summary["stopped"] is None
    assert summary["duration_s"] > 0
    assert summary["events_per_s"] == pytest.approx(by_status["sent"] / summary["duration_s"], rel=0.01)
    assert summary["quota"] == {"daily": None, "remaining": None, "reserve": 0, "resets_at": None, "timezone": "UTC"}
    assert f"Sent {by_status['sent']:,}" in ran.out


def test_summary_reports_the_daily_quota_left(tmp_path: Path, cli: Cli, make_simulator: MakeSim) -> None:
    data = Input(tmp_path / "plays.csv", 20, seed=14)
    sim = make_simulator(burst=0, daily=1000)
    cli.env(HUBSPOT_ACCESS_TOKEN=sim.token)
    ran = cli.run(sim.url, data.path)
    assert ran.code == 0
    n = len(data.valid) + media_requests(sim)  # the media objects' requests count against the quota too
    quota = ran.summary["quota"]
    assert {k: quota[k] for k in ("daily", "remaining", "reserve", "timezone")} == {
        "daily": 1000,
        "remaining": 1000 - n,
        "reserve": 50,
        "timezone": "UTC",
    }
    assert quota["resets_at"] > time.time()  # the next midnight in the account's time zone
    assert f"Daily quota: {1000 - n:,} of 1,000 left" in ran.out


def test_unconfirmed_answers_are_counted_and_warned(
    tmp_path: Path, cli: Cli, make_simulator: MakeSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importer.simulator import app

    data = Input(tmp_path / "plays.csv", 10, seed=15)
    monkeypatch.setattr(app, "echo_event", lambda *a, **k: {"status": "ok"})
    sim = make_simulator(burst=0)
    cli.env(HUBSPOT_ACCESS_TOKEN=sim.token)
    ran = cli.run(sim.url, data.path)
    n = len(data.valid)
    assert ran.summary["unconfirmed"] == n
    assert f"warning: {n:,} 2xx answers did not echo the event" in ran.out


# ---- dry run ---------------------------------------------------------------------------------


def test_dry_run_prints_the_plan_and_sends_nothing(tmp_path: Path, cli: Cli, make_simulator: MakeSim) -> None:
    data = Input(tmp_path / "plays.csv", 300, seed=16)
    sim = make_simulator(burst=0)
    n = len(data.valid)
    ran = cli.run(sim.url, data.path, rate="100/10s", extra=("--dry-run",))
    assert ran.code == 0
    assert n == 471
    assert "Plan: 471 events at 100/10s take 47 s of sending" in ran.out
    assert sim.client.stats()["requests_total"] == 0
    assert not (cli.state / "journal.sqlite").exists() or journal_statuses(cli.state) == Counter()


def test_dry_run_plan_states_the_days_of_quota(tmp_path: Path, cli: Cli, make_simulator: MakeSim) -> None:
    data = Input(tmp_path / "plays.csv", 50, seed=17)
    n = len(data.valid)
    sim = make_simulator(burst=0, daily=60)
    ran = cli.run(sim.url, data.path, rate="100/10s", extra=("--dry-run",))
    assert "daily quota unknown: pass --daily-limit" in ran.out
    ran = cli.run(sim.url, data.path, rate="100/10s", extra=("--dry-run", "--daily-limit", "250000"))
    assert f"Plan: {n} events at 100/10s take 8 s of sending; 1 day(s) of a 250,000/day quota" in ran.out
    # After a real run, the limit HubSpot reported is remembered: 60 a day, 57 usable.
    cli.env(HUBSPOT_ACCESS_TOKEN=sim.token)
    first = cli.run(sim.url, data.path, check=False)
    assert first.summary["quota"]["daily"] == 60
    ran = cli.run(sim.url, data.path, rate="100/10s", extra=("--dry-run",))
    left = n - first.counts["sent"]  # the plan counts only what a run would still send
    days = -(-left // 57)
    assert f"Plan: {left} events at 100/10s" in ran.out
    assert f"; {days} day(s) of a 60/day quota (keeping 3 in reserve)" in ran.out
