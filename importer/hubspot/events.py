"""Events ready to send, and the ones a results file hands back to ``retry``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from importer.hubspot.sender import PERCENT_PATH, PLAYED_PATH


@dataclass
class Event:
    """One event ready to send."""

    k1: int
    k2: int
    payload: bytes
    source: str
    fingerprint: str
    row: int | None
    state: str | None
    session: str | None
    path: str = PLAYED_PATH
    hold: str | None = None  # not sent in this run: its media object could not be created (HubSpot's reason)


def path_of(payload: str) -> str:
    """Where an event goes: media-played-percent events carry playedPercent."""
    return PERCENT_PATH if '"playedPercent":' in payload else PLAYED_PATH


def session_of(payload: str) -> str | None:
    value = json.loads(payload).get("sessionId")
    return None if value is None else str(value)


def external_id_of(payload: bytes) -> str | None:
    value = json.loads(payload).get("externalId")
    return None if value is None else str(value)


def events_from_results(path: str | Path, possibly_sent: bool = False) -> list[Event]:
    """The failed / not_sent events of a results file, to send again; with ``possibly_sent`` also
    those whose requests got no answer (sending them again risks a duplicate)."""
    from importer.state.identity import event_keys as _keys
    from importer.state.identity import key_ints
    from importer.state.results import read_results

    table = read_results(path)
    statuses = ["failed", "not_sent", *(["possibly_sent"] if possibly_sent else [])]
    mask = pc.is_in(table.column("status"), value_set=pa.array(statuses))
    table = table.filter(mask)
    table = table.filter(pc.is_valid(table.column("payload")))
    out: list[Event] = []
    if table.num_rows == 0:
        return out
    payloads = table.column("payload").to_pylist()
    sessions, states = [], []
    for p in payloads:
        body = json.loads(p)
        sessions.append(body.get("sessionId"))
        states.append(body.get("state"))
    keyed = pa.table({"sessionId": pa.array(sessions, pa.string()), "state": pa.array(states, pa.string())})
    k1, k2 = _keys(keyed, ("sessionId", "state"))
    given = table.column("event_key").to_pylist()
    sources = table.column("source_file").to_pylist()
    rows = table.column("row_number").to_pylist()
    for i, p in enumerate(payloads):
        # The key the run journaled under; sessionId + state when the file does not carry it.
        a, b = key_ints(given[i]) if given[i] else (int(k1[i]), int(k2[i]))
        out.append(Event(a, b, p.encode(), sources[i] or "", "", rows[i], states[i], sessions[i], path_of(p)))
    return out
