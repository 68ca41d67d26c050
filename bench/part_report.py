"""Part R: ``media-import report`` on the state directory of a 1M-event backfill: time and peak memory.

The state directory is made directly in SQLite with the journal's own schema (sending a million
events through the simulator would take the bench fifteen minutes and measure the sender, not the
report): events over 300 days, 2,000 media and 200,000 contacts; 97% sent, 1% refused, 2% not
sent; invalid events by reason with samples; one row per 10 s window of 190 requests (a 14 h
backfill), with 429s and retries; 20 runs. It is reused while its sidecar matches.

The report runs in a child process (``python -m bench.part_report report STATE OUT``), which
prints its wall time and peak RSS (VmHWM, imports included) as a JSON line.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.data import DATA, ROOT
from bench.measure import median, peak_rss_mb
from bench.table import Figure

PART = "R  report: one HTML page of a state directory"
SCHEME = "report-state-v2"
TIME_LIMIT_S = 10.0
RSS_LIMIT_MB = 300.0
DAY_MS = 86_400_000
FIRST_DAY = 20_089  # 2025-01-01


def measure(events: int, repeat: int, log: Callable[[str], None]) -> tuple[list[Figure], dict[str, Any]]:
    state = DATA / f"report-state-{events}"
    log(f"report: state directory of {events:,} events in {state} ...")
    _child(["build", str(state), str(events)])
    runs = []
    for rep in range(1, repeat + 1):
        log(f"report on {events:,} events (run {rep}/{repeat}) ...")
        runs.append(_child(["report", str(state), str(DATA / "report.html")]))
        log(f"  {runs[-1]['wall_s']:.2f} s, peak {runs[-1]['peak_rss_mb']:.0f} MB, {runs[-1]['bytes']:,} bytes")
    wall = [r["wall_s"] for r in runs]
    rss = [r["peak_rss_mb"] for r in runs]
    size = f"{events / 1e6:g}M" if events >= 1_000_000 else f"{events // 1000}k"
    figures = [
        Figure(PART, f"report time, {size} events", median(wall), "s", wall, target=f"≤ {TIME_LIMIT_S:g} s",
               ok=median(wall) <= TIME_LIMIT_S),
        Figure(PART, f"report peak RSS, {size} events", median(rss), "MB", rss, target=f"≤ {RSS_LIMIT_MB:g} MB",
               ok=max(rss) <= RSS_LIMIT_MB),
    ]  # fmt: skip
    return figures, {"events": events, "runs": runs}


def _child(args: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.part_report", *args]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- in the child ------------------------------------------------------------------------------------
def build(state: Path, events: int) -> dict[str, Any]:
    """Make (or reuse) a state directory of ``events`` events."""
    sidecar = state / "made.json"
    meta = {"scheme": SCHEME, "events": events}
    if sidecar.exists() and json.loads(sidecar.read_text()) == meta:
        return {"reused": True}
    from importer.state.activity import contact_hash
    from importer.state.journal import Journal

    for name in ("journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm"):
        (state / name).unlink(missing_ok=True)
    journal = Journal(state)
    db = journal.db
    rng = np.random.default_rng(14)
    contacts = np.array([contact_hash(str(100_000 + i)) for i in range(200_000)], dtype=np.int64)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("BEGIN")
    chunk = 200_000
    for start in range(0, events, chunk):
        n = min(chunk, events - start)
        k1 = rng.integers(-(2**63), 2**63 - 1, n, dtype=np.int64)
        k2 = rng.integers(-(2**63), 2**63 - 1, n, dtype=np.int64)
        roll = rng.random(n)
        status = np.where(roll < 0.97, "sent", np.where(roll < 0.98, "failed", "not_sent"))
        day = FIRST_DAY + rng.integers(0, 300, n)
        media = rng.zipf(1.3, n) % 2000
        contact = contacts[rng.integers(0, len(contacts), n)]
        rows = np.arange(start, start + n) + 2
        records = []
        for i in range(n):
            s = str(status[i])
            failed = s == "failed"
            payload = None
            if s != "sent":
                body = {"sessionId": f"s{start + i}", "state": "STARTED", "mediaType": "VIDEO",
                        "occurredTimestamp": int(day[i]) * DAY_MS, "externalId": f"vid-{media[i]}"}  # fmt: skip
                payload = json.dumps(body)
            records.append((int(k1[i]), int(k2[i]), s, int(failed), f"/exports/plays-{int(day[i]) // 30}.csv",
                            "123-abc", int(rows[i]), "STARTED", 0, 400 if failed else 200,
                            f"Media not found; category=VALIDATION_ERROR; correlationId=c{i}" if failed else None,
                            1, payload, 1 + (start + i) * 20 // events, 0.0, int(day[i]), f"vid-{media[i]}",
                            int(contact[i])))  # fmt: skip
        db.executemany(
            "INSERT OR IGNORE INTO events(k1, k2, status, transient, source, fingerprint, row, state, payload_hash, "
            "http_status, error, attempts, payload, run_id, updated_at, day, media, contact) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            records,
        )
    reasons = ["contactId: no contact", "mediaType: not a media type", "occurredTimestamp: before 2000-01-01"]
    db.executemany(
        "INSERT INTO invalid_counts(source, day, reason, field, count, run_id) VALUES (?, ?, ?, ?, ?, 1)",
        [(f"/exports/plays-{d // 30}.csv", d, r, r.split(":")[0], 3) for d in range(FIRST_DAY, FIRST_DAY + 300)
         for r in reasons],
    )  # fmt: skip
    db.executemany(
        "INSERT INTO invalid_samples(source, reason, row, field, value) VALUES (?, ?, ?, ?, ?)",
        [("/exports/plays-669.csv", r, 10 + i, r.split(":")[0], "x") for r in reasons for i in range(5)],
    )
    windows = math.ceil(events / 190)
    t0 = 1_740_000_000.0
    per_day = 8_640  # 10 s windows in a day; the quota stops the backfill after 4,000 of them each day
    db.executemany(
        "INSERT INTO send_windows(run_id, start, seconds, requests, retries, rate_limited, rate_limit, daily, "
        "daily_remaining) VALUES (?, ?, 10, 190, ?, ?, 190, 1000000, ?)",
        [(1 + w // 4000, t0 + (w // 4000) * per_day * 10 + (w % 4000) * 10, w % 7, int(w % 97 == 0),
          1_000_000 - (w % 4000) * 190) for w in range(windows)],
    )  # fmt: skip
    summary = {"counts": {"sent": events // 20}, "quota": {"daily": 1_000_000, "remaining": 0, "reserve": 50_000}}
    db.executemany(
        "INSERT INTO runs(id, started_at, finished_at, command, summary, exit_code) VALUES (?, ?, ?, ?, ?, ?)",
        [(r, t0 + r * 86_400, t0 + r * 86_400 + 40_000, "run /exports/", json.dumps(summary), 3) for r in range(1, 21)],
    )
    db.execute("COMMIT")
    journal.close()
    sidecar.write_text(json.dumps(meta))
    return {"reused": False}


def report(state: Path, out: Path) -> dict[str, Any]:
    from importer.dashboard import write_report

    wall = time.perf_counter()
    write_report(state, out)
    return {"wall_s": time.perf_counter() - wall, "peak_rss_mb": peak_rss_mb(), "bytes": out.stat().st_size}


if __name__ == "__main__":
    kind, *rest = sys.argv[1:]
    result = build(Path(rest[0]), int(rest[1])) if kind == "build" else report(Path(rest[0]), Path(rest[1]))
    print(json.dumps(result))
