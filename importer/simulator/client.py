"""A small client for the simulator's inspection endpoints (/__sim/...); they need no token."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx


def _jsonable(value: object) -> object:
    """Scope sets in ``configure(tokens=...)`` become lists; everything else is left alone."""
    if isinstance(value, set | frozenset):
        return sorted(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class SimulatorClient:
    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout)

    def _json(self, response: httpx.Response) -> Any:
        if response.status_code != 200:
            raise ValueError(f"simulator answered {response.status_code}: {response.text}")
        return response.json()

    def events(self, **filters: str | int | bool) -> list[dict[str, Any]]:
        """Accepted events, oldest first, each ``{"index", "endpoint", "receivedAtMs", "event", "response"}``.

        Filters: ``sessionId``, ``state``, ``contactId``, ``endpoint``, any other event field,
        ``since`` (first index) and ``limit``. Without ``limit`` every match is fetched, page by page.
        """
        params = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in filters.items()}
        limit = int(params["limit"]) if "limit" in params else None
        out: list[dict[str, Any]] = []
        while True:
            page = self._json(self._http.get("/__sim/events", params=params))
            out.extend(page["events"])
            if page["next"] is None or (limit is not None and len(out) >= limit):
                return out[:limit] if limit is not None else out
            params["since"] = str(page["next"])

    def stats(self) -> dict[str, Any]:
        """Counters: requests_total, by_status {"200": n, ...}, rate_limited {policy: n},
        faults {kind: n}, accepted_events, duplicates, duplicate_keys, abandoned, in_flight,
        max_in_flight, daily_used, window_used, tokens_issued."""
        stats: dict[str, Any] = self._json(self._http.get("/__sim/stats"))
        return stats

    def media(self, **filters: str) -> dict[str, Any]:
        """Media objects: ``{"total", "duplicate_external_ids", "requests" {route: n}, "objects" [...]}``;
        filter with ``externalId=``."""
        media: dict[str, Any] = self._json(self._http.get("/__sim/media", params=filters))
        return media

    def seed_media(
        self, objects: list[dict[str, Any]] | None = None, refuse: dict[str, str | None] | None = None
    ) -> dict[str, Any]:
        """Add objects that already exist (``{"mediaType", "id"?, "externalId"?, "title"?, ...}``) and/or
        make creates of some externalIds fail with a message (None: they succeed again)."""
        body = {"objects": objects or [], "refuse": refuse or {}}
        answer: dict[str, Any] = self._json(self._http.post("/__sim/media", json=body))
        return answer

    def reset(self) -> None:
        """Clear events, stats, the burst window and the daily quota (settings are kept)."""
        self._json(self._http.post("/__sim/reset"))

    def configure(self, **changes: object) -> dict[str, Any]:
        """Change settings of the running server (any ``SimulatorConfig`` field except host,
        port and record_path); returns the whole new config. ``ValueError`` if the server refuses."""
        config: dict[str, Any] = self._json(self._http.post("/__sim/config", json=_jsonable(changes)))
        return config

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = self._json(self._http.get("/__sim/config"))
        return config

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SimulatorClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
