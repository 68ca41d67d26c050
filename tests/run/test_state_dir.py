"""Honest state: a lost or corrupt journal is refused with a message (never a silent re-send, never
"internal error"); files are private and never written through a link; the summary is written for
every exit code, and it and the results file point at what earlier runs left; ``status`` shows a
killed run; a header-only file in a nightly folder is 0 rows and a warning; tokens never echo."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support import ENV_NAMES, GENERIC_MAPPING, REPO, Cli, generator, summary_of

from importer.simulator import Simulator
from importer.state.results import read_results

TOKEN = "pat-na1-11111111-2222-4333-8444-runstatesecret"


def _plays(path: Path, rows: int, seed: int, prefix: str, invalid_every: int = 0) -> Path:
    generator().write(generator().canonical(rows, seed=seed, invalid_every=invalid_every, prefix=prefix), path)
    return path


def _run(cli: Cli, sim: Simulator, *inputs: Path, results: Path, extra: tuple[str, ...] = ()) -> tuple[int, str, str]:
    cli.token(sim.token)
    code, out, err = cli("run", *inputs, "-m", GENERIC_MAPPING, "--results", results, "--state-dir", cli.state,
                         "--base-url", sim.url, "--rate", "none", *extra)  # fmt: skip
    return code, out, err


@pytest.mark.parametrize("damage", ["deleted", "emptied", "garbled"])
def test_a_lost_journal_is_refused_and_nothing_is_sent(
    tmp_path: Path, cli: Cli, make_simulator: Callable[..., Simulator], damage: str
) -> None:
    sim = make_simulator(burst=0)
    data = _plays(tmp_path / "plays.csv", 30, seed=1, prefix="j")
    assert _run(cli, sim, data, results=tmp_path / "r1.csv")[0] == 0
    sent = sim.client.stats()["accepted_events"]
    journal = cli.state / "journal.sqlite"
    for extra in ("-wal", "-shm"):
        Path(f"{journal}{extra}").unlink(missing_ok=True)
    if damage == "deleted":
        journal.unlink()
    elif damage == "emptied":
        journal.write_bytes(b"")
    else:
        journal.write_bytes(b"this is not a database" * 100)
    (tmp_path / "more.csv").write_bytes(data.read_bytes())  # the same events again, under a new name
    code, _, err = _run(cli, sim, tmp_path / "more.csv", results=tmp_path / "r2.csv")
    assert code == 2, err
    assert sim.client.stats()["accepted_events"] == sent  # nothing sent again
    assert str(journal) in err
    assert "internal error" not in err
    assert "-wal" in err  # the recovery: restore the journal with its -wal file
    if damage != "garbled":
        assert "run history" in err
    assert summary_of(tmp_path / "r2.csv")["exit_code"] == 2
    code, _, err = cli("status", "--state-dir", cli.state, check=True)
    assert code == 2 and str(journal) in err


def test_state_results_summary_and_log_files_are_private(
    tmp_path: Path, cli: Cli, make_simulator: Callable[..., Simulator]
) -> None:
    sim = make_simulator(burst=0)
    os.umask(0)
    try:
        data = _plays(tmp_path / "plays.csv", 10, seed=2, prefix="p")
        log = tmp_path / "run.log"
        code, _, err = _run(cli, sim, data, results=tmp_path / "r.csv", extra=("--log-file", str(log)))
    finally:
        os.umask(0o022)
    assert code == 0, err
    for path in (cli.state / "journal.sqlite", tmp_path / "r.csv", tmp_path / "r.csv.summary.json", log):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


@pytest.mark.parametrize("option", ["--results", "--log-file"])
def test_a_symbolic_link_is_never_followed(
    tmp_path: Path, cli: Cli, make_simulator: Callable[..., Simulator], option: str
) -> None:
    sim = make_simulator(burst=0)
    data = _plays(tmp_path / "plays.csv", 5, seed=3, prefix="l")
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    extra = ("--log-file", str(link)) if option == "--log-file" else ()
    results = link if option == "--results" else tmp_path / "r.csv"
    code, _, err = _run(cli, sim, data, results=results, extra=extra)
    assert code == 2
    assert "symbolic link" in err
    assert target.read_text() == "keep me"
    assert sim.client.stats()["accepted_events"] == 0


def test_every_exit_code_writes_the_summary_and_a_rerun_points_at_earlier_failures(
    tmp_path: Path, cli: Cli, make_simulator: Callable[..., Simulator]
) -> None:
    sim = make_simulator(burst=0)
    data = _plays(tmp_path / "plays.csv", 40, seed=4, prefix="e", invalid_every=5)
    first = tmp_path / "r1.csv"
    assert _run(cli, sim, data, results=first)[0] == 1
    invalid = summary_of(first)["counts"]["invalid"]
    assert invalid > 0
    # A mapping error: exit 2, and the summary says so (not the exit code of the run before).
    second = tmp_path / "r2.csv"
    Path(f"{second}.summary.json").write_text('{"exit_code": 0}')
    code, _, _ = cli("run", data, "-m", tmp_path / "nope.yaml", "--results", second, "--state-dir", cli.state,
                     "--base-url", sim.url, check=True)  # fmt: skip
    assert code == 2
    assert summary_of(second)["exit_code"] == 2
    # A rerun reads nothing new (the file was imported) and sends nothing, yet points at run #1.
    third = tmp_path / "r3.csv"
    assert _run(cli, sim, data, results=third)[0] == 0
    s = summary_of(third)
    assert s["counts"]["sent"] == 0
    assert s["outstanding"]["earlier_runs"] == [{"run": 1, "results": str(first), "invalid": invalid, "failed": 0}]
    # Its results file points at them too: one row per file, reason and field, naming run #1's file.
    assert s["outstanding"]["listed_in_results"] == {"invalid": invalid}
    rows = read_results(third).to_pylist()
    assert rows and {r["status"] for r in rows} == {"invalid"}
    assert {r["source_file"] for r in rows} == {str(data)}
    assert sum(int(r["error"].split(" ")[0].replace(",", "")) for r in rows) == invalid
    assert all(f"found by run #1; each row is listed in {first}" in r["error"] for r in rows)
    assert s["counts"]["invalid"] == 0  # the run's own counts stay its own


def test_a_header_only_file_in_a_nightly_folder_is_0_rows_and_a_warning(
    tmp_path: Path, cli: Cli, make_simulator: Callable[..., Simulator]
) -> None:
    sim = make_simulator(burst=0)
    folder = tmp_path / "night"
    _plays(folder / "a.csv", 10, seed=5, prefix="h")
    (folder / "b.csv").write_text((folder / "a.csv").read_text().splitlines()[0] + "\n")
    code, _, err = _run(cli, sim, folder, results=tmp_path / "r.csv")
    assert code == 0, err
    assert f"{folder / 'b.csv'}: has a header but no data rows: read as 0 rows" in err
    assert sim.client.stats()["accepted_events"] > 0


def test_status_shows_a_killed_run_with_what_it_sent(
    tmp_path: Path, cli: Cli, make_simulator: Callable[..., Simulator]
) -> None:
    sim = make_simulator(burst=0, latency_ms=10)
    data = _plays(tmp_path / "plays.csv", 2000, seed=6, prefix="k")
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    env.update(HUBSPOT_ACCESS_TOKEN=sim.token, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "importer", "run", str(data), "-m", str(GENERIC_MAPPING), "--results",
         str(tmp_path / "r.csv"), "--state-dir", str(cli.state), "--base-url", sim.url, "--rate", "none", "-q"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while sim.client.stats()["accepted_events"] < 50:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    sent = sim.client.stats()["accepted_events"]
    code, out, _ = cli("status", "--state-dir", cli.state)
    assert code == 0
    line = out.splitlines()[1]
    assert "killed" in line
    recorded = int(line.split("sent ")[1].split(",")[0].replace(",", ""))
    assert sent - 16 <= recorded <= sent  # at most the requests in flight were not recorded


def test_a_token_given_as_a_path_is_never_echoed(tmp_path: Path, cli: Cli) -> None:
    code, out, err = cli("run", tmp_path / "x.csv", "-m", GENERIC_MAPPING, "--results", tmp_path / "r.csv",
                         "--token-file", TOKEN, "--state-dir", cli.state, "--log-file", tmp_path / "log")  # fmt: skip
    assert code == 2
    assert TOKEN not in out + err
    assert TOKEN not in (tmp_path / "log").read_text()
    assert TOKEN not in (tmp_path / "r.csv.summary.json").read_text()
