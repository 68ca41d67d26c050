"""``run --dry-run``: what a run would really send, given the journal and the file manifest.

Files the manifest says were imported and are unchanged are not read; events the journal holds
as sent, refused for good (4xx) or possibly sent are not counted; events earlier runs left
unsent are. Nothing is sent and the state directory is not changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from importer.mapping.plan import PreparedBatch
from importer.run.admission import Known, since
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


class Planner:
    """Counts what ``Runner.run`` would send, fed the prepared batches of the check's own read.

    Open it before the read (it takes the journal's view: files unchanged since imported, events
    left by earlier runs), ``add`` every batch, then ``finish``.
    """

    def __init__(self, options: RunOptions, pipeline: Pipeline) -> None:
        self.options = options
        self.identity = pipeline.mapping.identity
        self.plan = SendPlan()
        known = (Path(options.state_dir) / "journal.sqlite").exists() and not options.force
        self.journal = Journal(options.state_dir) if known else None
        self.skip: set[str] = set()  # files a run would not read
        self.pending: list[tuple[int, int, str, int | None, str | None, str, str | None]] = []
        self.reread = 0
        try:
            if self.journal is not None and options.incremental:
                _, done = split_done(self.journal, pipeline.sources)
                self.plan.files_skipped = len(done)
                self.skip = {s.path for s in done}
            # Leftovers whose rows are read again are sent once, as events of their file: counted there.
            if self.journal is not None and options.retry_leftovers:
                self.pending = self.journal.pending(
                    include_terminal=options.retry_terminal, include_held=options.on_timeout == "retry"
                )
        except BaseException:
            self.close()
            raise
        self.left_k1 = np.array([row[0] for row in self.pending], dtype=np.int64)

    def add(self, prepared: PreparedBatch) -> None:
        if prepared.source.path in self.skip:
            return
        plan = self.plan
        events, before = since(prepared.events, self.options)
        plan.before_since += before
        if not events.num_rows:
            return
        k1, k2 = event_keys(events, self.identity)
        if self.journal is None:
            plan.to_send += len(k1)
            return
        known = Known.of(self.journal, k1, k2, self.options)
        plan.already_sent += int(known.sent.sum())
        plan.refused_before += int(known.refused.sum())
        plan.possibly_sent_before += int(known.held.sum())
        keep = known.to_send
        plan.to_send += int(keep.sum())
        if len(self.left_k1):
            self.reread += int(np.isin(k1[keep], self.left_k1).sum())

    def finish(self) -> SendPlan:
        self.close()
        self.plan.leftovers = max(0, len(self.pending) - self.reread)
        self.plan.to_send += self.plan.leftovers
        return self.plan

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()
            self.journal = None
