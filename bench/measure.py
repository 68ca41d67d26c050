"""Run ``bench.worker`` in a child process; collect its figures, its peak RSS and the machine's
other load while it ran.

Peak RSS is the child's own ``VmHWM`` (read by the child as it ends): ``ru_maxrss`` from
``wait4``/``RUSAGE_CHILDREN`` is inherited across fork and exec on Linux, so a child of a
big parent would report the parent's peak.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from bench.data import ROOT

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class WorkerFailed(RuntimeError):
    pass


def machine_busy_s() -> float:
    """CPU seconds every core of the machine has spent busy since boot (0 where unknown)."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    # guest time is already counted in user time
    return (sum(fields[:8]) - idle) / _TICK


def process_cpu_s(pid: int) -> float:
    """CPU seconds of a running process (0 when it is gone or /proc is missing)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def peak_rss_mb() -> float | None:
    """This process's peak resident set (VmHWM) in MB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def run_worker(args: Sequence[str], also_ours: Sequence[int] = (), show_log: bool = False) -> dict[str, Any]:
    """``python -m bench.worker ARGS`` → its JSON line, plus ``other_load_cores``: the CPU the rest
    of the machine used meanwhile (not this child, nor the processes ``also_ours``), in cores.
    ``show_log`` lets the child's stderr through instead of keeping it for an error message."""
    cmd = [sys.executable, "-m", "bench.worker", *args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        busy0, ours0, t0 = machine_busy_s(), sum(process_cpu_s(p) for p in also_ours), time.monotonic()
        stderr_to = None if show_log else err
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=stderr_to, stdin=subprocess.DEVNULL)
        try:
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own CPU time
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        elapsed = time.monotonic() - t0
        busy = machine_busy_s() - busy0
        ours = sum(process_cpu_s(p) for p in also_ours) - ours0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise WorkerFailed(f"{' '.join(cmd)} exited {proc.returncode}:\n{stderr[-4000:]}")
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise WorkerFailed(f"{' '.join(cmd)} printed no result:\n{stdout[-2000:]}\n{stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    child_cpu = usage.ru_utime + usage.ru_stime
    result["process_cpu_s"] = child_cpu
    result["other_load_cores"] = max(0.0, (busy - child_cpu - ours) / elapsed) if busy else None
    return result


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def git_revision() -> str:
    """HEAD's short hash, '+dirty' when importer/ has uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "importer"], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
