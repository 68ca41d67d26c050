"""The report page of a real state directory (two runs through the simulator: invalid rows, 5xx
retries, HubSpot refusals, a daily quota that stops the second run), opened in headless Chromium."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from nightly.helpers import RejectingProxy
from send.helpers import MAPPING, Input
from support import seed_sample_media, summary_of

from importer.cli.main import main
from importer.dashboard.data import gather
from importer.dashboard.text import number
from importer.simulator import Simulator, SimulatorConfig

CHARTS = {"progress", "days", "sending", "quota", "reasons", "media"}
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DAILY = 700  # the first run fits in it; the second stops at the reserve (5%)


@dataclass
class Backfill:
    state: Path
    page: Path
    token: str
    summaries: list[dict[str, Any]]
    accepted: list[dict[str, Any]]
    refused: int


@pytest.fixture(scope="module")
def backfill(tmp_path_factory: pytest.TempPathFactory) -> Backfill:
    tmp = tmp_path_factory.mktemp("report")
    first = Input(tmp / "plays-2025-01.csv", 300, seed=11, invalid_every=13, prefix="a")
    second = Input(tmp / "plays-2025-02.csv", 300, seed=12, prefix="b")
    refuse = {k for k in first.valid if k[0].endswith("7")}
    sim = Simulator(SimulatorConfig(burst=400, window_ms=1000, daily=DAILY, error_rate=0.04, seed=5)).start()
    seed_sample_media(sim)  # the samples' media exist in the account: the runs list them and create none
    proxy = RejectingProxy(sim, refuse)
    state, page = tmp / "state", tmp / "report.html"
    summaries = []
    try:
        os.environ["HUBSPOT_ACCESS_TOKEN"] = sim.token
        for n, data in enumerate((first, second)):
            results = tmp / f"results-{n}.csv"
            args = ["run", str(data.path), "-m", str(MAPPING), "--results", str(results), "--state-dir", str(state),
                    "--base-url", proxy.url, "--rate", "300/1s", "-q"]  # fmt: skip
            if n == 1:
                args += ["--report", str(page)]
            main(args)
            summaries.append(summary_of(results))
        accepted = [r["event"] for r in sim.client.events()]
    finally:
        os.environ.pop("HUBSPOT_ACCESS_TOKEN", None)
        proxy.close()
        sim.stop()
    assert [s["exit_code"] for s in summaries] == [1, 3]  # invalid and refused events; then the quota
    return Backfill(state, page, sim.token, summaries, accepted, len(proxy.rejected))


def _saved(state: Path, name: str) -> dict[str, Any] | None:
    db = sqlite3.connect(state / "journal.sqlite")
    try:
        row = db.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
    finally:
        db.close()
    return None if row is None else dict(json.loads(row[0]))


def _unread(state: Path) -> int:
    """The runner's estimate of the events in inputs it did not read (it stopped early)."""
    saved = _saved(state, "backfill")
    return 0 if saved is None else int(saved["unread_events"] or 0)


def _days_left(backfill: Backfill, now: float) -> int:
    """Day by day: what the second run left of today's quota (above the reserve) until the reset,
    then a full day's quota less the reserve; a day that sends nothing is not counted."""
    quota = _saved(backfill.state, "daily_quota")
    assert quota is not None
    reserve = math.ceil(DAILY * 0.05)
    left = int(backfill.summaries[1]["counts"]["not_sent"]) + _unread(backfill.state)
    today = DAILY - reserve if now >= quota["reset_at"] else max(0, int(quota["remaining"]) - reserve)
    days = 0
    for can_send in [today] + [DAILY - reserve] * left:
        if left <= 0:
            break
        days += 1 if can_send else 0
        left -= can_send
    return days


def test_the_figures_come_from_the_state_directory(backfill: Backfill) -> None:
    data = gather(backfill.state)
    sent = len(backfill.accepted)
    first, second = backfill.summaries
    not_sent = second["counts"]["not_sent"]
    assert data.unread == _unread(backfill.state)
    assert data.outcomes == {
        "sent": sent,
        "failed": backfill.refused,
        "invalid": first["counts"]["invalid"],
        "not_sent": not_sent,
    }
    assert data.pending == {"not_sent": not_sent, "failed_transient": 0, "failed_terminal": backfill.refused}
    assert data.daily == DAILY
    assert data.reset_at is not None
    for now in (data.reset_at - 1, data.reset_at + 1):  # before the reset today's rest counts; after, not
        assert gather(backfill.state, now=now).days_left == _days_left(backfill, now)
    assert sum(b.requests for b in data.bins) == first["requests"] + second["requests"]
    assert sum(b.retries for b in data.bins) == first["retries"] + second["retries"]
    assert data.contacts == len({e.get("contactId", e.get("contactUtk")) for e in backfill.accepted})
    assert data.media == len({e.get("mediaBridgeId", e.get("externalId")) for e in backfill.accepted})
    assert [r.exit_code for r in data.runs] == [3, 1]
    kinds = {r.kind for r in data.reasons}
    assert kinds == {"invalid", "failed"}
    refused = [r for r in data.reasons if r.kind == "failed"]
    assert refused[0].reason.startswith("Media object not found")  # correlationId left out: one reason
    assert refused[0].count == backfill.refused and len(refused[0].samples) == 3


def test_the_page_holds_no_token_and_no_contact_id_of_a_sent_event(backfill: Backfill) -> None:
    html = backfill.page.read_text(encoding="utf-8")
    assert backfill.token not in html
    text = re.sub(r"<[^>]*>", " ", html)  # what a reader sees (SVG coordinates left out)
    ids = {str(e["contactId"]) for e in backfill.accepted if len(str(e.get("contactId", ""))) >= 5}
    assert ids and not [i for i in ids if re.search(rf"\b{i}\b", text)]
    assert "<script" not in html.lower()
    assert os.stat(backfill.page).st_mode & 0o077 == 0


def test_report_command_and_its_errors(backfill: Backfill, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.html"
    assert main(["report", "--state-dir", str(backfill.state), "-o", str(out)]) == 0
    assert f"Report: {out}" in capsys.readouterr().out
    assert out.read_text(encoding="utf-8").count('<figure class="chart"') == len(CHARTS)
    assert main(["report", "--state-dir", str(tmp_path / "none"), "-o", str(out)]) == 2
    assert "no journal" in capsys.readouterr().err


def test_a_state_directory_from_before_the_report_still_gives_a_page(tmp_path: Path) -> None:
    from importer.state.journal import SCHEMA

    (tmp_path / "state").mkdir()
    db = sqlite3.connect(tmp_path / "state" / "journal.sqlite")
    db.executescript(SCHEMA)
    db.execute("INSERT INTO events(k1, k2, status) VALUES (1, 1, 'sent')")
    db.commit()
    db.close()
    out = tmp_path / "r.html"
    assert main(["report", "--state-dir", str(tmp_path / "state"), "-o", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert 'data-empty="sending"' in html and 'data-chart="progress"' in html


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    return found


CHART_MARKS = """() => Array.from(document.querySelectorAll('figure.chart')).map(f => {
  const marks = Array.from(f.querySelectorAll('svg [id^="data-"]'));
  const drawn = marks.filter(m => { const r = m.getBoundingClientRect(); return r.width > 0 && r.height > 0; });
  const box = f.querySelector('svg').getBoundingClientRect();
  return {key: f.dataset.chart, marks: marks.length, drawn: drawn.length, width: box.width, height: box.height,
          patterns: f.querySelectorAll('svg pattern').length};
})"""


def test_the_page_renders_in_chromium_without_errors(backfill: Backfill, tmp_path: Path) -> None:
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=executable, headless=True, args=FLAGS,
            viewport={"width": 1100, "height": 900},
        )  # fmt: skip
        try:
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(backfill.page.as_uri())
            charts = page.evaluate(CHART_MARKS)
            sent_card = page.inner_text('[data-card="Sent"] .v')
            days_card = page.inner_text('[data-card="Days left at the daily quota"] .v')
            runs = page.locator("#runs-table tbody tr").count()
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
            if os.environ.get("REPORT_SCREENSHOT"):  # for the README's picture
                page.screenshot(path=os.environ["REPORT_SCREENSHOT"], full_page=True)
            page.emulate_media(media="print")
            printed_details = page.evaluate("getComputedStyle(document.querySelector('details')).display")
        finally:
            context.close()
    assert errors == []
    assert requests == [backfill.page.as_uri()]  # the page itself and nothing else
    assert {c["key"] for c in charts} == CHARTS
    for chart in charts:
        assert chart["drawn"] >= 1, chart
        assert chart["width"] > 300 and chart["height"] > 50, chart
    assert all(c["patterns"] for c in charts if c["key"] in ("progress", "days", "reasons"))  # not colour alone
    assert sent_card == number(len(backfill.accepted))
    days = _days_left(backfill, backfill.page.stat().st_mtime)  # as of when the run wrote the page
    assert days_card == f"{days} day{'s' if days != 1 else ''}"
    assert runs == 2
    assert printed_details == "none"
    assert (tmp_path / "report.png").stat().st_size > 10_000
