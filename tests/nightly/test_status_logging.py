"""For schedulers and people: ``status`` (text and JSON), ``--log-file`` / ``--log-format json``
without the token, and ``--quiet`` (no progress, only errors on stderr)."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from support import Cli

from importer.cli.main import main

from .conftest import Nights
from .helpers import canonical, expected, write

TOKEN = "pat-na1-11111111-2222-4333-8444-nightlysecret"


def test_status_shows_runs_totals_pending_and_quota(night: Nights, cli: Cli) -> None:
    a = canonical(15, seed=91, prefix="a")
    write(a, night.inputs / "2026-11-01-a.csv")
    n = len(expected(a))
    night.media_sync()  # the media objects exist: the quota below counts events only
    night.sim.client.reset()
    night.sim.client.configure(daily=10_000, error_rate=1.0, seed=3)
    assert night.run("--max-attempts", "1").code == 1

    r = cli("status", "--state-dir", night.state, "--json")
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert [run["exit_code"] for run in report["runs"]] == [1]
    assert report["pending"] == {"failed_transient": n}

    night.sim.client.configure(error_rate=0.0)
    assert night.run().code == 0

    r = cli("status", "--state-dir", night.state, "--json")
    assert r.code == 0, r.err
    report = json.loads(r.out)
    runs = report["runs"]
    assert [run["exit_code"] for run in runs] == [0, 1]  # newest first
    assert all(run["finished_at"] >= run["started_at"] for run in runs)
    assert runs[0]["summary"]["counts"]["sent"] == n
    assert runs[0]["summary"]["leftovers_redriven"] == n
    assert runs[1]["summary"]["counts"]["failed"] == n
    assert report["events"] == {"sent": n}
    assert report["pending"] == {}
    assert report["quota"]["daily"] == 10_000
    assert report["quota"]["remaining"] == 10_000 - 2 * n  # n failed requests, then n sent

    r = cli("status", "--state-dir", night.state)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0] == f"State directory {night.state}"
    assert "#2" in lines[1] and "exit 0" in lines[1] and f"sent {n}" in lines[1]
    assert "#1" in lines[2] and "exit 1" in lines[2] and f"failed {n}" in lines[2]
    assert f"Events in the journal: sent {n}" in r.out
    assert "Pending: nothing" in r.out
    assert f"Daily quota at the last run's end: {10_000 - 2 * n:,} of 10,000 left" in r.out


def test_status_of_a_state_dir_without_a_journal(cli: Cli, tmp_path: Path) -> None:
    r = cli("status", "--state-dir", f"{tmp_path}/nowhere")
    assert r.code == 2
    assert "no journal in" in r.err


def test_log_file_json_lines_without_the_token(night: Nights, monkeypatch: pytest.MonkeyPatch) -> None:
    night.sim.client.configure(tokens={TOKEN: None})
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    write(canonical(10, seed=92, prefix="a"), night.inputs / "2026-11-01-a.csv")
    log = night.root / "logs" / "media-import.jsonl"
    assert night.run("--quiet", "--log-file", log, "--log-format", "json").code == 0
    # A second night appends; this one fails on its input.
    r = night.run("--quiet", "--log-file", log, "--log-format", "json", inputs=night.root / "missing")
    assert r.code == 2

    text = log.read_text(encoding="utf-8")
    assert TOKEN not in text
    entries = [json.loads(line) for line in text.splitlines()]
    assert all(set(e) == {"time", "level", "message"} for e in entries)
    messages = [(e["level"], e["message"]) for e in entries]
    assert any(level == "info" and m.startswith("run started: run ") for level, m in messages)
    finished = [m for _, m in messages if m.startswith("run finished with exit code 0: ")]
    assert len(finished) == 1
    assert json.loads(finished[0].split(": ", 1)[1])["counts"]["sent"] > 0
    assert any(level == "error" and "no such file or folder" in m for level, m in messages)


def test_log_file_text_format(night: Nights) -> None:
    write(canonical(3, seed=93, prefix="a"), night.inputs / "2026-11-01-a.csv")
    log = night.root / "media-import.log"
    assert night.run("--quiet", "--log-file", log).code == 0
    lines = log.read_text(encoding="utf-8").splitlines()
    assert any(" INFO run started: " in line for line in lines)
    assert not any(line.startswith("{") for line in lines)


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal, so a progress bar would be drawn on it."""

    def isatty(self) -> bool:
        return True


def _run_on_terminal(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    terminal = _Terminal()
    with monkeypatch.context() as m:
        m.setattr(sys, "stderr", terminal)
        code = main(argv)
    return code, terminal.getvalue()


def test_quiet_prints_no_progress_and_only_errors(
    night: Nights, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write(canonical(300, seed=94, prefix="a"), night.inputs / "2026-11-01-a.csv")
    night.sim.client.configure(latency_ms=2)
    # Without --quiet, on a terminal: a progress bar, and the warning about the missing watermark.
    code, err = _run_on_terminal(night.command("--since", "last", "--concurrency", "2"), monkeypatch)
    assert code == 0
    assert "events" in err and "\r" in err
    assert "warning" in err.lower()

    # With --quiet: the same kind of night (a new file, no watermark yet) leaves stderr empty...
    write(canonical(300, seed=95, prefix="b"), night.root / "other" / "2026-11-02-b.csv")
    other = night.command("--since", "last", "--concurrency", "2", "--quiet", inputs=night.root / "other")
    other[other.index("--state-dir") + 1] = str(night.root / "state-2")
    code, err = _run_on_terminal(other, monkeypatch)
    assert code == 0
    assert err == ""
    out = capsys.readouterr().out
    assert "Sent " in out  # the summary still goes to stdout

    # ...and an error still shows.
    code, err = _run_on_terminal(night.command("--quiet", inputs=night.root / "missing"), monkeypatch)
    assert code == 2
    assert err.startswith("media-import: error: ")
    assert all(line.startswith(("media-import: error:", "  hint:")) for line in err.splitlines())
