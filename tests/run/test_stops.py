"""No hang, ever: every way a run can stop ends it within the grace period, with the right exit code,
the results and summary written and the lock released. Each case runs ``media-import`` as a child
process under a watchdog timeout, so a hang fails the test instead of blocking the suite."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import ENV_NAMES, GENERIC_MAPPING, REPO, generator, seed_sample_media

from importer.simulator import Simulator

FAULTY = Path(__file__).with_name("faulty.py")
WATCHDOG_S = 60.0  # far above the 30 s grace: reaching it means the run hung
GRACE_S = 30.0


class Child:
    """``media-import run`` (with a fault injected) in a child process of its own."""

    def __init__(
        self, tmp: Path, sim: Simulator, inputs: list[Path], fault: str = "none", *extra: str, quiet: bool = True
    ) -> None:
        self.results = tmp / "results.csv"
        self.state = tmp / "state"
        self.err_path = tmp / "stderr.txt"
        env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
        env.update(HUBSPOT_ACCESS_TOKEN=sim.token, PYTHONPATH=f"{REPO}{os.pathsep}{REPO / 'tests'}")
        args = ["run", *map(str, inputs), "-m", str(GENERIC_MAPPING), "--results", str(self.results),
                "--state-dir", str(self.state), "--base-url", sim.url, "--rate", "none", *extra]  # fmt: skip
        if quiet:
            args.append("-q")
        self._err = open(self.err_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, str(FAULTY), fault, *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._err,
            start_new_session=True,  # a signal to it is not a signal to pytest
        )
        self.started = time.monotonic()

    def wait(self, timeout: float = WATCHDOG_S) -> int:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"the run hung: still running after {timeout:g} s\n{self.stderr}")
        finally:
            self._err.close()
        return self.proc.returncode

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")

    @property
    def summary(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(Path(f"{self.results}.summary.json").read_text(encoding="utf-8"))
        return data

    def lock_is_free(self) -> bool:
        fd = os.open(self.state / "lock", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False
        finally:
            os.close(fd)


def _csv(path: Path, rows: int, seed: int, prefix: str) -> Path:
    generator().write(generator().canonical(rows, seed=seed, invalid_every=0, prefix=prefix), path)
    return path


def _truncated_gz(path: Path, rows: int) -> Path:
    whole = path.with_name("whole.csv.gz")
    generator().write(generator().canonical(rows, seed=99, invalid_every=0, prefix="z"), whole)
    data = whole.read_bytes()
    whole.unlink()
    path.write_bytes(data[: len(data) // 2])
    return path


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.02)


def _events_only(tmp_path: Path, sim: Simulator) -> Path:
    """The generic mapping without its media: section, the samples' media already in the account: these
    tests stop runs in the middle of sending events, which a media sync first would come before."""
    seed_sample_media(sim)
    text = GENERIC_MAPPING.read_text(encoding="utf-8")
    mapping = tmp_path / "events-only.yaml"
    mapping.write_text(text[: text.index("\n# Media objects")] + "\n", encoding="utf-8")
    return mapping


@pytest.mark.parametrize("batch_rows", [None, 100])
def test_a_truncated_gz_after_a_good_file_stops_with_3_naming_it(
    tmp_path: Path, make_simulator: Callable[..., Simulator], batch_rows: int | None
) -> None:
    sim = make_simulator(burst=0)
    folder = tmp_path / "in"
    _csv(folder / "a-good.csv", 400, seed=1, prefix="a")
    _truncated_gz(folder / "b-broken.csv.gz", 4000)
    mapping_extra = ["-m", str(_events_only(tmp_path, sim))]
    if batch_rows:
        mapping = tmp_path / "mapping.yaml"
        text = Path(mapping_extra[1]).read_text(encoding="utf-8")
        assert "\ninput:" not in text
        mapping.write_text(f"{text}\ninput:\n  batch_rows: {batch_rows}\n", encoding="utf-8")
        mapping_extra = ["-m", str(mapping)]
    child = Child(tmp_path, sim, [folder], "none", *mapping_extra)
    code = child.wait()
    assert code == 3, child.stderr
    s = child.summary
    assert s["exit_code"] == 3
    assert s["counts"]["sent"] > 0
    assert "b-broken.csv.gz" in s["stopped"]
    assert "input error after sending started" in s["stopped"]
    assert child.lock_is_free()
    assert sim.client.stats()["accepted_events"] == s["counts"]["sent"]


def test_a_broken_first_file_exits_2_with_nothing_sent_and_a_summary(
    tmp_path: Path, make_simulator: Callable[..., Simulator]
) -> None:
    sim = make_simulator(burst=0)
    folder = tmp_path / "in"
    _truncated_gz(folder / "a-broken.csv.gz", 4000)
    child = Child(tmp_path, sim, [folder])
    assert child.wait() == 2, child.stderr
    assert sim.client.stats()["accepted_events"] == 0
    assert child.summary["exit_code"] == 2
    assert child.summary["counts"]["sent"] == 0
    assert "a-broken.csv.gz" in child.summary["stopped"]
    assert child.lock_is_free()


@pytest.mark.parametrize("fault", ["journal-full:150", "results-full:1", "worker-crash:100"])
# results-full:1: the invalid rows are written, then the first 1,000 outcomes (--results-all) are not
def test_a_full_disk_or_a_crash_stops_the_run_with_its_summary(
    tmp_path: Path, make_simulator: Callable[..., Simulator], fault: str
) -> None:
    sim = make_simulator(burst=0)
    # Invalid rows make the results file written while reading, as well as at the end.
    table = generator().canonical(600, seed=3, invalid_every=7, prefix="d")
    generator().write(table, tmp_path / "plays.csv")
    child = Child(tmp_path, sim, [tmp_path / "plays.csv"], fault, "--results-all")
    code = child.wait()
    elapsed = time.monotonic() - child.started
    assert code == 3, child.stderr
    assert elapsed < GRACE_S
    s = child.summary
    assert s["exit_code"] == 3
    assert s["counts"]["sent"] > 0
    expected = {"journal-full": "cannot write the journal", "results-full": "cannot write the results file",
                "worker-crash": "internal error while sending"}[fault.split(":")[0]]  # fmt: skip
    assert expected in s["stopped"]
    assert "Traceback" not in child.stderr
    assert child.lock_is_free()


@pytest.mark.parametrize("quiet", [False, True])  # --quiet hides warnings, not what a stop waits for
def test_sigterm_stops_within_the_grace_with_3_and_a_second_signal_at_once(
    tmp_path: Path, make_simulator: Callable[..., Simulator], quiet: bool
) -> None:
    sim = make_simulator(burst=0, latency_ms=5)
    _csv(tmp_path / "plays.csv", 3000, seed=4, prefix="t")
    child = Child(tmp_path, sim, [tmp_path / "plays.csv"], quiet=quiet)
    _wait_for(lambda: sim.client.stats()["accepted_events"] > 20, "the run sent its first events")
    child.proc.send_signal(signal.SIGTERM)
    code = child.wait()
    assert code == 3, child.stderr
    assert "stopping: waiting for" in child.stderr
    assert "(at most 30 s)" in child.stderr
    s = child.summary
    assert s["exit_code"] == 3
    assert s["stopped"] == "interrupted by SIGTERM"
    assert s["counts"]["sent"] == sim.client.stats()["accepted_events"]
    assert s["counts"]["not_sent"] > 0
    assert child.lock_is_free()


def test_a_second_ctrl_c_stops_at_once_and_counts_in_flight_as_possibly_sent(
    tmp_path: Path, make_simulator: Callable[..., Simulator]
) -> None:
    sim = make_simulator(burst=0, latency_ms=20_000)  # every answer far slower than the test waits
    _csv(tmp_path / "plays.csv", 200, seed=5, prefix="c")
    mapping = _events_only(tmp_path, sim)
    child = Child(
        tmp_path, sim, [tmp_path / "plays.csv"], "none", "--concurrency", "4", "-m", str(mapping), quiet=False
    )
    _wait_for(lambda: sim.client.stats()["requests_total"] >= 4, "four requests in flight")
    child.proc.send_signal(signal.SIGINT)
    _wait_for(lambda: "stopping: waiting for 4 requests in flight" in child.stderr, "the first stop's message")
    time.sleep(0.6)  # past the half second in which a repeated signal counts once
    child.proc.send_signal(signal.SIGINT)
    code = child.wait(timeout=15)
    assert code == 3, child.stderr
    assert time.monotonic() - child.started < GRACE_S
    s = child.summary
    assert s["counts"]["possibly_sent"] == 4
    assert s["counts"]["sent"] == 0
    assert child.lock_is_free()


def test_workers_that_ignore_cancellation_do_not_hold_the_stop(
    tmp_path: Path, make_simulator: Callable[..., Simulator]
) -> None:
    sim = make_simulator(burst=0)
    _csv(tmp_path / "plays.csv", 50, seed=7, prefix="w")
    child = Child(tmp_path, sim, [tmp_path / "plays.csv"], "deaf-worker:3600", "--concurrency", "4", quiet=False)
    _wait_for(lambda: child.stderr.count("a deaf send started") >= 4, "four sends in flight")
    child.proc.send_signal(signal.SIGTERM)
    time.sleep(0.6)
    child.proc.send_signal(signal.SIGTERM)  # stop now: the workers are cancelled, and ignore it
    code = child.wait(timeout=20)
    assert code == 3, child.stderr
    s = child.summary
    assert s["counts"]["possibly_sent"] == 4  # given up on, not waited for
    assert "Task was destroyed" not in child.stderr
    assert child.lock_is_free()


def test_sigterm_before_sending_starts_stops_cleanly_with_3(
    tmp_path: Path, make_simulator: Callable[..., Simulator]
) -> None:
    sim = make_simulator(burst=0)
    _csv(tmp_path / "plays.csv", 20, seed=8, prefix="s")
    child = Child(tmp_path, sim, [tmp_path / "plays.csv"], "slow-start")
    _wait_for(lambda: "reading the headers" in child.stderr, "the run to read the headers")
    child.proc.send_signal(signal.SIGTERM)
    assert child.wait(timeout=20) == 3, child.stderr
    assert child.summary["exit_code"] == 3
    assert child.summary["counts"]["sent"] == 0
    assert child.lock_is_free()
