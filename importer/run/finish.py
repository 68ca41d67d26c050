"""The end of a run, whatever ended it: the exit code, the watermark, the journal's run record and
the summary file."""

from __future__ import annotations

import logging
import time
from typing import Any

from importer.errors import EXIT_CONFIG, EXIT_OK, EXIT_ROWS, EXIT_STOPPED, ImporterError, InputError, redact
from importer.hubspot.pacing import DailyQuota, RateLimiter
from importer.hubspot.sender import SendStats
from importer.state.journal import Journal
from importer.state.manifest import WATERMARK
from importer.state.summary import RunSummary, write_summary

log = logging.getLogger("media_import")


def exit_code(summary: RunSummary, error: ImporterError | None) -> int:
    """2 only when nothing was sent; an error after sending started stops the run like a signal (3)."""
    if error is not None:
        delivered = summary.counts["sent"] + summary.counts["possibly_sent"]
        if error.exit_code == EXIT_CONFIG and delivered:
            return EXIT_STOPPED
        return error.exit_code
    if summary.counts["invalid"] or summary.counts["failed"]:
        return EXIT_ROWS
    return EXIT_OK


def settle(
    summary: RunSummary,
    error: ImporterError | None,
    *,
    stats: SendStats | None = None,
    refreshes: int = 0,
    quota: DailyQuota | None = None,
    limiter: RateLimiter | None = None,
    on_timeout: str = "hold",
) -> None:
    """Fill in the summary's closing fields."""
    s = summary
    s.finished = time.time()
    if stats is not None:
        s.stats = {
            "requests": stats.requests,
            "retries": stats.retries,
            "rate_limited": stats.rate_limited,
            "unconfirmed": stats.unconfirmed,
            "timed_out": stats.timed_out,
            "connection_errors": stats.connection_errors,
            "quota_waits": stats.quota_waits,
            "oauth_refreshes": refreshes,
            "on_timeout": on_timeout,
        }
        if limiter is not None:
            limit = limiter.rate
            s.stats["rate_limit"] = limit.text if limit is not None else None
            s.stats["rate_lowered_by_hubspot"] = bool(
                limiter.adapted_from_headers
                and limit is not None
                and limiter.requested is not None
                and limit.per_second < limiter.requested.per_second
            )
    if quota is not None:
        s.quota = {
            "daily": quota.daily,
            "remaining": quota.remaining,
            "reserve": quota.reserve,
            "resets_at": quota.reset_at,
            "timezone": quota.timezone,
        }
    s.exit_code = exit_code(s, error)
    if error is not None:
        message = error.message
        if isinstance(error, InputError) and s.exit_code == EXIT_STOPPED:
            message = f"input error after sending started: {message}"
        s.stopped = redact(message)
        s.stop_hint = redact(error.hint) if error.hint else None
        if isinstance(error, InputError) and s.exit_code == EXIT_STOPPED:
            s.stop_hint = "fix or move the file named above and run the same command again to resume"
    if s.changed:
        log.warning(
            "%d events were sent before with a different payload (their rows changed since); "
            "they are not sent again: an event's identity is its dedupe key",
            s.changed,
        )


def outstanding(journal: Journal, limit: int = 5) -> dict[str, Any]:
    """Where the events not sent are, so that a run that sent nothing still points at them: the
    journal's pending counts, and the earlier runs whose results files list invalid or failed events."""
    earlier = []
    for run in journal.runs(50):
        counts = (run["summary"] or {}).get("counts") or {}
        if run["id"] == journal.run_id or not (counts.get("invalid") or counts.get("failed")):
            continue
        earlier.append({"run": run["id"], "results": run.get("results"), "invalid": counts.get("invalid", 0),
                        "failed": counts.get("failed", 0)})  # fmt: skip
        if len(earlier) >= limit:
            break
    return {"in_journal": journal.pending_counts(), "earlier_runs": earlier}


def record_run(journal: Journal, summary: RunSummary, newest_ms: int | None, completed: bool) -> None:
    """The watermark (only after a run that was not stopped) and the run's line in the journal."""
    if newest_ms is not None and completed:
        previous = journal.get(WATERMARK)
        newest = max(newest_ms, int(previous)) if previous is not None else newest_ms
        journal.put(WATERMARK, str(newest))
    journal.finish_run(summary.to_dict(), summary.exit_code)


def write_summary_file(results_path: str, summary: RunSummary) -> None:
    """The summary beside the results file; a full disk is logged, not raised (the exit code stands)."""
    try:
        write_summary(results_path, summary.to_dict())
    except OSError as exc:
        log.error("cannot write the summary %s.summary.json (%s)", results_path, exc.strerror or exc)
