"""What the simulator remembers: accepted events (memory + optional JSON Lines) and counters."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping
from typing import IO, Any

from importer.simulator.faults import FAULT_KINDS
from importer.simulator.limits import DAILY, TEN_SECONDLY

MAX_DUPLICATE_KEYS = 100
DEFAULT_PAGE = 10_000


class EventStore:
    """Accepted events in arrival order. Each record::

    {"index": 0, "endpoint": "media-played", "receivedAtMs": 1700000000000,
     "event": {...the request body as sent...}, "response": {...the 200 body...}}
    """

    def __init__(self, record_path: str | None) -> None:
        self._events: list[dict[str, Any]] = []
        self._keys: set[tuple[object, ...]] = set()
        self.duplicates = 0
        self.duplicate_keys: list[list[object]] = []
        self._file: IO[str] | None = open(record_path, "a", encoding="utf-8") if record_path else None  # noqa: SIM115

    def __len__(self) -> int:
        return len(self._events)

    def add(
        self, endpoint: str, event: Mapping[str, Any], response: Mapping[str, Any], key: tuple[object, ...]
    ) -> None:
        if key in self._keys:
            self.duplicates += 1
            if len(self.duplicate_keys) < MAX_DUPLICATE_KEYS:
                self.duplicate_keys.append(list(key))
        else:
            self._keys.add(key)
        record = {
            "index": len(self._events),
            "endpoint": endpoint,
            "receivedAtMs": int(time.time() * 1000),
            "event": dict(event),
            "response": dict(response),
        }
        self._events.append(record)
        if self._file is not None:
            # One flushed line per event: the file is complete up to the last 200 even after a kill.
            self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
            self._file.flush()

    def query(self, filters: Mapping[str, str]) -> tuple[list[dict[str, Any]], int | None]:
        """(matching records, index to continue from or None when all were scanned).

        Filters: ``since`` (first index to look at), ``limit``, ``endpoint``, ``contactId`` (sent
        or resolved from contactUtk) and any other event field compared as text (sessionId,
        state, externalId, occurredTimestamp...). Raises ``ValueError`` on a bad since/limit.
        """
        since = int(filters.get("since", 0))
        limit = int(filters.get("limit", DEFAULT_PAGE))
        if since < 0 or limit <= 0:
            raise ValueError("since must be >= 0 and limit > 0")
        wanted = {k: v for k, v in filters.items() if k not in ("since", "limit")}
        out: list[dict[str, Any]] = []
        for index in range(since, len(self._events)):
            if len(out) >= limit:
                return out, index
            record = self._events[index]
            if all(_matches(record, k, v) for k, v in wanted.items()):
                out.append(record)
        return out, None

    def reset(self) -> None:
        self._events.clear()
        self._keys.clear()
        self.duplicates = 0
        self.duplicate_keys.clear()
        if self._file is not None:
            # The file mirrors the memory, so a reset empties it too.
            self._file.seek(0)
            self._file.truncate()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _text(value: object) -> str:
    return json.dumps(value) if isinstance(value, bool) or value is None else str(value)


def _matches(record: Mapping[str, Any], name: str, wanted: str) -> bool:
    if name == "endpoint":
        return bool(record["endpoint"] == wanted)
    if name == "contactId":
        return wanted in (_text(record["event"].get("contactId")), _text(record["response"].get("contactId")))
    return name in record["event"] and _text(record["event"][name]) == wanted


class Stats:
    """Counters of everything outside /__sim/."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests_total = 0
        self.by_status: Counter[int] = Counter()
        self.rate_limited: Counter[str] = Counter({TEN_SECONDLY: 0, DAILY: 0})
        self.faults: Counter[str] = Counter(dict.fromkeys(FAULT_KINDS, 0))
        self.abandoned = 0  # the client left before its answer was decided
        self.in_flight = 0
        self.max_in_flight = 0
        self.tokens_issued = 0

    def enter(self) -> None:
        self.requests_total += 1
        self.in_flight += 1
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight

    def leave(self, status: int | None) -> None:
        self.in_flight -= 1
        if status is not None:
            self.by_status[status] += 1

    def to_json(self, store: EventStore, daily_used: int, window_used: int) -> dict[str, object]:
        return {
            "requests_total": self.requests_total,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "rate_limited": dict(self.rate_limited),
            "faults": dict(self.faults),
            "abandoned": self.abandoned,
            "accepted_events": len(store),
            "duplicates": store.duplicates,
            "duplicate_keys": store.duplicate_keys,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "daily_used": daily_used,
            "window_used": window_used,
            "tokens_issued": self.tokens_issued,
        }
