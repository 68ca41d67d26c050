"""One run per state directory: a second run exits 4 at once with a clear message; the lock is an
``flock`` that the operating system releases when its process dies, taken over with a warning."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import Nights
from .helpers import assert_received_once, canonical, expected, generator, write

MEDIA_IMPORT = Path(sys.executable).with_name("media-import")


def _start_slow_run(night: Nights) -> subprocess.Popen[str]:
    """A first run in another process, against a simulator slowed down enough to still be running
    while the test starts a second one; returns once that run holds the lock."""
    night.sim.client.configure(latency_ms=40)
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": night.sim.token}
    cmd = night.command("--concurrency", "1", "--quiet")
    first = subprocess.Popen(
        [str(MEDIA_IMPORT), *cmd], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lock = night.state / "lock"
    deadline = time.monotonic() + 30
    while not (lock.exists() and lock.read_text().strip() == str(first.pid)):
        if first.poll() is not None or time.monotonic() > deadline:
            first.kill()
            out, err = first.communicate()
            pytest.fail(f"the first run never held the lock (exit {first.returncode}): {out}{err}")
        time.sleep(0.02)
    return first


def _lock_is_free(state: Path) -> bool:
    """Nobody holds the flock and the owner emptied the file on its way out."""
    fd = os.open(state / "lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)
    return (state / "lock").read_text() == ""


def _finish(first: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = first.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        first.kill()
        raise
    return first.returncode, out, err


def test_a_second_run_exits_4_while_the_first_holds_the_lock(night: Nights) -> None:
    a = canonical(40, seed=51, prefix="a")  # ~65 events at 40 ms, one at a time: ~3 s of sending
    write(a, night.inputs / "2026-11-01-a.csv")
    first = _start_slow_run(night)
    try:
        second = night.run("--quiet")
        # At once: the second run is refused while the first is still sending.
        assert first.poll() is None, "the first run ended before the second was done: slow it down"
    finally:
        code, _out, err = _finish(first)
    assert second.code == 4
    assert second.out == ""
    assert f"another media-import run (pid {first.pid}) is using the state directory" in second.err
    assert str(night.state) in second.err
    assert "hint:" in second.err
    # The first run was not disturbed: everything sent once, lock released.
    assert code == 0, err
    assert_received_once(night.sim, expected(a))
    assert _lock_is_free(night.state)


def test_a_refused_second_run_leaves_the_running_runs_results_alone(night: Nights) -> None:
    # One row in five is invalid: the first run writes those to its results file while reading.
    table = generator().canonical(40, seed=52, invalid_every=5, prefix="a")
    write(table, night.inputs / "2026-11-01-a.csv")
    first = _start_slow_run(night)
    try:
        deadline = time.monotonic() + 20
        while (not night.results.exists() or night.results.stat().st_size < 1000) and time.monotonic() < deadline:
            time.sleep(0.02)  # the invalid rows are written as soon as the file is read
        before = night.results.read_bytes()
        second = night.run("--quiet")
        assert second.code == 4
        assert night.results.read_bytes() == before
    finally:
        first.terminate()  # SIGTERM: it stops cleanly; its outcome is not what this test is about
        _finish(first)


def _dead_pid() -> int:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return gone.pid


def test_a_stale_lock_is_taken_over_with_a_warning(night: Nights) -> None:
    a = canonical(10, seed=53, prefix="a")
    write(a, night.inputs / "2026-11-01-a.csv")
    night.state.mkdir()
    pid = _dead_pid()
    (night.state / "lock").write_text(str(pid))
    r = night.run()
    assert r.code == 0, r.err
    assert f"took over a stale lock of pid {pid}" in r.err
    assert "warning" in r.err.lower()
    assert_received_once(night.sim, expected(a))
    assert _lock_is_free(night.state)


HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, str(os.getpid()).encode())
print("held", flush=True)
time.sleep(30)
"""


def test_a_lock_of_a_live_process_is_respected(night: Nights) -> None:
    write(canonical(5, seed=54, prefix="a"), night.inputs / "2026-11-01-a.csv")
    night.state.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(night.state / "lock")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        r = night.run()
    finally:
        holder.kill()
        holder.wait()
    assert r.code == 4
    assert f"pid {holder.pid}" in r.err
    assert night.sim.client.stats()["requests_total"] == 0
    assert (night.state / "lock").read_text() == str(holder.pid)  # not stolen


def test_a_pid_in_the_lock_file_without_the_flock_does_not_block(night: Nights) -> None:
    """A live process whose pid happens to be in the file (pid reuse) does not hold the lock."""
    a = canonical(5, seed=55, prefix="a")
    write(a, night.inputs / "2026-11-01-a.csv")
    night.state.mkdir()
    (night.state / "lock").write_text(str(os.getpid()))  # alive, but holds no flock
    r = night.run()
    assert r.code == 0, r.err
    assert_received_once(night.sim, expected(a))
    assert _lock_is_free(night.state)
