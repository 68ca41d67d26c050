"""What the state directory records for the run report: event days, media and contacts, invalid
events by reason with samples, and per-window send counters — and that older journals gain them."""

from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pyarrow as pa
from send.helpers import Input, Script, echo, error, run_scripted
from support import Cli

from importer.hubspot.sender import RetryPolicy
from importer.simulator import Simulator
from importer.state.activity import DAY_MS, SAMPLES, SendMeter, contact_hash, migrate, record_invalid
from importer.state.journal import SCHEMA, Journal
from importer.state.results import results_table

MakeSim = Callable[..., Simulator]
FAST = RetryPolicy(max_attempts=4, max_seconds=30.0, base_delay=0.001, max_delay=0.005)
LIMIT_HEADERS = {
    "X-HubSpot-RateLimit-Max": "50",
    "X-HubSpot-RateLimit-Interval-Milliseconds": "1000",
    "X-HubSpot-RateLimit-Daily": "10000",
}


def _db(state: Path) -> sqlite3.Connection:
    return sqlite3.connect(state / "journal.sqlite")


def test_a_journal_written_before_the_report_gains_its_columns_and_tables(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    old = _db(state)
    old.executescript(SCHEMA)  # the events table as it was: no day, media or contact
    payload = json.dumps({"occurredTimestamp": 1_700_000_000_000, "externalId": "m-1", "contactId": 5})
    old.execute("INSERT INTO events(k1, k2, status, payload) VALUES (1, 1, 'not_sent', ?)", (payload,))
    old.execute("INSERT INTO events(k1, k2, status) VALUES (2, 2, 'sent')")
    old.commit()
    old.close()
    for _ in range(2):  # opening twice must not try to add the columns again
        Journal(state).close()
    db = _db(state)
    rows = dict(db.execute("SELECT k1, day FROM events").fetchall())
    assert rows == {1: 1_700_000_000_000 // DAY_MS, 2: None}  # a sent event's payload is gone: day unknown
    assert db.execute("SELECT media FROM events WHERE k1 = 1").fetchone() == ("m-1",)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"send_windows", "invalid_counts", "invalid_samples"} <= tables


def test_a_run_records_day_media_and_a_contact_hash_of_every_sent_event(
    tmp_path: Path, cli: Cli, make_simulator: MakeSim
) -> None:
    data = Input(tmp_path / "plays.csv", 200, invalid_every=17)
    sim = make_simulator(burst=0)
    cli.env(HUBSPOT_ACCESS_TOKEN=sim.token)
    ran = cli.run(sim.url, data.path)
    assert ran.code == 1
    arrived = [r["event"] for r in sim.client.events()]
    db = _db(cli.state)
    by_day = Counter({d: n for d, n in db.execute("SELECT day, COUNT(*) FROM events WHERE status='sent' GROUP BY 1")})
    assert by_day == Counter(e["occurredTimestamp"] // DAY_MS for e in arrived)
    media = Counter({m: n for m, n in db.execute("SELECT media, COUNT(*) FROM events GROUP BY 1")})
    assert media == Counter(str(e.get("mediaBridgeId", e.get("externalId"))) for e in arrived)
    contacts = {c for (c,) in db.execute("SELECT DISTINCT contact FROM events")}
    assert contacts == {contact_hash(str(e.get("contactId", e.get("contactUtk")))) for e in arrived}
    # No contact id is kept for a sent event: only its hash.
    ids = {str(e["contactId"]) for e in arrived if "contactId" in e}
    assert not ids & {str(c) for c in contacts}


def test_invalid_events_are_counted_by_reason_once_per_file_even_when_it_is_read_again(
    tmp_path: Path, cli: Cli, make_simulator: MakeSim
) -> None:
    data = Input(tmp_path / "plays.csv", 300, invalid_every=11)
    sim = make_simulator(burst=0)
    cli.env(HUBSPOT_ACCESS_TOKEN=sim.token)
    first = cli.run(sim.url, data.path)
    reasons = Counter(r["error"] for r in first.rows if r["status"] == "invalid")
    assert len(reasons) >= 3
    os.utime(data.path, ns=(1, 1))  # a changed modification time: the file is read again
    again = cli.run(sim.url, data.path)
    assert again.counts["invalid"] == first.counts["invalid"]
    db = _db(cli.state)
    counted = Counter({r: n for r, n in db.execute("SELECT reason, SUM(count) FROM invalid_counts GROUP BY 1")})
    assert counted == reasons
    samples = db.execute("SELECT reason, COUNT(*), MIN(row) FROM invalid_samples GROUP BY 1").fetchall()
    assert {r for r, _, _ in samples} == set(reasons)
    first_rows: dict[str, int] = {}
    for r in first.rows:
        first_rows.setdefault(r["error"], int(r["row_number"]))
    for reason, n, row in samples:
        assert n == min(SAMPLES, reasons[reason])
        assert row == first_rows[reason]


def test_invalid_days_come_from_the_timestamp_and_line_numbers_leave_the_reason(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "j.sqlite", isolation_level=None)
    db.executescript(SCHEMA)
    migrate(db)
    ms = 1_750_000_000_000
    invalid = results_table(
        source_file="a.csv",
        row_number=pa.array([1, 2, 3], pa.int64()),
        status="invalid",
        field=pa.array(["contactId", None, "mediaType"], pa.string()),
        value=pa.array(["x", "a,b", "hologram"], pa.string()),
        error=pa.array(["no contact", "line 7: too many columns", "not an enum"], pa.string()),
        payload=pa.array([json.dumps({"occurredTimestamp": ms}), None, "{}"], pa.string()),
    )
    record_invalid(db, invalid, 1)
    rows = sorted(db.execute("SELECT reason, day, count FROM invalid_counts").fetchall())
    assert rows == [("no contact", ms // DAY_MS, 1), ("not an enum", None, 1), ("too many columns", None, 1)]


def test_the_send_meter_puts_each_delta_in_the_window_of_its_sample() -> None:
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.executescript(SCHEMA)
    migrate(db)
    now = [1000.0]
    meter = SendMeter(db, 7, clock=lambda: now[0])
    meter.sample((3, 0, 0), 10.0, 5, 1000, 990)
    now[0] = 1009.9
    meter.sample((5, 1, 1), 10.0, 5, 1000, 985)
    now[0] = 1010.0  # the next window
    meter.sample((9, 1, 1), 10.0, 5, 1000, 981)
    now[0] = 1100.0  # nothing happened meanwhile: no row for the quiet windows
    meter.sample((9, 1, 1), 10.0, 5, 1000, 981)
    meter.flush()
    rows = db.execute("SELECT run_id, start, requests, retries, rate_limited, rate_limit, daily_remaining "
                      "FROM send_windows ORDER BY start").fetchall()  # fmt: skip
    assert rows == [(7, 1000.0, 5, 1, 1, 5, 985), (7, 1010.0, 4, 0, 0, 5, 981)]


def test_a_run_records_requests_retries_and_429s_per_window(tmp_path: Path) -> None:
    data = Input(tmp_path / "plays.csv", 40)
    remaining = iter(range(9_000, 0, -1))

    def answer(request: httpx.Request) -> httpx.Response:
        return echo(request, headers={**LIMIT_HEADERS, "X-HubSpot-RateLimit-Daily-Remaining": str(next(remaining))})

    steps = [error(429, headers={"Retry-After": "0"}), error(503), error(429, headers={"Retry-After": "0"})]
    script = Script(*steps, then=answer)
    summary = run_scripted(tmp_path, data, script, FAST, tmp_path / "results.csv")
    assert summary.exit_code == 0
    db = _db(tmp_path / "state")
    requests, retries, limited = db.execute(
        "SELECT SUM(requests), SUM(retries), SUM(rate_limited) FROM send_windows"
    ).fetchone()
    assert (requests, retries, limited) == (len(script.requests), 3, 2)
    assert db.execute("SELECT MAX(rate_limit), MAX(daily), MIN(seconds) FROM send_windows").fetchone() == (
        50,
        10_000,
        1.0,
    )
    last = db.execute("SELECT daily_remaining FROM send_windows ORDER BY start DESC LIMIT 1").fetchone()[0]
    assert last == 9_000 - (len(script.requests) - len(steps)) + 1


def _assert_totals_match_the_events(db: sqlite3.Connection) -> None:
    days = db.execute("SELECT day, status, transient, n FROM event_days WHERE n != 0 ORDER BY 1, 2, 3").fetchall()
    scan = db.execute(
        "SELECT COALESCE(day, -1), status, transient, COUNT(*) FROM events GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    ).fetchall()
    assert days == scan
    media = db.execute("SELECT media, n FROM media_sent WHERE n != 0 ORDER BY 1").fetchall()
    assert (
        media
        == db.execute(
            "SELECT media, COUNT(*) FROM events WHERE status = 'sent' AND media IS NOT NULL GROUP BY 1 ORDER BY 1"
        ).fetchall()
    )
    contacts = {c for (c,) in db.execute("SELECT contact FROM sent_contacts")}
    sent = db.execute("SELECT DISTINCT contact FROM events WHERE status = 'sent' AND contact IS NOT NULL")
    assert contacts == {c for (c,) in sent}


def test_running_totals_follow_every_change_of_an_event(tmp_path: Path, cli: Cli, make_simulator: MakeSim) -> None:
    data = Input(tmp_path / "plays.csv", 200, invalid_every=9)
    sim = make_simulator(burst=0, error_rate=0.05, seed=9)
    cli.env(HUBSPOT_ACCESS_TOKEN=sim.token)
    cli.media_sync(sim.url, data.path)  # the media objects exist: the day's quota goes to the events
    sim.client.reset()
    sim.client.configure(daily=150)
    stopped = cli.run(sim.url, data.path)
    assert stopped.code == 3 and stopped.counts["not_sent"] > 0
    db = _db(cli.state)
    _assert_totals_match_the_events(db)
    sim.client.configure(daily=10_000)  # a new day: the leftovers go out (not_sent → sent)
    saved = json.loads(db.execute("SELECT value FROM state WHERE name = 'daily_quota'").fetchone()[0])
    saved["reset_at"] = 0  # the quota the journal remembers has reset since
    db.execute("UPDATE state SET value = ? WHERE name = 'daily_quota'", (json.dumps(saved),))
    db.commit()
    resumed = cli.run(sim.url, data.path)
    assert resumed.code == 1 and resumed.counts["sent"] >= stopped.counts["not_sent"]
    assert db.execute("SELECT COUNT(*) FROM events WHERE status = 'not_sent'").fetchone() == (0,)
    _assert_totals_match_the_events(db)
    forced = cli.run(sim.url, data.path, extra=("--force",))  # sent again: sent → sent changes nothing
    assert forced.counts["sent"] > 0
    _assert_totals_match_the_events(db)


def test_an_older_journal_is_counted_once_when_the_totals_are_added(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    old = _db(state)
    old.executescript(SCHEMA)
    for i in range(30):
        payload = json.dumps({"occurredTimestamp": 1_700_000_000_000 + i * DAY_MS, "externalId": f"m-{i % 4}"})
        status = ("sent", "not_sent", "failed")[i % 3]
        old.execute("INSERT INTO events(k1, k2, status, transient, payload) VALUES (?, ?, ?, ?, ?)",
                    (i, i, status, i % 2, payload if status != "sent" else None))  # fmt: skip
    old.commit()
    old.close()
    Journal(state).close()
    Journal(state).close()
    _assert_totals_match_the_events(_db(state))
