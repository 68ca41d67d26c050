"""The naive baselines, written as a user would: pandas ``read_csv`` + ``iterrows``, a dict per
row, ``json.dumps``, and the rules of ``mappings/generic.yaml`` + HubSpot's validation in Python.

``row_events`` applies the same rules as the importer, so the ``check`` baseline (part A) counts
the same valid, invalid and duplicate events on the same input (``bench.run`` checks that on the
baseline slice).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections import Counter
from typing import Any

MEDIA_TYPE_MAP = {
    "video": "VIDEO",
    "audio": "AUDIO",
    "podcast": "AUDIO",
    "document": "DOCUMENT",
    "image": "IMAGE",
    "other": "OTHER",
}
MEDIA_TYPES = {"VIDEO", "AUDIO", "DOCUMENT", "OTHER", "IMAGE"}
INT_RE = re.compile(r"[+-]?[0-9]+(\.0*)?")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MIN_MS = 946_684_800_000  # 2000-01-01
DAY_MS = 86_400_000
INT64_MAX = 2**63 - 1


def clean(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def as_id(value: Any, name: str, errors: list[str]) -> int | None:
    text = clean(value)
    if text is None:
        return None
    if not INT_RE.fullmatch(text):
        errors.append(f"{name}: not an integer id")
        return None
    number = int(text.split(".")[0])
    if number > INT64_MAX:
        errors.append(f"{name}: not an integer id")
        return None
    if number < 1:
        errors.append(f"{name}: must be a positive id")
    return number


def as_ms(value: Any, errors: list[str]) -> int | None:
    text = clean(value)
    if text is None:
        return None
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        errors.append("occurredTimestamp: not a timestamp in the expected format")
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)  # the mapping's time zone
    return (when - EPOCH) // dt.timedelta(milliseconds=1)


def row_events(row: dict[str, Any], now_ms: int) -> list[tuple[str, dict[str, Any], list[str]]]:
    """(state, payload, errors) for each event of one row: STARTED, and VIEWED when viewed_at is set."""
    errors: list[str] = []
    media_type = clean(row["media_type"])
    if media_type is not None:
        media_type = MEDIA_TYPE_MAP.get(media_type.lower(), media_type).upper()
    fields = {
        "mediaType": media_type,
        "sessionId": clean(row["session_id"]),
        "contactId": as_id(row["contact_id"], "contactId", errors),
        "contactUtk": clean(row["contact_utk"]),
        "mediaBridgeId": as_id(row["media_bridge_id"], "mediaBridgeId", errors),
        "externalId": clean(row["external_id"]),
        "mediaUrl": clean(row["media_url"]),
        "mediaName": clean(row["media_name"]),
        "pageId": as_id(row["page_id"], "pageId", errors),
        "pageUrl": clean(row["page_url"]),
        "pageName": clean(row["page_name"]),
        "iframeUrl": clean(row["iframe_url"]),
    }
    if fields["sessionId"] is None:
        errors.append("sessionId: required field is missing")
    if media_type is None:
        errors.append("mediaType: required field is missing")
    elif media_type not in MEDIA_TYPES:
        errors.append("mediaType: not a media type")
    if fields["contactId"] is None and fields["contactUtk"] is None:
        errors.append("contactId: no contact")
    if fields["mediaBridgeId"] is None and fields["externalId"] is None:
        errors.append("externalId: no media")
    if fields["pageId"] is None and (fields["pageUrl"] is None) != (fields["pageName"] is None):
        errors.append("pageUrl: a page outside HubSpot needs both pageUrl and pageName")

    out = []
    rules = [("STARTED", row["started_at"])]
    if clean(row["viewed_at"]) is not None:
        rules.append(("VIEWED", row["viewed_at"]))
    for state, raw in rules:
        event_errors = list(errors)
        ms = as_ms(raw, event_errors)
        if ms is None and clean(raw) is None:
            event_errors.append("occurredTimestamp: required field is missing")
        elif ms is not None:
            if ms < 1_000_000_000:
                event_errors.append("occurredTimestamp: not milliseconds")
            elif ms < 100_000_000_000:
                event_errors.append("occurredTimestamp: looks like seconds")
            elif ms < MIN_MS:
                event_errors.append("occurredTimestamp: before 2000-01-01")
            elif ms > now_ms + DAY_MS:
                event_errors.append("occurredTimestamp: in the future")
        payload = {"mediaType": media_type, "sessionId": fields["sessionId"], "state": state, "occurredTimestamp": ms}
        payload.update((k, v) for k, v in fields.items() if k not in payload)
        out.append((state, {k: v for k, v in payload.items() if v is not None}, event_errors))
    return out


def check_baseline(path: str) -> dict[str, Any]:
    """Read, map, validate, dedupe and encode every row; count what ``check`` counts."""
    import pandas as pd

    now_ms = int(time.time() * 1000)
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    events: Counter[str] = Counter()
    invalid: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    duplicates = 0
    encoded_bytes = 0
    for number, (_, series) in enumerate(df.iterrows(), start=1):
        row = series.to_dict()
        for state, payload, errors in row_events(row, now_ms):
            if errors:
                invalid.append({"row_number": number, "state": state, "error": "; ".join(errors)})
                continue
            key = (payload["sessionId"], state)
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            encoded_bytes += len(json.dumps(payload))
            events[state] += 1
    return {
        "rows": len(df),
        "events": dict(events),
        "invalid": len(invalid),
        "duplicates": duplicates,
        "encoded_bytes": encoded_bytes,
    }
