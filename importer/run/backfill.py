"""A backfill's progress across runs: events sent of the total, and days left at the learned quota.

The runner leaves two figures in the state directory at the end of each run: the daily quota it
learned (``daily_quota``, with its reset time) and the events of the inputs it had not read yet
(``backfill``, estimated from the rows left at the events per row seen so far). ``status``
adds the journal's counts; the days left come from ``importer.hubspot.pacing.days_left``, as the
run report's do.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from importer.hubspot.pacing import days_left, per_day
from importer.state.journal import Journal

BACKFILL_KEY = "backfill"
QUOTA_KEY = "daily_quota"


def _load(journal: Journal, name: str) -> dict[str, Any] | None:
    text = journal.get(name)
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def load_quota(journal: Journal) -> dict[str, Any] | None:
    """The daily quota the last run learned (with its reset time)."""
    return _load(journal, QUOTA_KEY)


def save_quota(journal: Journal, state: dict[str, Any]) -> None:
    if state.get("daily") is not None or state.get("remaining") is not None:
        journal.put(QUOTA_KEY, json.dumps(state))


def save_unread(journal: Journal, unread_events: int | None) -> None:
    """Events of the last run's inputs it did not read (stopped early), or 0 when it read them all."""
    if unread_events is not None:
        journal.put(BACKFILL_KEY, json.dumps({"unread_events": unread_events}))


def left_today(remaining: int | None, reset_at: float | None, now: float) -> int | None:
    """What the last run left of the daily quota, while that day lasts (None: unknown or reset since)."""
    if remaining is None or reset_at is None or now >= float(reset_at):
        return None
    return int(remaining)


def progress(journal: Journal, reserve_fraction: float = 0.05, now: float | None = None) -> dict[str, Any]:
    """``sent``, ``total`` (sent + still to send), ``left``, ``per_day`` and ``days_left`` (None when
    the daily quota was never learned: OAuth apps get no daily headers). ``days_left`` counts today
    when what the last run left of today's quota sends some of the events."""
    counts = journal.counts()
    pending = journal.pending_counts()
    unread = int((_load(journal, BACKFILL_KEY) or {}).get("unread_events") or 0)
    to_send = pending.get("not_sent", 0) + pending.get("failed_transient", 0) + unread
    sent = counts.get("sent", 0)
    quota = load_quota(journal) or {}
    daily = quota.get("daily")
    a_day = None
    days = None
    if daily:
        reserve = math.ceil(int(daily) * reserve_fraction)
        a_day = per_day(int(daily), reserve)
        today = left_today(quota.get("remaining"), quota.get("reset_at"), time.time() if now is None else now)
        days = days_left(to_send, int(daily), reserve, today)
    return {
        "sent": sent,
        "total": sent + to_send,
        "left": to_send,
        "unread_estimate": unread,
        "per_day": a_day,
        "days_left": days,
    }


def render(p: dict[str, Any]) -> str:
    text = f"Backfill: {p['sent']:,} of {p['total']:,} events sent"
    if p["left"] and p["days_left"] is not None:
        text += f"; about {p['days_left']} day(s) left at {p['per_day']:,} a day (the learned quota less the reserve)"
    elif p["left"]:
        text += f"; {p['left']:,} to go (no daily quota learned yet)"
    return text
