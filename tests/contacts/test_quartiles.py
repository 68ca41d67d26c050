"""Quartile events (``type: percent`` rules): one media-played-percent event per quartile a row's
share reached, sent to their own endpoint, deduplicated per session and quartile, journaled and
reported like played events. Expected events are written out by hand from the rows below."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from importer.simulator import Simulator

from .helpers import PERCENT, PLAYED, Cli, ms, sim_events, touch, write_csv

MakeSim = Callable[..., Simulator]
START = "2025-03-01T10:00:00Z"

MUX_MAPPING = """\
skip:
  - {column: exit_before_video_start, is_true: true}
fields:
  sessionId: view_id
  mediaType: {const: VIDEO}
  contactId: viewer_contact
  externalId: video_id
events:
  - state: STARTED
    timestamp: view_start
  - type: percent
    timestamp: view_end
    percent: {ratio: [view_max_playhead_position, {coalesce: [video_duration, player_source_duration]}]}
"""
MUX_HEADER = [
    "view_id", "viewer_contact", "video_id", "view_start", "view_end", "view_max_playhead_position",
    "video_duration", "player_source_duration", "exit_before_video_start",
]  # fmt: skip
# view_id, contact, playhead, video_duration, player_source_duration, exit_before_video_start
MUX_ROWS = [
    ("v1", "101", "0", "1000", "", "false"),  # 0%
    ("v2", "102", "249", "1000", "", "false"),  # 24.9%
    ("v3", "103", "250", "1000", "2000", "false"),  # 25%: video_duration wins over the source's
    ("v4", "104", "620", "1000", "", "false"),  # 62%
    ("v5", "105", "750", "", "1000", "false"),  # 75% of player_source_duration
    ("v6", "106", "1000", "1000", "", "false"),  # 100%
    ("v7", "107", "1500", "1000", "", "false"),  # over 100%: 100
    ("v8", "108", "", "1000", "", "false"),  # no playhead: STARTED only
    ("v9", "109", "500", "0", "", "false"),  # duration 0: STARTED only
    ("v4", "104", "800", "1000", "", "false"),  # v4 again, further: only 75 is new
    ("v6", "106", "1000", "1000", "", "false"),  # v6 again, the same: nothing new
    ("v10", "", "600", "1000", "", "false"),  # no contact: STARTED and 0/25/50 invalid
    ("v11", "111", "749", "1000", "", "false"),  # 74.9%
    ("v12", "112", "900", "", "", "false"),  # no duration at all: STARTED only
    ("v13", "113", "900", "1000", "", "true"),  # exit before start: skipped, no event at all
]


def end(row: int) -> int:
    """view_end of row ``row``: a minute apart, so each event's row shows in its timestamp."""
    return ms(f"2025-03-01T10:{row:02d}:30Z")


# sessionId -> {playedPercent: occurredTimestamp}: the first row that reached a quartile gives it.
EXPECTED_PERCENT = {
    "v1": {0: end(0)},
    "v2": {0: end(1)},
    "v3": {0: end(2), 25: end(2)},
    "v4": {0: end(3), 25: end(3), 50: end(3), 75: end(9)},
    "v5": {0: end(4), 25: end(4), 50: end(4), 75: end(4)},
    "v6": {0: end(5), 25: end(5), 50: end(5), 75: end(5), 100: end(5)},
    "v7": {0: end(6), 25: end(6), 50: end(6), 75: end(6), 100: end(6)},
    "v11": {0: end(12), 25: end(12), 50: end(12)},
}
STARTED_SESSIONS = {"v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v11", "v12"}
PERCENT_TOTAL = 25
REPORT_EVENTS = {
    "STARTED": 11,
    "PERCENT_0": 8,
    "PERCENT_25": 6,
    "PERCENT_50": 5,
    "PERCENT_75": 4,
    "PERCENT_100": 2,
}
CONTACT = {f"v{i}": 100 + i for i in range(1, 14)}


def mux_views(path: Path) -> Path:
    rows = [
        [view, contact, f"vid-{view[1:]}", START, f"2025-03-01T10:{i:02d}:30Z", playhead, duration, source, exited]
        for i, (view, contact, playhead, duration, source, exited) in enumerate(MUX_ROWS)
    ]
    return write_csv(path, MUX_HEADER, rows)


def quartiles(sim: Simulator) -> dict[str, dict[int, int]]:
    """sessionId -> {playedPercent: occurredTimestamp} of the accepted percent events; each once."""
    out: dict[str, dict[int, int]] = {}
    seen: Counter[tuple[str, int]] = Counter()
    for event in sim_events(sim, PERCENT):
        session, pct = str(event["sessionId"]), int(event["playedPercent"])
        seen[(session, pct)] += 1
        out.setdefault(session, {})[pct] = int(event["occurredTimestamp"])
    twice = {k: n for k, n in seen.items() if n > 1}
    assert not twice, f"percent events accepted more than once: {twice}"
    return out


@pytest.fixture
def sim(make_simulator: MakeSim) -> Simulator:
    return make_simulator(burst=0)


@pytest.fixture
def views(tmp_path: Path) -> Path:
    return mux_views(tmp_path / "views.csv")


@pytest.fixture
def mux(cli: Cli, sim: Simulator) -> Cli:
    cli.use_mapping(MUX_MAPPING)
    cli.token(sim.token)
    return cli


# ---- what is sent -------------------------------------------------------------------------------


def test_each_reached_quartile_is_sent_to_the_percent_endpoint(mux: Cli, sim: Simulator, views: Path) -> None:
    ran = mux.run(sim.url, views)
    assert ran.code == 1, ran.out + ran.err  # v10 has no contact
    assert quartiles(sim) == EXPECTED_PERCENT

    percent = sim_events(sim, PERCENT)
    assert len(percent) == PERCENT_TOTAL
    assert all("state" not in e for e in percent)
    one = next(e for e in percent if e["sessionId"] == "v5" and e["playedPercent"] == 50)
    assert one == {
        "mediaType": "VIDEO",
        "sessionId": "v5",
        "playedPercent": 50,
        "occurredTimestamp": end(4),
        "contactId": 105,
        "externalId": "vid-5",
    }
    played = sim_events(sim, PLAYED)
    assert {e["sessionId"] for e in played} == STARTED_SESSIONS
    assert len(played) == len(STARTED_SESSIONS)
    assert all(e["state"] == "STARTED" and "playedPercent" not in e for e in played)
    assert all(e["contactId"] == CONTACT[e["sessionId"]] for e in [*played, *percent])

    stats = sim.client.stats()
    assert stats["accepted_events"] == PERCENT_TOTAL + len(STARTED_SESSIONS)
    assert stats["duplicates"] == 0
    assert ran.counts == {"sent": 36, "skipped": 0, "invalid": 4, "failed": 0, "not_sent": 0, "possibly_sent": 0}
    # v4's second row repeats STARTED, 0, 25 and 50; v6's repeats all six of its events.
    assert ran.summary["duplicates"] == 10
    assert ran.summary["rows_skipped_by_rules"] == 1


def test_a_rerun_sends_nothing(mux: Cli, sim: Simulator, views: Path) -> None:
    mux.run(sim.url, views)
    before = sim.client.stats()

    unchanged = mux.run(sim.url, views)
    assert unchanged.code == 0
    assert sim.client.stats()["requests_total"] == before["requests_total"]

    touch(views)  # read again: the journal knows every percent event by session and quartile
    reread = mux.run(sim.url, views)
    assert reread.counts == {"sent": 0, "skipped": 36, "invalid": 4, "failed": 0, "not_sent": 0, "possibly_sent": 0}
    assert sim.client.stats()["requests_total"] == before["requests_total"]
    assert quartiles(sim) == EXPECTED_PERCENT


def test_a_file_that_grew_sends_only_the_new_quartiles(mux: Cli, sim: Simulator, views: Path) -> None:
    mux.run(sim.url, views)
    with views.open("a", encoding="utf-8") as fh:  # v2 watched on, to 100%; a new view v14 to 30%
        fh.write(f"v2,102,vid-2,{START},2025-03-01T11:00:30Z,1000,1000,,false\n")
        fh.write(f"v14,114,vid-14,{START},2025-03-01T11:01:30Z,300,1000,,false\n")
    ran = mux.run(sim.url, views)
    assert ran.counts["sent"] == 4 + 3  # v2: 25, 50, 75, 100; v14: STARTED, 0, 25
    later, v14_end = ms("2025-03-01T11:00:30Z"), ms("2025-03-01T11:01:30Z")
    want = {
        **EXPECTED_PERCENT,
        "v2": {0: end(1), 25: later, 50: later, 75: later, 100: later},
        "v14": {0: v14_end, 25: v14_end},
    }
    assert quartiles(sim) == want


# ---- reported and recorded ----------------------------------------------------------------------


def test_check_reports_quartiles_as_percent_events(mux: Cli, views: Path) -> None:
    code, report = mux.check_json(views)
    assert code == 1
    assert report["events"] == REPORT_EVENTS
    assert report["events_total"] == 36
    assert report["duplicates"] == 10
    assert report["invalid"] == 4
    _, text, _ = mux("check", views, "-m", mux.mapping, "-q")
    assert "PERCENT_50 5" in text and "STARTED 11" in text


def test_results_file_records_percent_events_like_played_ones(mux: Cli, sim: Simulator, views: Path) -> None:
    ran = mux.run(sim.url, views, extra=("--results-all",))
    rows = ran.rows
    sent = [r for r in rows if r["status"] == "sent"]
    assert len(sent) == 36
    sent_percent = [json.loads(r["payload"]) for r in sent if not r["state"]]
    assert len(sent_percent) == PERCENT_TOTAL
    got: dict[str, dict[int, int]] = {}
    for p in sent_percent:
        got.setdefault(p["sessionId"], {})[p["playedPercent"]] = p["occurredTimestamp"]
    assert got == EXPECTED_PERCENT
    assert all(r["event_key"] for r in sent)

    invalid = [r for r in rows if r["status"] == "invalid"]
    payloads = [json.loads(r["payload"]) for r in invalid]
    assert {p["sessionId"] for p in payloads} == {"v10"}
    assert sorted(p.get("playedPercent", -1) for p in payloads) == [-1, 0, 25, 50]  # STARTED, then quartiles
    assert all(r["field"] == "contactId" for r in invalid)


# ---- percent from one value: fraction or percent ------------------------------------------------

VALUE_MAPPING = """\
fields:
  sessionId: view_id
  mediaType: {const: VIDEO}
  contactId: {const: 7}
  externalId: {const: vid-1}
events:
  - type: percent
    timestamp: view_end
    percent: {value: pct%s}
"""
ALL = [0, 25, 50, 75, 100]
# pct as exported -> quartiles reached read as a fraction-or-percent (default) / always a percent
SHARES: list[tuple[str, list[int], list[int]]] = [
    ("0", [0], [0]),
    ("0.1", [0], [0]),
    ("0.25", [0, 25], [0]),
    ("0.62", [0, 25, 50], [0]),
    ("62", [0, 25, 50], [0, 25, 50]),
    ("0.75", [0, 25, 50, 75], [0]),
    ("75", [0, 25, 50, 75], [0, 25, 50, 75]),
    ("99.9", [0, 25, 50, 75], [0, 25, 50, 75]),
    ("1", ALL, [0]),  # 1 is a whole play as a fraction, 1% as a percent
    ("1.5", [0], [0]),  # above 1: 1.5%
    ("100", ALL, ALL),
    ("150", ALL, ALL),  # capped at 100
    ("62%", [0, 25, 50], [0, 25, 50]),  # a percent sign says percent on either scale
    ("0.5%", [0], [0]),
    ("", [], []),
    ("-5", [], []),
]


@pytest.mark.parametrize("scale", ["fraction", "percent"])
def test_value_share_reads_fractions_and_percents(cli: Cli, sim: Simulator, tmp_path: Path, scale: str) -> None:
    rows = [[f"p{i}", pct, f"2025-03-01T12:{i:02d}:00Z"] for i, (pct, _, _) in enumerate(SHARES)]
    data = write_csv(tmp_path / "wistia.csv", ["view_id", "pct", "view_end"], rows)
    cli.use_mapping(VALUE_MAPPING % ("" if scale == "fraction" else ", scale: percent"))
    cli.token(sim.token)
    ran = cli.run(sim.url, data)
    assert ran.code == 0, ran.out + ran.err
    column = 1 if scale == "fraction" else 2
    want = {
        f"p{i}": {q: ms(f"2025-03-01T12:{i:02d}:00Z") for q in share[column]}
        for i, share in enumerate(SHARES)
        if share[column]
    }
    assert quartiles(sim) == want
    assert sim_events(sim, PLAYED) == []


def test_dedupe_keys_without_played_percent_still_keep_quartiles_apart(cli: Cli, sim: Simulator, views: Path) -> None:
    cli.use_mapping(MUX_MAPPING + "dedupe: [sessionId, state]\n")
    cli.token(sim.token)
    cli.run(sim.url, views)
    assert quartiles(sim) == EXPECTED_PERCENT


def test_percent_events_take_their_contact_from_hubspot(cli: Cli, make_simulator: MakeSim, tmp_path: Path) -> None:
    sim = make_simulator(burst=0, contacts={"ann@example.com": 4242})
    crm_contact = "contactId: {lookup: crm, match: viewer_contact, get: contactId}"
    mapping = MUX_MAPPING.replace("contactId: viewer_contact", crm_contact)
    cli.use_mapping("lookups:\n  crm: {source: hubspot}\n" + mapping)
    cli.token(sim.token)
    rows = [["a1", " Ann@Example.com", "vid-1", START, "2025-03-01T10:01:00Z", "500", "1000", "", "false"]]
    ran = cli.run(sim.url, write_csv(tmp_path / "views.csv", MUX_HEADER, rows))
    assert ran.code == 0, ran.out + ran.err
    percent = sim_events(sim, PERCENT)
    assert sorted(e["playedPercent"] for e in percent) == [0, 25, 50]
    assert {e["contactId"] for e in [*percent, *sim_events(sim, PLAYED)]} == {4242}


# ---- events left over or retried go back to the percent endpoint --------------------------------


def _failing_first_run(cli: Cli, make_simulator: MakeSim, views: Path) -> tuple[Simulator, Any]:
    sim = make_simulator(burst=0, error_rate=0.35, seed=5)
    cli.use_mapping(MUX_MAPPING)
    cli.token(sim.token)
    ran = cli.run(sim.url, views, extra=("--max-attempts", "1"))
    assert ran.counts["failed"] > 0 and ran.counts["sent"] > 0
    sim.client.configure(error_rate=0.0)
    return sim, ran


def test_failed_percent_events_are_redriven_to_the_percent_endpoint(
    cli: Cli, make_simulator: MakeSim, views: Path
) -> None:
    sim, _ = _failing_first_run(cli, make_simulator, views)
    rerun = cli.run(sim.url, views)
    assert rerun.summary["leftovers_redriven"] > 0
    assert quartiles(sim) == EXPECTED_PERCENT
    assert {e["sessionId"] for e in sim_events(sim, PLAYED)} == STARTED_SESSIONS
    assert sim.client.stats()["by_status"].get("400", 0) == 0


def test_retry_sends_failed_percent_events_to_the_percent_endpoint(
    cli: Cli, make_simulator: MakeSim, views: Path
) -> None:
    sim, first = _failing_first_run(cli, make_simulator, views)
    code, out, err = cli(
        "retry", first.results, "--state-dir", cli.state, "--base-url", sim.url, "--rate", "none", "-q"
    )
    assert code == 0, out + err
    assert quartiles(sim) == EXPECTED_PERCENT
    assert len(sim_events(sim, PLAYED)) == len(STARTED_SESSIONS)
    assert sim.client.stats()["by_status"].get("400", 0) == 0
