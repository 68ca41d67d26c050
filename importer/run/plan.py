"""``run --dry-run``: what a run would really send, given the journal and the file manifest.

Files the manifest says were imported and are unchanged are not read; events the journal holds
as sent, refused for good (4xx) or possibly sent are not counted; events earlier runs left
unsent are. Nothing is sent and the state directory is not changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.compute as pc

from importer.run.options import RunOptions
from importer.run.pipeline import Pipeline
from importer.state.identity import event_keys
from importer.state.journal import Journal
from importer.state.manifest import split_done


@dataclass
class SendPlan:
    to_send: int = 0  # events a run would send now
    already_sent: int = 0
    refused_before: int = 0
    possibly_sent_before: int = 0
    leftovers: int = 0  # events earlier runs left unsent, sent again by the run
    files_skipped: int = 0
    before_since: int = 0


def plan_send(options: RunOptions, pipeline: Pipeline) -> SendPlan:
    """Count the events ``Runner.run`` would send for ``pipeline`` with ``options``."""
    plan = SendPlan()
    known = (Path(options.state_dir) / "journal.sqlite").exists() and not options.force
    journal = Journal(options.state_dir) if known else None
    try:
        if journal is not None and options.incremental:
            todo, done = split_done(journal, pipeline.sources)
            plan.files_skipped = len(done)
            pipeline.sources = todo
        # Leftovers whose rows are read again are sent once, as events of their file: counted there.
        pending: list[tuple[int, int, str, int | None, str | None, str, str | None]] = []
        if journal is not None and options.retry_leftovers:
            pending = journal.pending(
                include_terminal=options.retry_terminal, include_held=options.on_timeout == "retry"
            )
        left_k1 = np.array([row[0] for row in pending], dtype=np.int64)
        reread = 0
        for prepared in pipeline.batches():
            events = prepared.events
            if options.since_ms is not None and events.num_rows:
                cutoff = options.since_ms - int(options.lookback_s * 1000)
                recent = pc.fill_null(pc.greater_equal(events.column("occurredTimestamp"), cutoff), False)
                plan.before_since += events.num_rows - int(pc.sum(recent).as_py() or 0)
                events = events.filter(recent)
            if not events.num_rows:
                continue
            k1, k2 = event_keys(events, pipeline.mapping.identity)
            if journal is None:
                plan.to_send += len(k1)
                continue
            sent = journal.sent_mask(k1, k2)
            refused = journal.refused_mask(k1, k2) & ~sent if not options.retry_terminal else sent & False
            held = journal.held_mask(k1, k2) & ~sent if options.on_timeout == "hold" else sent & False
            plan.already_sent += int(sent.sum())
            plan.refused_before += int(refused.sum())
            plan.possibly_sent_before += int(held.sum())
            keep = ~(sent | refused | held)
            plan.to_send += int(keep.sum())
            if len(left_k1):
                reread += int(np.isin(k1[keep], left_k1).sum())
        plan.leftovers = max(0, len(pending) - reread)
        plan.to_send += plan.leftovers
    finally:
        if journal is not None:
            journal.close()
    return plan
