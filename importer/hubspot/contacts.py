"""Contact resolution through HubSpot: emails → contact ids, cached in the state directory.

A mapping asks for it with a lookup whose ``source`` is ``hubspot``::

    lookups:
      crm: {source: hubspot}                 # keyed by email
    fields:
      contactId: {lookup: crm, match: email, get: contactId}

Before sending, ``run`` reads the inputs once for the distinct emails the
mapping would look up (the same read gathers the media: ``importer.run.prepass``),
asks HubSpot for those not in the cache (``POST /crm/v3/objects/contacts/batch/read``,
100 emails a call, through the same rate limiter as the events), and stores every answer — found or not — so
a rerun asks nothing twice. A "not found" answer is asked again once it is
older than ``run --recheck-contacts`` hours (default 24): the contact may have
been created since. The cache then serves as an ordinary lookup table. An
email HubSpot does not know gives a results record ("contact not found in
HubSpot"), not a crash. ``check`` uses the cache only.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc

from importer.errors import TerminalError
from importer.hubspot.sender import Sender
from importer.mapping.lookups import LoadedLookup
from importer.mapping.plan import Plan
from importer.mapping.spec import LookupTable, Mapping, top_columns
from importer.mapping.values import Frame, evaluate
from importer.source.readers import SourceFile

BATCH_READ_PATH = "/crm/v3/objects/contacts/batch/read"
BATCH_SIZE = 100  # HubSpot's object API batch limit
NOT_FOUND = "contact not found in HubSpot"
NOT_RESOLVED = "contact not in the HubSpot cache (run asks HubSpot, check reads only the cache)"
_SCHEMA = """CREATE TABLE IF NOT EXISTS contacts (
    email TEXT PRIMARY KEY, contact_id INTEGER, resolved_at REAL NOT NULL) WITHOUT ROWID"""


class ContactCache:
    """Email → contact id (None: HubSpot said not found), in the journal's database."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.db.execute(_SCHEMA)

    def missing(self, emails: Iterable[str], recheck_after_s: float | None = None) -> list[str]:
        """The emails to ask HubSpot for: never asked, or answered "not found" over ``recheck_after_s`` ago."""
        wanted = sorted(set(emails))
        cutoff = float("-inf") if recheck_after_s is None else time.time() - recheck_after_s
        known: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = (
                f"SELECT email FROM contacts WHERE email IN ({marks}) AND (contact_id IS NOT NULL OR resolved_at >= ?)"
            )
            known.update(r[0] for r in self.db.execute(query, [*chunk, cutoff]))
        return [e for e in wanted if e not in known]

    def store(self, answers: dict[str, int | None]) -> None:
        now = time.time()
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT INTO contacts(email, contact_id, resolved_at) VALUES (?, ?, ?) "
            "ON CONFLICT(email) DO UPDATE SET contact_id=excluded.contact_id, resolved_at=excluded.resolved_at",
            [(email, cid, now) for email, cid in answers.items()],
        )
        self.db.execute("COMMIT")

    def as_lookup(self, spec: LookupTable, miss_reason: str) -> LoadedLookup:
        """The cache as a lookup table; emails HubSpot said it does not know are named as such."""
        rows = self.db.execute("SELECT email, contact_id FROM contacts").fetchall()
        found = [(e, c) for e, c in rows if c is not None]
        keys = pa.array([e for e, _ in found], pa.string())
        ids = pa.array([str(c) for _, c in found], pa.string())
        loaded = LoadedLookup(spec, keys, {"contactId": ids})
        loaded.miss_reason = miss_reason
        loaded.known_missing = pa.array([e for e, c in rows if c is None], pa.string())
        loaded.known_missing_reason = NOT_FOUND
        return loaded


class Inputs(Protocol):
    """What contact resolution needs of a run's pipeline (imports point down the flow, not up to run/)."""

    mapping: Mapping
    plan: Plan
    sources: list[SourceFile]


def hubspot_lookups(pipeline: Inputs) -> list[str]:
    return [name for name, spec in pipeline.mapping.lookups.items() if spec.source == "hubspot"]


class EmailFinder:
    """The distinct, normalised emails the mapping would look up in one hubspot lookup, batch by batch."""

    def __init__(self, pipeline: Inputs, name: str) -> None:
        self.name = name
        self.matches = [e.items[0] for e in pipeline.plan.lookup_exprs(name)]
        self.lookup = pipeline.plan.lookups[name]
        self.found: set[str] = set()

    def columns(self) -> set[str]:
        """The top-level input columns the lookups' match values read."""
        return top_columns(self.matches)

    def add(self, frame: Frame) -> None:
        for match in self.matches:
            keys = pc.unique(self.lookup.normalise(evaluate(match, frame).values)).drop_null()
            self.found.update(keys.to_pylist())


def install_cached(pipeline: Inputs, db: sqlite3.Connection, miss_reason: str = NOT_RESOLVED) -> None:
    """Serve every hubspot lookup of the pipeline from the cache."""
    cache = ContactCache(db)
    for name in hubspot_lookups(pipeline):
        pipeline.plan.lookups[name] = cache.as_lookup(pipeline.mapping.lookups[name], miss_reason)


async def resolve(emails: list[str], sender: Sender, cache: ContactCache) -> int:
    """Ask HubSpot for ``emails`` in batches of 100; store every answer. Returns the calls made."""
    calls = 0
    for start in range(0, len(emails), BATCH_SIZE):
        chunk = emails[start : start + BATCH_SIZE]
        body = {"idProperty": "email", "inputs": [{"id": e} for e in chunk], "properties": ["email"]}
        outcome, response = await sender.exchange(BATCH_READ_PATH, json.dumps(body).encode())
        calls += 1
        if response is None:
            raise TerminalError(
                f"contact resolution failed (HTTP {outcome.http_status}): {outcome.error}",
                hint="the token needs the crm.objects.contacts.read scope; rerun to resume",
            )
        cache.store(_answers(chunk, response.json()))
    return calls


def _answers(asked: list[str], body: object) -> dict[str, int | None]:
    """Every asked email: its id from ``results``, or None (a 207 lists the rest as not found)."""
    answers: dict[str, int | None] = dict.fromkeys(asked)
    # HubSpot compares emails without case and answers in its own spelling.
    by_lower: dict[str, list[str]] = {}
    for email in asked:
        by_lower.setdefault(email.lower(), []).append(email)
    results = body.get("results", []) if isinstance(body, dict) else []
    for item in results:
        props = item.get("properties") or {}
        email = str(props.get("email") or item.get("id") or "").strip().lower()
        try:
            cid = int(item["id"])
        except (KeyError, TypeError, ValueError):
            continue
        for spelling in by_lower.get(email, []):
            answers[spelling] = cid
    return answers
