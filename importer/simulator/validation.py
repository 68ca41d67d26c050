"""The Media Bridge event rules, written from /work/shared/hubspot-media-bridge.md alone.

Deliberately independent of ``importer.mapping.validate``: if both sides shared code, a misread rule
would pass on both and only fail against HubSpot.

Choices where HubSpot's docs are silent (the importer should not send these anyway):
- JSON ``null`` counts as an absent field (Jackson, behind HubSpot's API, reads it so);
- int64 fields must be JSON integers: ``"123"`` and ``123.0`` are type errors;
- identifier strings (sessionId, contactUtk, externalId, pageUrl, pageName) must not be blank;
- every problem of an event is reported, one ``errors`` item each, not only the first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MEDIA_TYPES = ("VIDEO", "AUDIO", "DOCUMENT", "OTHER", "IMAGE")
STATES = ("STARTED", "VIEWED")
PLAY_CONTEXTS = ("EMAIL", "EXTERNAL_PAGE")
PERCENTS = (0, 25, 50, 75, 100)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_BATCH_INPUTS = 100

MEDIA_PLAYED = "media-played"
MEDIA_PLAYED_PERCENT = "media-played-percent"


@dataclass(frozen=True, slots=True)
class FieldError:
    message: str
    code: str
    field: str
    allowed: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        context: dict[str, list[str]] = {"field": [self.field]}
        if self.allowed:
            context["allowedValues"] = list(self.allowed)
        return {"message": self.message, "code": self.code, "context": context}


# kind: "string", "id" (non-blank string), "int64", "percent", or an enum tuple
_COMMON: dict[str, object] = {
    "mediaType": MEDIA_TYPES,
    "sessionId": "id",
    "occurredTimestamp": "int64",
    "contactId": "int64",
    "contactUtk": "id",
    "_hsenc": "string",
    "mediaBridgeId": "int64",
    "externalId": "id",
    "mediaUrl": "string",
    "mediaName": "string",
    "pageId": "int64",
    "pageUrl": "id",
    "pageName": "id",
    "iframeUrl": "string",
    "externalPlayContext": PLAY_CONTEXTS,
}
FIELDS: dict[str, dict[str, object]] = {
    MEDIA_PLAYED: {**_COMMON, "state": STATES},
    MEDIA_PLAYED_PERCENT: {**_COMMON, "playedPercent": "percent"},
}
REQUIRED: dict[str, tuple[str, ...]] = {
    MEDIA_PLAYED: ("mediaType", "sessionId", "occurredTimestamp", "state"),
    MEDIA_PLAYED_PERCENT: ("mediaType", "sessionId", "occurredTimestamp", "playedPercent"),
}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_field(name: str, kind: object, value: object) -> FieldError | None:
    if isinstance(kind, tuple):
        if not isinstance(value, str) or value not in kind:
            return FieldError(f"{name} must be one of {', '.join(kind)}, got {value!r}", "INVALID_ENUM", name, kind)
        return None
    if kind in ("string", "id"):
        if not isinstance(value, str):
            return FieldError(f"{name} must be a string, got {type(value).__name__}", "INVALID_TYPE", name)
        if kind == "id" and not value.strip():
            return FieldError(f"{name} must not be blank", "INVALID_VALUE", name)
        return None
    if kind == "int64":
        if not _is_int(value):
            return FieldError(
                f"{name} must be an integer (int64), got {type(value).__name__} {value!r}",
                "INVALID_TYPE",
                name,
            )
        assert isinstance(value, int)
        if not INT64_MIN <= value <= INT64_MAX:
            return FieldError(f"{name} is out of the int64 range", "INVALID_TYPE", name)
        return None
    assert kind == "percent"
    if not _is_int(value) or value not in PERCENTS:
        return FieldError(
            f"{name} must be one of {', '.join(map(str, PERCENTS))}, got {value!r}", "INVALID_VALUE", name
        )
    return None


def validate_event(kind: str, event: object) -> list[FieldError]:
    """Every reason ``event`` (a parsed JSON body) is not a valid ``kind`` event; empty when valid."""
    if not isinstance(event, dict):
        return [FieldError("the body must be a JSON object", "INVALID_JSON", "")]
    fields = FIELDS[kind]
    errors: list[FieldError] = []
    for name, value in event.items():
        if name not in fields:
            errors.append(FieldError(f"unknown field {name!r}", "UNKNOWN_FIELD", str(name)))
        elif value is not None:
            problem = _check_field(name, fields[name], value)
            if problem is not None:
                errors.append(problem)
    present = {k for k, v in event.items() if v is not None}
    errors.extend(FieldError(f"{name} is required", "REQUIRED", name) for name in REQUIRED[kind] if name not in present)
    if not present & {"contactId", "contactUtk"}:
        errors.append(FieldError("a contact needs contactId or contactUtk", "MISSING_CONTACT", "contactId"))
    if not present & {"mediaBridgeId", "externalId"}:
        errors.append(FieldError("media needs mediaBridgeId or externalId", "MISSING_MEDIA", "mediaBridgeId"))
    if "pageId" not in present:
        for have, lack in (("pageUrl", "pageName"), ("pageName", "pageUrl")):
            if have in present and lack not in present:
                errors.append(
                    FieldError(
                        f"{have} without {lack}: a page is pageId, or pageUrl with pageName",
                        "INCOMPLETE_PAGE",
                        lack,
                    )
                )
    return errors


def derived_id(namespace: str, text: str) -> int:
    """A stable positive id for a string identifier (what HubSpot would look up)."""
    digest = hashlib.sha256(f"{namespace}:{text}".encode()).digest()
    return 100_000_000 + int.from_bytes(digest[:6], "big") % 900_000_000


def echo_event(kind: str, event: Mapping[str, Any], portal_id: int, app_id: int) -> dict[str, object]:
    """The 200 body: the documented response fields, filled from a valid event."""
    contact_id = event.get("contactId")
    if contact_id is None:
        contact_id = derived_id("contact", event["contactUtk"])
    media_id = event.get("mediaBridgeId")
    if media_id is None:
        media_id = derived_id("media", event["externalId"])
    type_id = f"2-{app_id}"
    out: dict[str, object] = {
        "contactId": contact_id,
        "mediaBridgeId": media_id,
        "mediaBridgeObjectCoordinates": f"{portal_id}:{type_id}:{media_id}",
        "mediaBridgeObjectTypeId": type_id,
        "mediaName": event.get("mediaName") or f"Media {event.get('externalId') or media_id}",
        "mediaType": event["mediaType"],
        "occurredTimestamp": event["occurredTimestamp"],
        "portalId": portal_id,
        "providerId": app_id,
        "sessionId": event["sessionId"],
    }
    if kind == MEDIA_PLAYED:
        out["state"] = event["state"]
    else:
        out["playedPercent"] = event["playedPercent"]
    for name in ("externalPlayContext", "iframeUrl", "mediaUrl", "pageId", "pageName", "pageUrl"):
        if event.get(name) is not None:
            out[name] = event[name]
    if event.get("pageId") is not None:
        out["pageObjectCoordinates"] = f"{portal_id}:0-page:{event['pageId']}"
    return out


def event_key(kind: str, event: Mapping[str, Any]) -> tuple[object, ...]:
    """What makes two events "the same play" for duplicate counting."""
    step = event["state"] if kind == MEDIA_PLAYED else event["playedPercent"]
    return (kind, event["sessionId"], step, event["occurredTimestamp"])


def batch_read_problems(body: object) -> tuple[list[FieldError], list[str], str | None]:
    """Checks a contacts batch-read body: (errors, input ids, idProperty)."""
    if not isinstance(body, dict):
        return [FieldError("the body must be a JSON object", "INVALID_JSON", "")], [], None
    errors: list[FieldError] = []
    id_property = body.get("idProperty")
    if id_property is not None and id_property not in ("email", "hs_object_id"):
        errors.append(FieldError(f"idProperty {id_property!r} is not supported here", "INVALID_VALUE", "idProperty"))
    inputs = body.get("inputs")
    ids: list[str] = []
    if not isinstance(inputs, list):
        errors.append(FieldError("inputs must be a list of {id}", "REQUIRED", "inputs"))
    else:
        if len(inputs) > MAX_BATCH_INPUTS:
            errors.append(
                FieldError(
                    f"Too many inputs: {len(inputs)}, at most {MAX_BATCH_INPUTS} per batch",
                    "TOO_MANY",
                    "inputs",
                )
            )
        for i, item in enumerate(inputs):
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                errors.append(FieldError(f"inputs[{i}] must be {{'id': string}}", "INVALID_TYPE", "inputs"))
            else:
                ids.append(item["id"])
    properties = body.get("properties")
    if properties is not None and (not isinstance(properties, list) or not all(isinstance(p, str) for p in properties)):
        errors.append(FieldError("properties must be a list of strings", "INVALID_TYPE", "properties"))
    return errors, ids, id_property if isinstance(id_property, str) else None
