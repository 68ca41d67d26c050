"""One library function per command; the CLI parses options, calls one of these and prints.

run_import(options, credentials, mapping, inputs, results)   → RunSummary
dry_run(options, mapping, inputs, results, daily_limit)      → (Report, plan text)
retry_results(options, credentials, results_in, results)     → RunSummary
status(state_dir, runs)                                      → dict (what ``status --json`` prints)
demo(root, workdir, progress)                                → (RunSummary, simulator stats)
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from importer.errors import ConfigError, ImporterError, InputError
from importer.hubspot.auth import Credentials
from importer.hubspot.contacts import hubspot_lookups, install_cached
from importer.hubspot.pacing import DailyQuota, Rate, plan_text
from importer.mapping.report import Report
from importer.mapping.spec import Mapping, load_mapping
from importer.run import backfill
from importer.run.admission import events_from_results
from importer.run.finish import settle, write_summary_file
from importer.run.media import check_media
from importer.run.options import RunOptions
from importer.run.pipeline import Pipeline, check
from importer.run.progress import Progress
from importer.run.runner import Runner
from importer.state.journal import JOURNAL, Journal
from importer.state.manifest import parse_since
from importer.state.results import ResultsWriter
from importer.state.summary import RunSummary

log = logging.getLogger("media_import")


def resolve_since(options: RunOptions, since: str | None) -> None:
    """``--since``: set ``options.since_ms`` (``last`` reads the previous run's watermark)."""
    if not since:
        return
    journal = _existing_journal(options.state_dir) if since == "last" else None
    try:
        options.since_ms = parse_since(since, journal)
    finally:
        if journal is not None:
            journal.close()
    if since == "last" and options.since_ms is None:
        log.warning("--since last: no earlier run recorded a watermark; reading everything")


def run_import(
    options: RunOptions,
    credentials: Credentials | Callable[[], Credentials],
    mapping: Mapping | str | Path,
    inputs: list[str],
    results: str,
    *,
    lookups: dict[str, str] | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """``run``: send the inputs' events; the summary is written beside ``results`` whatever happens.

    ``mapping`` may be a path and ``credentials`` a function: their errors, too, end with a summary.
    """
    try:
        if not isinstance(mapping, Mapping):
            mapping = load_mapping(str(mapping), lookups or {})
        creds = credentials() if callable(credentials) else credentials
    except ImporterError as exc:
        summary = RunSummary()
        settle(summary, exc)
        write_summary_file(results, summary)
        raise
    log.info("run started: %s", options.command)
    spec = mapping
    # Inputs are resolved (globs, folders) inside the run's lock: an input error ends with a summary too.
    return Runner(options, creds, results, progress).run(lambda: Pipeline(spec, inputs))


def check_inputs(
    mapping: Mapping | str | Path,
    inputs: list[str],
    *,
    lookups: dict[str, str] | None = None,
    results: str | None = None,
    state_dir: str = ".media-import",
    preview: int = 0,
    progress: Progress | None = None,
) -> Report:
    """``check``: every stage but sending; the invalid events go to ``results`` when given."""
    if not isinstance(mapping, Mapping):
        mapping = load_mapping(str(mapping), lookups or {})
    if preview < 0:
        raise ConfigError("--preview must be 0 or more")
    pipeline = Pipeline(mapping, inputs, progress)
    pipeline.preflight()
    use_contact_cache(pipeline, state_dir)
    media = check_media(pipeline, state_dir) if mapping.media is not None else None
    writer = ResultsWriter(results) if results else None
    try:
        report = check(pipeline, results=writer, preview=preview)
    finally:
        if writer is not None:
            writer.close()
    report.media_objects = media
    return report


def dry_run(
    options: RunOptions,
    mapping: Mapping,
    inputs: list[str],
    results: str,
    daily_limit: int | None,
    progress: Progress | None = None,
) -> tuple[Report, str]:
    """``run --dry-run``: the check report and the plan (what the journal leaves to send; time and quota days)."""
    from importer.run.plan import Planner

    pipeline = Pipeline(mapping, inputs, progress)
    pipeline.preflight()
    use_contact_cache(pipeline, options.state_dir)
    media = check_media(pipeline, options.state_dir) if mapping.media is not None else None
    planner = Planner(options, pipeline)  # fed by the check's read: the inputs are read once for both
    try:
        with ResultsWriter(results) as writer:
            report = check(pipeline, results=writer, also=planner.add)
    finally:
        planner.close()
    plan = planner.finish()
    quota = DailyQuota(options.daily_reserve)
    quota.daily = daily_limit or last_daily_limit(options.state_dir)
    lines = [
        "Plan: " + plan_text(plan.to_send, options.rate, quota),
        f"  already sent {plan.already_sent:,}, refused before {plan.refused_before:,}, possibly sent before "
        f"{plan.possibly_sent_before:,}, left by earlier runs {plan.leftovers:,}, files unchanged since "
        f"imported {plan.files_skipped:,} (the journal in {options.state_dir}; --force sends everything)",
    ]
    if quota.daily is None:
        lines.append("  (daily quota unknown: pass --daily-limit, e.g. 250000, 625000 or 1000000 for private apps)")
    if media is not None:
        lines.insert(0, media.render_plan())
    return report, "\n".join(lines)


def retry_results(
    options: RunOptions,
    credentials: Credentials,
    results_in: str,
    results: str | None = None,
    progress: Progress | None = None,
) -> tuple[RunSummary, str]:
    """``retry``: send again the failed / not_sent events of a results file (and the possibly_sent ones
    with ``on_timeout="retry"``); (summary, results path)."""
    out = results or f"{results_in}.retry.csv"
    if Path(out).resolve() == Path(results_in).resolve():
        raise ConfigError("--results must differ from the results file being retried")
    try:
        events = events_from_results(results_in, possibly_sent=options.on_timeout == "retry")
    except (OSError, ValueError) as exc:
        raise InputError(f"{results_in}: not a readable results file ({exc})") from None
    return Runner(options, credentials, out, progress).retry(events), out


def status(state_dir: str, runs: int = 10) -> dict[str, Any]:
    """The run history of a state directory: runs (newest first), totals, pending, the last quota."""
    journal = Journal.open(state_dir, create=False)
    try:
        history = journal.runs(runs)
        report: dict[str, Any] = {
            "state_dir": state_dir,
            "runs": history,
            "events": journal.counts(),
            "pending": journal.pending_counts(),
            "backfill": backfill.progress(journal),
        }
    finally:
        journal.close()
    holder = _lock_holder(state_dir)
    for run in history:
        if run["exit_code"] is None:
            run["state"] = "running" if holder is not None and holder == run.get("pid") else "killed"
        else:
            run["state"] = "finished"
    report["quota"] = next((r["summary"].get("quota") for r in history if r["summary"]), None)
    return report


def demo(workdir: Path, progress: Progress | None = None) -> tuple[RunSummary, dict[str, Any], Path, Path]:
    """Import the shipped sample with the generic preset into a fresh embedded simulator.

    Returns the summary, the simulator's stats, the results file and the sample folder.
    """
    from importer._data import resource_path
    from importer.simulator import Simulator, SimulatorConfig
    from importer.simulator.media import sample_objects

    state = workdir / "state"
    shutil.rmtree(state, ignore_errors=True)  # a fresh simulator gets a fresh journal
    results = workdir / "results.csv"
    # A demo-friendly limit: the pacing and the progress bar show for a few seconds.
    rate = Rate(1000, 1.0)
    config = SimulatorConfig(burst=rate.limit, window_ms=int(rate.window_s * 1000), latency_ms=2, jitter_ms=3)
    with Simulator(config) as sim:
        print(f"Local Media Bridge simulator on {sim.url} ({rate.limit} requests per {rate.window_s:g} s)")
        # The media objects the samples' media_bridge_id name exist in the account already; the run
        # creates the others (their external_id) first, then sends the events with each object's id.
        sim.client.seed_media(sample_objects())
        mapping = load_mapping("generic")
        sample = resource_path("sample_data", "generic").resolve()  # the repository's folder, in a checkout
        options = RunOptions(base_url=sim.url, state_dir=str(state), concurrency=16, rate=rate, command="demo")
        summary = run_import(options, Credentials(sim.token), mapping, [str(sample)], str(results), progress=progress)
        stats = sim.client.stats()
    return summary, stats, results, Path(str(sample))


def last_daily_limit(state_dir: str) -> int | None:
    """The daily limit HubSpot's headers reported in the last run of this state directory."""
    journal = _existing_journal(state_dir)
    if journal is None:
        return None
    try:
        for run in journal.runs(20):
            daily = ((run["summary"] or {}).get("quota") or {}).get("daily")
            if daily:
                return int(daily)
    finally:
        journal.close()
    return None


def use_contact_cache(pipeline: Pipeline, state_dir: str) -> None:
    """Serve hubspot lookups from the state directory's cache, when there is one (check has no token)."""
    if not hubspot_lookups(pipeline):
        return
    journal = _existing_journal(state_dir)
    if journal is None:
        return
    try:
        install_cached(pipeline, journal.db)
    finally:
        journal.close()


def format_status(report: dict[str, Any]) -> str:
    """``status`` as text: one line per run, the totals, pending events and the last quota."""
    from importer.clock import format_duration

    lines = [f"State directory {report['state_dir']}"]
    for run in report["runs"]:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run["started_at"]))
        took = format_duration((run["finished_at"] or time.time()) - run["started_at"])
        # A run killed or still running: what the journal recorded for it.
        counts = run["summary"].get("counts", {}) if run["summary"] else run.get("recorded") or {}
        shown = ", ".join(f"{k} {v:,}" for k, v in counts.items() if v) or "nothing"
        code = f"exit {run['exit_code']}" if run["exit_code"] is not None else run.get("state", "killed")
        lines.append(f"  #{run['id']:<4} {started}  {took:>10}  {code:<18} {shown}")
    totals = ", ".join(f"{k} {v:,}" for k, v in sorted(report["events"].items())) or "none"
    lines.append(f"Events in the journal: {totals}")
    pending = report["pending"]
    lines.append("Pending: " + (", ".join(f"{k} {v:,}" for k, v in sorted(pending.items())) or "nothing"))
    if "backfill" in report:
        lines.append(backfill.render(report["backfill"]))
    quota = report.get("quota")
    if quota and quota.get("daily"):
        lines.append(f"Daily quota at the last run's end: {quota['remaining']:,} of {quota['daily']:,} left")
    return "\n".join(lines)


def _existing_journal(state_dir: str) -> Journal | None:
    if not (Path(state_dir) / JOURNAL).exists():
        return None
    return Journal.open(state_dir, create=False)


def _lock_holder(state_dir: str) -> int | None:
    """The pid in the lock file, when that process is alive (a run in progress)."""
    try:
        pid = int((Path(state_dir) / "lock").read_text().strip() or "0")
    except (OSError, ValueError):
        return None
    if not pid:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid
