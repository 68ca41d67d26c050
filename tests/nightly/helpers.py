"""Helpers for the nightly-run tests: generated inputs and the events they must give, what the
simulator received, the journal's manifest, and a proxy that answers 400 for chosen events."""

from __future__ import annotations

import io
import json
import os
import sqlite3
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
from support import Reply, SimulatorProxy, generator, summary_of

from importer.simulator import Simulator

REPO = Path(__file__).resolve().parents[2]
MAPPING = REPO / "mappings" / "generic.yaml"
Key = tuple[str, str]


def canonical(rows: int, *, seed: int, prefix: str) -> pa.Table:
    """Canonical rows, every one valid, with session ids ``{prefix}-0``, ``{prefix}-1``…"""
    table: pa.Table = generator().canonical(rows, seed=seed, invalid_every=0, prefix=prefix)
    return table


def write(table: pa.Table, path: Path) -> Path:
    generator().write(table, path)
    return path


def append_rows(path: Path, table: pa.Table) -> None:
    """Append ``table`` to a CSV file as real data rows (same columns, no second header)."""
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False))
    with open(path, "ab") as fh:
        fh.write(buf.getvalue())


def iso_ms(text: str) -> int:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def ms_iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def timed_events(*tables: pa.Table) -> dict[Key, int]:
    """What generic.yaml makes of canonical rows, worked out here on its own: a STARTED event at
    started_at for every row, and a VIEWED event at viewed_at when there is one."""
    out: dict[Key, int] = {}
    for table in tables:
        rows = zip(
            table.column("session_id").to_pylist(),
            table.column("started_at").to_pylist(),
            table.column("viewed_at").to_pylist(),
            strict=True,
        )
        for session, started, viewed in rows:
            out[(session, "STARTED")] = iso_ms(started)
            if viewed:
                out[(session, "VIEWED")] = iso_ms(viewed)
    return out


def expected(*tables: pa.Table) -> set[Key]:
    return set(timed_events(*tables))


def received(sim: Simulator) -> Counter[Key]:
    """How many times the simulator accepted each (sessionId, state)."""
    return Counter((str(r["event"]["sessionId"]), str(r["event"]["state"])) for r in sim.client.events())


def assert_received_once(sim: Simulator, want: set[Key]) -> None:
    got = received(sim)
    missing = want - set(got)
    extra = set(got) - want
    twice = {k: n for k, n in got.items() if n > 1}
    assert not missing, f"{len(missing)} events never arrived, e.g. {sorted(missing)[:3]}"
    assert not extra, f"{len(extra)} unexpected events arrived, e.g. {sorted(extra)[:3]}"
    assert not twice, f"{len(twice)} events arrived more than once, e.g. {sorted(twice.items())[:3]}"


def requests_made(sim: Simulator) -> int:
    return int(sim.client.stats()["requests_total"])


def query(state_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    """Read the journal directly (not through importer.state.journal)."""
    db = sqlite3.connect(f"file:{state_dir / 'journal.sqlite'}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def manifest(state_dir: Path) -> dict[str, int]:
    """path -> complete flag of every file in the manifest."""
    return {str(p): int(c) for p, c in query(state_dir, "SELECT path, complete FROM files")}


def scramble(path: Path, *, keep_header: bool) -> None:
    """Overwrite a file's bytes (its body, or all of it) with other bytes: same size, same mtime.

    A run that skips the file by its manifest entry does not notice; a run that reads any of the
    overwritten bytes meets a broken file.
    """
    st = os.stat(path)
    data = path.read_bytes()
    start = data.index(b"\n") + 1 if keep_header else 0
    junk = bytes(b"\x00\xff"[i % 2] for i in range(len(data) - start))
    path.write_bytes(data[:start] + junk)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(path).st_size == st.st_size and os.stat(path).st_mtime_ns == st.st_mtime_ns


class RejectingProxy(SimulatorProxy):
    """A loopback HTTP proxy in front of the simulator that answers HubSpot's 400 for chosen events.

    The simulator's validation mirrors HubSpot's, so an event the importer thinks valid is never
    refused there; this stands in for a refusal only HubSpot knows about (e.g. a media object that
    does not exist). Every other request is passed through unchanged.
    """

    def __init__(self, sim: Simulator, reject: Iterable[Key] = ()) -> None:
        self.reject: set[Key] = set(reject)
        self.rejected: Counter[Key] = Counter()
        super().__init__(sim)

    def intercept(self, path: str, raw: bytes) -> Reply | None:
        try:
            event = json.loads(raw)
            key: Key | None = (str(event.get("sessionId")), str(event.get("state")))
        except (ValueError, AttributeError):
            key = None
        if key is None or key not in self.reject:
            return None
        self.rejected[key] += 1
        answer = {
            "status": "error",
            "message": "Media object not found for externalId",
            "category": "VALIDATION_ERROR",
            "correlationId": "00000000-0000-4000-8000-000000000400",
        }
        return 400, json.dumps(answer).encode(), {"Content-Type": "application/json"}


__all__ = ["Reply", "SimulatorProxy", "generator", "summary_of"]
