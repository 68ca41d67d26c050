"""The media id map: externalId → the HubSpot media object's id, in the journal's database.

A row is written as soon as HubSpot answers a create (or a listing finds the object), in its own
transaction, so a sync killed at any point loses at most the answers in flight; the next sync
lists the account's objects before creating anything and finds those. ``digest`` is a hash of the
properties last sent, so ``media sync --update`` knows which objects changed.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from importer.hubspot.media import MediaRecord

_SCHEMA = """CREATE TABLE IF NOT EXISTS media_objects (
    external_id TEXT PRIMARY KEY, media_type TEXT, object_id INTEGER NOT NULL, digest TEXT,
    synced_at REAL NOT NULL) WITHOUT ROWID"""


class MediaMap:
    """externalId → object id (and the digest of what was sent), for one state directory."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.db.execute(_SCHEMA)

    def record(self, records: Iterable[MediaRecord]) -> None:
        rows = [(r.external_id, r.media_type, r.object_id, r.digest, time.time()) for r in records]
        if not rows:
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            # A listed object (digest unknown) never overwrites the digest of one this importer sent.
            self.db.executemany(
                "INSERT INTO media_objects(external_id, media_type, object_id, digest, synced_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(external_id) DO UPDATE SET object_id=excluded.object_id, "
                "media_type=coalesce(excluded.media_type, media_type), digest=coalesce(excluded.digest, digest), "
                "synced_at=excluded.synced_at",
                rows,
            )
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def lookup(self, external_ids: pa.Array) -> tuple[pa.Array, pa.Array]:
        """Per externalId: the object id (null: unknown) and the digest last sent, read in chunks."""
        wanted = pc.unique(external_ids.drop_null()).to_pylist()
        keys: list[str] = []
        ids: list[int] = []
        digests: list[str | None] = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT external_id, object_id, digest FROM media_objects WHERE external_id IN ({marks})"
            for key, object_id, digest in self.db.execute(query, chunk):
                keys.append(key)
                ids.append(object_id)
                digests.append(digest)
        at = pc.index_in(external_ids, value_set=pa.array(keys, pa.string()))
        return pc.take(pa.array(ids, pa.int64()), at), pc.take(pa.array(digests, pa.string()), at)

    def count(self) -> int:
        row = self.db.execute("SELECT count(*) FROM media_objects").fetchone()
        return int(row[0])
