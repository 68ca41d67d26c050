"""``python -m importer run`` as a child process: kill -9, SIGINT / SIGTERM, and secrets."""

from __future__ import annotations

import json
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from importer.simulator import Simulator

from .conftest import Child, run_args
from .helpers import Input, accepted, all_bytes_under, assert_exactly_once, summary_of

Spawn = Callable[..., Child]
MakeSim = Callable[..., Simulator]


def _wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def test_kill_9_at_random_moments_loses_nothing_and_duplicates_at_most_the_in_flight(
    tmp_path: Path, spawn: Spawn, make_simulator: MakeSim
) -> None:
    data = Input(tmp_path / "plays.csv", 960, seed=31)  # about 1,500 events
    assert len(data.valid) >= 1400
    sim = make_simulator(burst=0, latency_ms=2)
    env = {"HUBSPOT_ACCESS_TOKEN": sim.token}
    state = tmp_path / "state"
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    concurrency, kills = 8, 3
    for n in range(kills):
        # 500/s: about three seconds of sending, so most kills land while requests are in flight.
        args = run_args(
            sim.url, [data.path], tmp_path / f"killed-{n}.csv", state, "--concurrency", concurrency, rate="500/1s"
        )
        child = spawn(args, env, f"killed-{n}")
        time.sleep(rng.uniform(0.5, 3.0))
        child.proc.send_signal(signal.SIGKILL)
        child.wait()
    final = spawn(run_args(sim.url, [data.path], tmp_path / "final.csv", state), env, "final")
    assert final.wait(120) == 0, f"seed {seed}: {final.stdout}{final.stderr}"
    counts = accepted(sim)
    assert set(counts) == data.valid, f"seed {seed}"
    duplicates = sum(n - 1 for n in counts.values())
    assert duplicates <= concurrency * kills, f"seed {seed}: {duplicates} duplicates"
    assert summary_of(tmp_path / "final.csv")["exit_code"] == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_run_resumably_and_the_rerun_completes_exactly_once(
    tmp_path: Path, spawn: Spawn, make_simulator: MakeSim, sig: signal.Signals
) -> None:
    data = Input(tmp_path / "plays.csv", 400, seed=32)
    sim = make_simulator(burst=0)
    env = {"HUBSPOT_ACCESS_TOKEN": sim.token}
    state = tmp_path / "state"
    results = tmp_path / "stopped.csv"
    child = spawn(run_args(sim.url, [data.path], results, state, rate="200/1s"), env, "stopped")
    _wait_for(lambda: sim.client.stats()["accepted_events"] >= 50)
    child.proc.send_signal(sig)
    child.wait(60)
    summary = summary_of(results)
    assert summary["stopped"] == f"interrupted by {sig.name}"
    assert summary["counts"]["sent"] == sim.client.stats()["accepted_events"]
    assert 0 < summary["counts"]["sent"] < len(data.valid)
    assert summary["counts"]["failed"] == 0

    rerun = spawn(run_args(sim.url, [data.path], tmp_path / "rerun.csv", state), env, "rerun")
    assert rerun.wait(60) == 0, rerun.stdout + rerun.stderr
    assert_exactly_once(accepted(sim), data.valid)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_exits_3(tmp_path: Path, spawn: Spawn, make_simulator: MakeSim, sig: signal.Signals) -> None:
    data = Input(tmp_path / "plays.csv", 400, seed=33)
    sim = make_simulator(burst=0)
    results = tmp_path / "stopped.csv"
    child = spawn(
        run_args(sim.url, [data.path], results, tmp_path / "state", rate="200/1s"), {"HUBSPOT_ACCESS_TOKEN": sim.token}
    )
    _wait_for(lambda: sim.client.stats()["accepted_events"] >= 50)
    child.proc.send_signal(sig)
    code = child.wait(60)
    assert "internal error" not in child.stderr
    assert code == 3
    assert f"interrupted by {sig.name}" in child.stdout
    assert summary_of(results)["exit_code"] == 3


# ---- secrets ---------------------------------------------------------------------------------

SENTINEL = "pat-na1-SENTINEL-7f3c2b9e-4d1a-4c8e-9f00-5e6d7c8b9a10"
CLIENT_SECRET = "SENTINEL-client-secret-0b1c2d3e4f"
REFRESH_TOKEN = "SENTINEL-refresh-token-9a8b7c6d5e"


def _assert_nowhere(root: Path, *secrets: str) -> int:
    """No byte of any file under ``root`` holds a secret (nor a simulator-issued access token)."""
    needles = [s.encode() for s in secrets] + [b"sim-oauth-"]
    files = 0
    for path, data in all_bytes_under(root):
        files += 1
        for needle in needles:
            assert needle not in data, f"{needle!r} found in {path.relative_to(root)}"
    return files


def _files_written(tmp_path: Path) -> set[str]:
    return {p.name for p in tmp_path.rglob("*") if p.is_file()}


def test_a_private_app_token_never_appears_in_anything_written(
    tmp_path: Path, spawn: Spawn, make_simulator: MakeSim
) -> None:
    data = Input(tmp_path / "plays.csv", 150, seed=34, invalid_every=19)
    sim = make_simulator(burst=0, tokens={SENTINEL: None}, error_rate=0.3, drop_rate=0.05, seed=3)
    env = {"HUBSPOT_ACCESS_TOKEN": SENTINEL}
    state = tmp_path / "state"
    log = tmp_path / "run.log"
    args = run_args(sim.url, [data.path], tmp_path / "results.csv", state, "--debug", "--results-all",
                    "--max-attempts", "1", "--log-file", log)  # fmt: skip
    run = spawn(args, env, "run")
    assert run.wait(60) == 1
    assert summary_of(tmp_path / "results.csv")["counts"]["failed"] > 0
    sim.client.configure(error_rate=0.0, drop_rate=0.0)
    retry_args = ["retry", str(tmp_path / "results.csv"), "--results", str(tmp_path / "retry.csv"), "--base-url",
                  sim.url, "--state-dir", str(state), "--rate", "none", "--debug", "--log-file", str(log)]  # fmt: skip
    retry = spawn(retry_args, env, "retry")
    assert retry.wait(60) in (0, 1)
    status = spawn(["status", "--state-dir", str(state), "--json"], env, "status")
    assert status.wait(60) == 0
    written = _files_written(tmp_path)
    assert {"run.stdout", "run.stderr", "results.csv", "results.csv.summary.json", "retry.csv", "run.log"} <= written
    assert "journal.sqlite" in written
    assert _assert_nowhere(tmp_path, SENTINEL, SENTINEL[8:]) >= 10


def test_a_wrong_token_never_appears_in_anything_written(tmp_path: Path, spawn: Spawn, make_simulator: MakeSim) -> None:
    data = Input(tmp_path / "plays.csv", 60, seed=35)
    sim = make_simulator(burst=0)
    log = tmp_path / "run.log"
    args = run_args(sim.url, [data.path], tmp_path / "results.csv", tmp_path / "state", "--debug", "--log-file", log)
    run = spawn(args, {"HUBSPOT_ACCESS_TOKEN": SENTINEL}, "run")
    assert run.wait(60) == 3
    assert sim.client.stats()["by_status"]["401"] >= 1
    assert "401" in summary_of(tmp_path / "results.csv")["stopped"]
    _assert_nowhere(tmp_path, SENTINEL, SENTINEL[8:])


def test_a_token_file_is_read_and_never_copied(tmp_path: Path, spawn: Spawn, make_simulator: MakeSim) -> None:
    data = Input(tmp_path / "plays.csv", 30, seed=36)
    sim = make_simulator(burst=0, tokens={SENTINEL: None})
    secret_dir = tmp_path / "secret"
    secret_dir.mkdir()
    (secret_dir / "token").write_text(SENTINEL + "\n")
    out = tmp_path / "out"
    args = run_args(
        sim.url, [data.path], out / "results.csv", out / "state", "--token-file", secret_dir / "token", "--debug"
    )
    run = spawn(args, {}, "run")
    assert run.wait(60) == 0, run.stderr
    assert_exactly_once(accepted(sim), data.valid)
    _assert_nowhere(out, SENTINEL)
    assert SENTINEL not in run.stdout + run.stderr


@pytest.mark.parametrize("secret_ok", [True, False], ids=["refreshing", "wrong-secret"])
def test_oauth_secrets_never_appear_in_anything_written(
    tmp_path: Path, spawn: Spawn, make_simulator: MakeSim, secret_ok: bool
) -> None:
    data = Input(tmp_path / "plays.csv", 100, seed=37)
    sim = make_simulator(
        burst=100,
        window_ms=1000,
        client_id="client-7",
        client_secret=CLIENT_SECRET,
        refresh_token=REFRESH_TOKEN,
        token_ttl_s=0.6,
        error_rate=0.05,
        seed=4,
    )
    env: dict[str, Any] = {
        "HUBSPOT_CLIENT_ID": "client-7",
        "HUBSPOT_CLIENT_SECRET": CLIENT_SECRET if secret_ok else CLIENT_SECRET + "-wrong",
        "HUBSPOT_REFRESH_TOKEN": REFRESH_TOKEN,
    }
    log = tmp_path / "run.log"
    args = run_args(sim.url, [data.path], tmp_path / "results.csv", tmp_path / "state", "--debug",
                    "--results-all", "--log-file", log, rate="100/1s")  # fmt: skip
    run = spawn(args, env, "run")
    code = run.wait(60)
    if secret_ok:
        assert code == 0, run.stdout + run.stderr
        assert summary_of(tmp_path / "results.csv")["oauth_refreshes"] >= 2
    else:
        assert code == 3
        assert "OAuth refresh failed" in summary_of(tmp_path / "results.csv")["stopped"]
    _assert_nowhere(tmp_path, CLIENT_SECRET, REFRESH_TOKEN)
    summary = json.loads((tmp_path / "results.csv.summary.json").read_text())
    assert summary["counts"]["failed"] == 0
