"""Events ready to send: their journal key, payload, origin and endpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

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


def endpoint(kind: str | None, body: dict[str, Any] | None = None) -> str:
    """Where an event goes, from its type (the mapping's ``_type`` column, or the journal's copy of it):
    ``percent`` events go to media-played-percent. Without a recorded type (journals and results files
    of older versions), the parsed payload says it: only percent events have a ``playedPercent`` field."""
    if kind is None and body is not None:
        kind = "percent" if "playedPercent" in body else "played"
    return PERCENT_PATH if kind == "percent" else PLAYED_PATH


def external_id_of(payload: bytes) -> str | None:
    value = json.loads(payload).get("externalId")
    return None if value is None else str(value)


def kind_of(path: str) -> str:
    """The type recorded in the journal for an endpoint."""
    return "percent" if path == PERCENT_PATH else "played"


def session_of(body: dict[str, Any]) -> str | None:
    value = body.get("sessionId")
    return None if value is None else str(value)
