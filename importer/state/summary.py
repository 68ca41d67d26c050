"""What a run did: counts by status, speed, retries, quota; printed and written as JSON."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from importer.clock import format_duration

COUNTED = ("sent", "skipped", "invalid", "failed", "not_sent", "possibly_sent")


@dataclass
class RunSummary:
    counts: Counter[str] = field(default_factory=Counter)
    rows: int = 0
    duplicates: int = 0
    skipped_rows: int = 0
    files_read: int = 0
    files_skipped: int = 0
    before_since: int = 0
    changed: int = 0
    leftovers: int = 0
    refused_before: int = 0
    outstanding: dict[str, Any] = field(default_factory=dict)  # what earlier runs left, to find it
    carried: dict[str, int] = field(default_factory=dict)  # of that, listed in this run's results file
    held_before: int = 0  # possibly sent by an earlier run (no answer in time), not sent again
    contact_lookups: dict[str, int] = field(default_factory=dict)
    media: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    finished: float | None = None
    stopped: str | None = None
    stop_hint: str | None = None
    exit_code: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    quota: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return (self.finished or time.time()) - self.started

    def to_dict(self) -> dict[str, Any]:
        sent = self.counts.get("sent", 0)
        return {
            "counts": {s: self.counts.get(s, 0) for s in COUNTED},
            "rows": self.rows,
            "duplicates": self.duplicates,
            "rows_skipped_by_rules": self.skipped_rows,
            "files_read": self.files_read,
            "files_skipped_unchanged": self.files_skipped,
            "events_before_since": self.before_since,
            "changed_since_sent": self.changed,
            "leftovers_redriven": self.leftovers,
            "refused_before": self.refused_before,
            "possibly_sent_before": self.held_before,
            "contact_lookups": self.contact_lookups,
            "media": self.media,
            "outstanding": {**self.outstanding, **({"listed_in_results": self.carried} if self.carried else {})},
            "duration_s": round(self.duration_s, 3),
            "events_per_s": round(sent / self.duration_s, 2) if self.duration_s > 0 else 0.0,
            **self.stats,
            "quota": self.quota,
            "stopped": self.stopped,
            "exit_code": self.exit_code,
        }

    def render(self) -> str:
        c = self.counts
        lines = [
            f"Sent {c['sent']:,}, already sent before {c['skipped']:,}, invalid {c['invalid']:,}, "
            f"failed {c['failed']:,}, not sent {c['not_sent']:,}  ({self.rows:,} rows, {self.duplicates:,} duplicates)",
            f"{self.to_dict()['events_per_s']:,} events/s over {format_duration(self.duration_s)}; "
            f"{self.stats.get('retries', 0):,} retries, {self.stats.get('rate_limited', 0):,} answers 429",
        ]
        if self.media:
            m = self.media
            lines.append(
                f"Media objects: {m['distinct']:,} distinct, {m['known']:,} known before, {m['found']:,} found in "
                f"HubSpot, {m['created']:,} created, {m['failed']:,} failed, {m['invalid']:,} invalid"
            )
        if c["possibly_sent"]:
            lines.append(
                f"{c['possibly_sent']:,} events possibly sent: their requests got no answer in time, so each may "
                "have arrived; held, not sent again (--on-timeout retry sends them, risking duplicates)"
            )
        if self.stats.get("timed_out") and self.stats.get("on_timeout") == "retry":
            lines.append(
                f"{self.stats['timed_out']:,} requests got no answer in time and were sent again: "
                "at worst that many duplicates"
            )
        if self.held_before:
            lines.append(f"{self.held_before:,} events possibly sent by earlier runs were held (--on-timeout hold)")
        if self.stats.get("rate_lowered_by_hubspot"):
            lines.append(f"HubSpot's headers lowered the rate to {self.stats['rate_limit']} (below --rate)")
        left = self.outstanding.get("in_journal") or {}
        if any(left.values()):
            shown = ", ".join(f"{k} {v:,}" for k, v in sorted(left.items()) if v)
            lines.append(f"Not sent, in the journal after this run: {shown} (media-import status lists them)")
        if self.carried:
            shown = ", ".join(f"{k} {v:,}" for k, v in sorted(self.carried.items()))
            lines.append(f"No results of its own: the results file lists what earlier runs left ({shown})")
        for run in (self.outstanding.get("earlier_runs") or []) if not c["sent"] else []:
            lines.append(
                f"  run #{run['run']} left invalid {run['invalid']:,}, failed {run['failed']:,}: see {run['results']}"
            )
        if self.files_skipped:
            lines.append(f"{self.files_skipped:,} input file(s) skipped: imported before and unchanged")
        if self.leftovers:
            lines.append(f"{self.leftovers:,} events left by earlier runs were sent again")
        if self.refused_before:
            lines.append(
                f"{self.refused_before:,} events HubSpot refused in earlier runs were not sent again (--retry-terminal)"
            )
        if self.before_since:
            lines.append(f"{self.before_since:,} events older than --since (minus the lookback) left out")
        if self.changed:
            lines.append(f"warning: {self.changed:,} already-sent events have changed rows; not sent again")
        if self.stats.get("unconfirmed"):
            lines.append(f"warning: {self.stats['unconfirmed']:,} 2xx answers did not echo the event")
        if self.quota.get("daily"):
            lines.append(f"Daily quota: {self.quota.get('remaining', '?'):,} of {self.quota['daily']:,} left")
        if self.stopped:
            lines.append(f"Stopped early: {self.stopped}")
            if self.stop_hint:
                lines.append(f"  hint: {self.stop_hint}")
        return "\n".join(lines)


def write_summary(results_path: str, summary: dict[str, Any]) -> str:
    """``RESULTS.summary.json``, written whole (a temp file, then a rename) with mode 0600."""
    path = f"{results_path}.summary.json"
    tmp = f"{path}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # never write through a link someone left at the temp name
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2)
    os.replace(tmp, path)
    return path
