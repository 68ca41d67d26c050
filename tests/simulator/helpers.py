"""Small helpers for the simulator tests: a valid event, and requests against a simulator."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from importer.simulator import Simulator

PLAYED = "/media-bridge/v1/events/media-played"
PERCENT = "/media-bridge/v1/events/media-played-percent"
CONTACTS = "/crm/v3/objects/contacts/batch/read"
TOKEN_URL = "/oauth/v1/token"
LIMIT_HEADERS = (
    "X-HubSpot-RateLimit-Max",
    "X-HubSpot-RateLimit-Remaining",
    "X-HubSpot-RateLimit-Interval-Milliseconds",
)
DAILY_HEADERS = ("X-HubSpot-RateLimit-Daily", "X-HubSpot-RateLimit-Daily-Remaining")


def event(**changes: Any) -> dict[str, Any]:
    """A valid media-played event; ``field=None`` removes a field."""
    base: dict[str, Any] = {
        "mediaType": "VIDEO",
        "sessionId": "session-1",
        "occurredTimestamp": 1_700_000_000_000,
        "state": "STARTED",
        "contactId": 101,
        "externalId": "video-1",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def percent_event(**changes: Any) -> dict[str, Any]:
    body = event(state=None, playedPercent=50)
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post(sim: Simulator, path: str = PLAYED, body: Any = None, token: str | None = "", **kw: Any) -> httpx.Response:
    """POST JSON with the simulator's token (``token=None``: no Authorization header)."""
    headers = {} if token is None else auth(token or sim.token)
    return httpx.post(sim.url + path, json=event() if body is None else body, headers=headers, **kw)


def is_uuid(text: object) -> bool:
    try:
        uuid.UUID(str(text))
    except ValueError:
        return False
    return True


def assert_error_shape(body: dict[str, Any], category: str) -> None:
    """HubSpot's error body: status, message, correlationId (a uuid) and category."""
    assert body["status"] == "error"
    assert isinstance(body["message"], str) and body["message"]
    assert is_uuid(body["correlationId"])
    assert body["category"] == category
