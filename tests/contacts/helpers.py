"""Helpers for the contact-resolution and quartile-event tests: ``media-import`` in this process,
a recording proxy in front of the simulator, and readers for what a run left behind.

Expected values are worked out here from the generated rows (normalised emails, quartiles reached,
epoch milliseconds) with plain Python, never through the importer's own code.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support import Cli, Ran, Reply, SimulatorProxy, ms, results_rows, summary_of

from importer.simulator import Simulator

BATCH_READ = "/crm/v3/objects/contacts/batch/read"
PLAYED = "media-played"
PERCENT = "media-played-percent"
NOT_FOUND = "contact not found in HubSpot"
NOT_CACHED = "not in the HubSpot cache"
CONTACTS_READ = "crm.objects.contacts.read"

CRM_MAPPING = """\
lookups:
  crm: {source: hubspot}
fields:
  sessionId: session_id
  mediaType: {const: VIDEO}
  contactId: {lookup: crm, match: email, get: contactId}
  externalId: video_id
events:
  - state: STARTED
    timestamp: started_at
"""


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def touch(path: Path) -> None:
    """Give a file a new modification time: a later run reads it again instead of skipping it."""
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


def cached_contacts(state_dir: Path) -> dict[str, int | None]:
    """The state directory's contact cache, read with sqlite3 directly."""
    db = sqlite3.connect(f"file:{state_dir / 'journal.sqlite'}?mode=ro", uri=True)
    try:
        return {email: cid for email, cid in db.execute("SELECT email, contact_id FROM contacts")}
    finally:
        db.close()


def sim_events(sim: Simulator, endpoint: str | None = None) -> list[dict[str, Any]]:
    """Accepted event bodies, oldest first (only ``endpoint``'s when given)."""
    records = sim.client.events(endpoint=endpoint) if endpoint else sim.client.events()
    return [r["event"] for r in records]


@dataclass
class Seen:
    path: str
    body: Any


class RecordingProxy(SimulatorProxy):
    """A loopback HTTP proxy in front of the simulator that keeps every request it passes on.

    The simulator counts requests but keeps only the events it accepted; this also keeps the
    contact batch-read bodies, so a test can say exactly which emails were asked, in which call.
    """

    def __init__(self, sim: Simulator) -> None:
        self.seen: list[Seen] = []
        super().__init__(sim)

    def intercept(self, path: str, raw: bytes) -> Reply | None:
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        self.seen.append(Seen(path, body))
        return None

    def batch_reads(self) -> list[list[str]]:
        """The emails asked in each contacts batch-read call, in order; checks each body's shape."""
        with self._lock:
            calls = [s.body for s in self.seen if s.path == BATCH_READ]
        out = []
        for body in calls:
            assert body["idProperty"] == "email", body
            out.append([item["id"] for item in body["inputs"]])
        return out


__all__ = ["Cli", "Ran", "Reply", "SimulatorProxy", "ms", "results_rows", "summary_of"]
