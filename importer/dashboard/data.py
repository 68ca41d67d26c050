"""What the report shows, aggregated in SQLite: every query returns a handful of rows per chart.

Nothing here reads the journal's events one by one. Events by day and status, distinct contacts
and events per media come from the running totals the journal's triggers keep
(``importer/state/activity.py``); the sending history is binned in SQL to at most ``MAX_BINS``
points; failures are read through the journal's partial index of unsent events. So neither the
time nor the memory grows with the number of events sent.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from importer.errors import ConfigError, redact
from importer.hubspot.pacing import days_left
from importer.run.backfill import BACKFILL_KEY, QUOTA_KEY, left_today
from importer.state.activity import migrate

MAX_BINS = 400
TOP_MEDIA = 10
TOP_REASONS = 12
SAMPLES_SHOWN = 3
RUNS_SHOWN = 30
OUTCOMES = ("sent", "failed", "invalid", "not_sent")
DEFAULT_RESERVE = 0.05
NOT_FOUND_REASONS = ("not found in lookup", "contact not found in HubSpot")
FIRST_DAY = 10_957  # 2000-01-01: an invalid event's earlier timestamp has no usable day

# A failure's reason without what differs per event: HubSpot's correlationId, the attempt count.
_FAILURES = """
WITH f0 AS (
    SELECT CASE WHEN error LIKE 'gave up after % attempts: %'
                THEN 'gave up retrying: ' || substr(error, instr(error, 'attempts: ') + 10)
                ELSE COALESCE(error, 'HTTP ' || COALESCE(http_status, '?')) END AS e, source, row, http_status
    FROM events WHERE status != 'sent' AND status = 'failed'),
f AS (
    SELECT CASE WHEN instr(e, '; correlationId=') > 0 THEN substr(e, 1, instr(e, '; correlationId=') - 1)
                ELSE e END AS reason, source, row, http_status FROM f0),
ranked AS (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY reason ORDER BY source, row) AS i,
              COUNT(*) OVER (PARTITION BY reason) AS n FROM f)
SELECT reason, n, source, row, http_status FROM ranked WHERE i <= ? ORDER BY n DESC, reason, i"""


@dataclass
class Sample:
    source: str
    row: int | None
    field: str | None
    value: str | None


@dataclass
class Reason:
    kind: str  # "invalid" or "failed"
    reason: str
    field: str | None
    count: int
    samples: list[Sample] = dataclasses.field(default_factory=list)


@dataclass
class Bin:
    """A stretch of sending: the busiest window in it, the limit, and what the stretch added up to."""

    start: float
    seconds: float
    peak: int
    limit: int | None
    requests: int
    retries: int
    rate_limited: int


@dataclass
class QuotaDay:
    day: int  # days since the epoch, UTC
    requests: int
    daily: int | None
    account_used: int | None  # daily - the lowest remaining seen that day: every app of the account


@dataclass
class Run:
    id: int
    started_at: float
    finished_at: float | None
    command: str
    exit_code: int | None
    counts: dict[str, int]
    stopped: str | None


@dataclass
class ReportData:
    state_dir: str
    generated_at: float
    outcomes: dict[str, int]  # sent / failed / invalid / not_sent over every event known
    pending: dict[str, int]  # not_sent, failed_transient (re-driven), failed_terminal
    by_day: list[tuple[int, str, int]]  # (day, outcome, events); day -1: not recorded
    window_s: float | None
    bins: list[Bin]
    quota_days: list[QuotaDay]
    daily: int | None
    reserve: int | None
    reasons: list[Reason]
    contacts: int
    media: int
    top_media: list[tuple[str, int]]
    not_found_events: int
    not_found_emails: int | None
    runs: list[Run]
    unread: int = 0  # events of inputs the last run did not read (stopped early), estimated
    reset_at: float | None = None  # when the daily quota resets (midnight in the account's time zone)
    remaining: int | None = None  # what the last run left of that day's quota
    timezone: str | None = None

    @property
    def known(self) -> int:
        return sum(self.outcomes.values())

    @property
    def to_send(self) -> int:
        """Events a later run will still send: not sent yet, failed for a transient reason, not read yet."""
        return self.pending.get("not_sent", 0) + self.pending.get("failed_transient", 0) + self.unread

    @property
    def days_left(self) -> int | None:
        """Days of the learned daily quota (less the reserve) that the events left take, today included
        when what the last run left of today's quota sends some of them."""
        today = left_today(self.remaining, self.reset_at, self.generated_at)
        return days_left(self.to_send, self.daily, self.reserve or 0, today)


def gather(state_dir: str | Path, *, now: float | None = None) -> ReportData:
    """Aggregate a state directory for the report (a few small queries; see the module docstring)."""
    path = Path(state_dir) / "journal.sqlite"
    if not path.exists():
        raise ConfigError(f"no journal in {state_dir}", hint="run media-import run first, or pass --state-dir")
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA busy_timeout=10000")
        migrate(db)  # a state directory from before the report: add the (empty) tables
        return _gather(db, str(state_dir), time.time() if now is None else now)
    finally:
        db.close()


def _gather(db: sqlite3.Connection, state_dir: str, now: float) -> ReportData:
    outcomes = dict.fromkeys(OUTCOMES, 0)
    pending = {"not_sent": 0, "failed_transient": 0, "failed_terminal": 0}
    by_day: dict[tuple[int, str], int] = {}
    last_day = int(now // 86_400) + 1

    def usable(day: int) -> int:
        return day if FIRST_DAY <= day <= last_day else -1

    for day, status, transient, n in db.execute("SELECT day, status, transient, n FROM event_days WHERE n > 0"):
        outcome = status if status in outcomes else "not_sent"
        outcomes[outcome] += n
        key = (usable(day), outcome)
        by_day[key] = by_day.get(key, 0) + n
        if status == "failed":
            pending["failed_transient" if transient else "failed_terminal"] += n
        elif status != "sent":
            pending["not_sent"] += n
    for day, n in db.execute("SELECT COALESCE(day, -1), SUM(count) FROM invalid_counts GROUP BY 1"):
        outcomes["invalid"] += n
        key = (usable(day), "invalid")
        by_day[key] = by_day.get(key, 0) + n
    daily, reserve, window_s = _quota(db)
    saved = _saved(db, QUOTA_KEY)
    if saved.get("daily"):  # what the last run learned, as status reads it
        daily = int(saved["daily"])
        reserve = math.ceil(daily * DEFAULT_RESERVE) if reserve is None else reserve
    contacts, media, top = _coverage(db)
    (not_found,) = db.execute(
        "SELECT COALESCE(SUM(count), 0) FROM invalid_counts WHERE field IN ('contactId', 'contactUtk') "
        "AND (instr(reason, ?) > 0 OR instr(reason, ?) > 0)",
        NOT_FOUND_REASONS,
    ).fetchone()
    return ReportData(
        state_dir=state_dir,
        generated_at=now,
        outcomes=outcomes,
        pending=pending,
        by_day=sorted((d, o, n) for (d, o), n in by_day.items()),
        window_s=window_s,
        bins=_bins(db),
        quota_days=_quota_days(db),
        daily=daily,
        reserve=reserve,
        reasons=_reasons(db),
        contacts=contacts,
        media=media,
        top_media=top,
        not_found_events=int(not_found),
        not_found_emails=_not_found_emails(db),
        runs=_runs(db),
        unread=int(_saved(db, BACKFILL_KEY).get("unread_events") or 0),
        reset_at=float(saved["reset_at"]) if saved.get("reset_at") else None,
        remaining=int(saved["remaining"]) if saved.get("remaining") is not None else None,
        timezone=str(saved["timezone"]) if saved.get("timezone") else None,
    )


def _saved(db: sqlite3.Connection, name: str) -> dict[str, Any]:
    """A figure the runner left in the journal's ``state`` table (``importer/run/backfill.py``)."""
    row = db.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
    try:
        value = json.loads(row[0]) if row and row[0] else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _quota(db: sqlite3.Connection) -> tuple[int | None, int | None, float | None]:
    """The last daily quota learned, the reserve kept from it, and the last rate-limit window."""
    row = db.execute(
        "SELECT daily, seconds FROM send_windows WHERE daily IS NOT NULL ORDER BY run_id DESC, start DESC LIMIT 1"
    ).fetchone()
    daily, window_s = (int(row[0]), float(row[1])) if row else (None, None)
    reserve = None
    for (summary,) in db.execute("SELECT summary FROM runs WHERE summary IS NOT NULL ORDER BY id DESC LIMIT 20"):
        quota = (json.loads(summary) or {}).get("quota") or {}
        if quota.get("daily"):
            daily = daily or int(quota["daily"])
            reserve = int(quota.get("reserve") or 0)
            break
    if daily and reserve is None:
        reserve = math.ceil(daily * DEFAULT_RESERVE)
    if window_s is None:
        row = db.execute("SELECT seconds FROM send_windows ORDER BY run_id DESC, start DESC LIMIT 1").fetchone()
        window_s = float(row[0]) if row else None
    return daily, reserve, window_s


def _bins(db: sqlite3.Connection) -> list[Bin]:
    first, last, narrowest = db.execute(
        "SELECT MIN(start), MAX(start + seconds), MIN(seconds) FROM send_windows"
    ).fetchone()
    if first is None:
        return []
    width = max(float(narrowest), (float(last) - float(first)) / MAX_BINS)
    rows = db.execute(
        "SELECT CAST((start - ?1) / ?2 AS INTEGER) AS b, MAX(requests), MAX(rate_limit), SUM(requests), "
        "SUM(retries), SUM(rate_limited) FROM send_windows GROUP BY b ORDER BY b",
        (first, width),
    )
    return [
        Bin(first + b * width, width, int(peak), None if limit is None else int(limit), int(req), int(ret), int(lim))
        for b, peak, limit, req, ret, lim in rows
    ]


def _quota_days(db: sqlite3.Connection) -> list[QuotaDay]:
    rows = db.execute(
        "SELECT CAST(start / 86400 AS INTEGER) AS d, SUM(requests), MAX(daily), MIN(daily_remaining) "
        "FROM send_windows GROUP BY d ORDER BY d"
    )
    return [
        QuotaDay(int(d), int(req), daily, None if daily is None or low is None else max(0, daily - low))
        for d, req, daily, low in rows
    ]


def _coverage(db: sqlite3.Connection) -> tuple[int, int, list[tuple[str, int]]]:
    (contacts,) = db.execute("SELECT COUNT(*) FROM sent_contacts").fetchone()
    (media,) = db.execute("SELECT COUNT(*) FROM media_sent WHERE n > 0").fetchone()
    rows = db.execute("SELECT media, n FROM media_sent WHERE n > 0 ORDER BY n DESC, media LIMIT ?", (TOP_MEDIA,))
    return int(contacts), int(media), [(str(m), int(n)) for m, n in rows]


def _invalid_reasons(db: sqlite3.Connection, limit: int | None) -> list[Reason]:
    rows = db.execute(
        "SELECT reason, MAX(field), SUM(count) FROM invalid_counts GROUP BY reason ORDER BY 3 DESC, 1 LIMIT ?",
        (-1 if limit is None else limit,),
    )
    return [Reason("invalid", redact(str(r)), f, int(n)) for r, f, n in rows]


def _reasons(db: sqlite3.Connection) -> list[Reason]:
    """Invalid and failed events by reason, the largest first, each with a few file:row samples."""
    out = _invalid_reasons(db, TOP_REASONS)
    for reason in out:
        samples = db.execute(
            "SELECT source, row, field, value FROM invalid_samples WHERE reason = ? ORDER BY source, row LIMIT ?",
            (reason.reason, SAMPLES_SHOWN),
        )
        reason.samples = [Sample(str(s), r, f, v) for s, r, f, v in samples]
    failed = db.execute(_FAILURES, (SAMPLES_SHOWN,))
    by_reason: dict[str, Reason] = {}
    for reason, n, source, row, status in failed:
        entry = by_reason.setdefault(reason, Reason("failed", redact(str(reason)), None, int(n)))
        entry.samples.append(Sample(str(source or ""), row, "HTTP status", None if status is None else str(status)))
    out.extend(by_reason.values())
    out.sort(key=lambda r: (-r.count, r.kind, r.reason))
    return out[:TOP_REASONS]


def _not_found_emails(db: sqlite3.Connection) -> int | None:
    """Emails HubSpot said it does not know (the contact cache), when the mapping resolves through it."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'contacts'").fetchone() is None:
        return None
    (n,) = db.execute("SELECT COUNT(*) FROM contacts WHERE contact_id IS NULL").fetchone()
    return int(n)


def _runs(db: sqlite3.Connection) -> list[Run]:
    rows = db.execute(
        "SELECT id, started_at, finished_at, command, summary, exit_code FROM runs ORDER BY id DESC LIMIT ?",
        (RUNS_SHOWN,),
    )
    out = []
    for rid, started, finished, command, summary, code in rows:
        data: dict[str, Any] = json.loads(summary) if summary else {}
        counts = {str(k): int(v) for k, v in (data.get("counts") or {}).items() if v}
        stopped = data.get("stopped")
        out.append(
            Run(int(rid), float(started), finished, redact(str(command or "")), code, counts,
                redact(str(stopped)) if stopped else None)
        )  # fmt: skip
    return out
