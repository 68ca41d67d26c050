"""Payload encoding: documented field names and order, nulls omitted, ints as integers, escaping."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pytest

from importer.mapping.encode import FIELD_ORDER, encode_payloads, json_string
from importer.mapping.plan import EVENT_SCHEMA

# Every request field of POST /media-bridge/v1/events/media-played, as HubSpot spells it.
DOCUMENTED = {
    "mediaType", "sessionId", "occurredTimestamp", "state", "contactId", "contactUtk", "_hsenc",
    "mediaBridgeId", "externalId", "mediaUrl", "mediaName", "pageId", "pageUrl", "pageName",
    "iframeUrl", "externalPlayContext",
}  # fmt: skip
# media-played-percent takes the same identifiers with playedPercent instead of state.
DOCUMENTED_PERCENT = (DOCUMENTED - {"state"}) | {"playedPercent"}
FULL: dict[str, Any] = {
    "mediaType": "VIDEO",
    "sessionId": "s-1",
    "state": "VIEWED",
    "occurredTimestamp": 1_735_689_600_123,
    "contactId": 9_223_372_036_854_775_807,
    "contactUtk": "utk",
    "_hsenc": "enc",
    "mediaBridgeId": 77,
    "externalId": "vid-1",
    "mediaUrl": "https://media.example.com/v/1",
    "mediaName": "Episode 1",
    "pageId": 5001,
    "pageUrl": "https://www.example.com/watch/1",
    "pageName": "Watch 1",
    "iframeUrl": "https://www.example.com/embed/1",
    "externalPlayContext": "EXTERNAL_PAGE",
}


def encode(*rows: dict[str, Any]) -> list[str]:
    payloads: list[str] = encode_payloads(pa.Table.from_pylist(list(rows), schema=EVENT_SCHEMA)).to_pylist()
    return payloads


def test_field_names_are_exactly_the_documented_ones() -> None:
    assert set(FIELD_ORDER) == DOCUMENTED | DOCUMENTED_PERCENT
    (payload,) = encode({**FULL, "_type": "played"})
    decoded = json.loads(payload)
    assert decoded == FULL
    assert list(decoded) == [f for f in FIELD_ORDER if f != "playedPercent"]
    assert list(FIELD_ORDER[:5]) == ["mediaType", "sessionId", "state", "playedPercent", "occurredTimestamp"]
    percent = {k: v for k, v in FULL.items() if k != "state"} | {"playedPercent": 50, "_type": "percent"}
    (payload,) = encode(percent)
    assert set(json.loads(payload)) == DOCUMENTED_PERCENT
    assert json.loads(payload)["playedPercent"] == 50


def test_exact_bytes_of_a_small_payload() -> None:
    (payload,) = encode(
        {"mediaType": "AUDIO", "sessionId": "a", "state": "STARTED", "occurredTimestamp": 1, "contactId": 2}
    )
    assert payload == '{"mediaType":"AUDIO","sessionId":"a","state":"STARTED","occurredTimestamp":1,"contactId":2}'


def test_nulls_are_omitted_per_row() -> None:
    payloads = encode(
        {"mediaType": "VIDEO", "sessionId": "a", "contactId": 1},
        {"sessionId": "b", "contactUtk": "u"},
        {},
    )
    assert [json.loads(p) for p in payloads] == [
        {"mediaType": "VIDEO", "sessionId": "a", "contactId": 1},
        {"sessionId": "b", "contactUtk": "u"},
        {},
    ]
    assert payloads[2] == "{}"


def test_events_without_any_field_are_empty_objects() -> None:
    assert encode({}, {}) == ["{}", "{}"]


def test_encoding_leaves_its_input_columns_as_they_were() -> None:
    # The opening brace is written into the join's own fresh buffer, never into a column's.
    events = pa.Table.from_pylist(
        [{"mediaType": "VIDEO", "sessionId": "a,b"}, {"sessionId": ",c"}], schema=EVENT_SCHEMA
    )
    before = events.to_pylist()
    assert encode_payloads(events).to_pylist() == ['{"mediaType":"VIDEO","sessionId":"a,b"}', '{"sessionId":",c"}']
    assert events.to_pylist() == before


def test_ints_are_json_integers() -> None:
    (payload,) = encode(FULL)
    assert '"occurredTimestamp":1735689600123,' in payload
    assert '"contactId":9223372036854775807,' in payload
    assert '"pageId":5001,' in payload
    decoded = json.loads(payload)
    assert all(type(decoded[k]) is int for k in ("occurredTimestamp", "contactId", "mediaBridgeId", "pageId"))


TRICKY = [
    'say "hi"',
    "back\\slash",
    "trailing \\",
    "new\nline\r\n",
    "tab\tand\x00nul\x1funit\x7fdel",
    "émoji 🎬 and 中文 and \u2028 separator",
    "</script>",
    "",
    " ",
]


@pytest.mark.parametrize("text", TRICKY)
def test_strings_round_trip(text: str) -> None:
    (payload,) = encode({"sessionId": text, "mediaName": text + "!", "contactId": 1})
    decoded = json.loads(payload)
    assert decoded == {"sessionId": text, "contactId": 1, "mediaName": text + "!"}


def test_json_string_mixes_plain_and_control_values() -> None:
    values = ["plain", "ctl\x01", None, 'q"', "nl\n"]
    out = json_string(pa.array(values, pa.string())).to_pylist()
    assert out[2] is None
    assert [json.loads(v) for v in out if v is not None] == [v for v in values if v is not None]
    assert out[0] == '"plain"'


def test_empty_table() -> None:
    assert encode_payloads(EVENT_SCHEMA.empty_table()).to_pylist() == []
