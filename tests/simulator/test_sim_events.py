"""media-played and media-played-percent: the 200 echo, every 400 rule, 401, 403, 404, 415."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from importer.simulator import Simulator

from .helpers import (
    CONTACTS,
    DAILY_HEADERS,
    LIMIT_HEADERS,
    PERCENT,
    PLAYED,
    TOKEN_URL,
    assert_error_shape,
    auth,
    event,
    percent_event,
    post,
)

RESPONSE_FIELDS = {
    "contactId",
    "mediaBridgeId",
    "mediaBridgeObjectCoordinates",
    "mediaBridgeObjectTypeId",
    "mediaName",
    "mediaType",
    "occurredTimestamp",
    "portalId",
    "providerId",
    "sessionId",
    "state",
}


def test_200_echoes_the_event_with_the_documented_fields(simulator: Simulator) -> None:
    sent = event(
        contactId=7,
        mediaBridgeId=99,
        externalId=None,
        mediaName="Intro",
        mediaUrl="https://x.test/v.mp4",
        pageId=55,
        iframeUrl="https://x.test/embed",
        externalPlayContext="EMAIL",
        state="VIEWED",
    )
    response = post(simulator, body=sent)
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= RESPONSE_FIELDS
    assert body["contactId"] == 7 and body["mediaBridgeId"] == 99
    assert body["portalId"] == 12345 and body["state"] == "VIEWED" and body["mediaName"] == "Intro"
    assert body["occurredTimestamp"] == sent["occurredTimestamp"] and body["sessionId"] == "session-1"
    for optional in ("externalPlayContext", "iframeUrl", "mediaUrl", "pageId"):
        assert body[optional] == sent[optional]
    assert "pageObjectCoordinates" in body and "pageUrl" not in body
    recorded = simulator.client.events()
    assert [r["event"] for r in recorded] == [sent] and recorded[0]["response"] == body


def test_string_identifiers_resolve_to_stable_ids(simulator: Simulator) -> None:
    sent = event(contactId=None, contactUtk="utk-abc", externalId="media-9")
    first, second = post(simulator, body=sent).json(), post(simulator, body=sent).json()
    assert isinstance(first["contactId"], int) and isinstance(first["mediaBridgeId"], int)
    assert (first["contactId"], first["mediaBridgeId"]) == (second["contactId"], second["mediaBridgeId"])
    other = post(simulator, body=event(contactId=None, contactUtk="utk-other")).json()
    assert other["contactId"] != first["contactId"]


@pytest.mark.parametrize(
    "body",
    [
        event(contactId=None, contactUtk="utk-1"),
        event(contactId=5, contactUtk="utk-1"),
        event(externalId=None, mediaBridgeId=3),
        event(pageId=12),
        event(pageUrl="https://x.test/p", pageName="P"),
        event(pageId=12, pageUrl="https://x.test/p"),  # pageId wins, no pageName needed
        event(mediaUrl=None, mediaName=None, iframeUrl=None),
        {**event(), "mediaUrl": None, "pageId": None},  # null is an absent field
        event(mediaType="IMAGE", state="VIEWED", externalPlayContext="EXTERNAL_PAGE", _hsenc="enc"),
        event(occurredTimestamp=2**63 - 1),
    ],
)
def test_valid_identifier_combinations_are_accepted(simulator: Simulator, body: dict[str, Any]) -> None:
    response = post(simulator, body=body)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (event(mediaType=None), "REQUIRED", "mediaType"),
        (event(sessionId=None), "REQUIRED", "sessionId"),
        (event(occurredTimestamp=None), "REQUIRED", "occurredTimestamp"),
        (event(state=None), "REQUIRED", "state"),
        (event(mediaType="MOVIE"), "INVALID_ENUM", "mediaType"),
        (event(mediaType="video"), "INVALID_ENUM", "mediaType"),
        (event(state="ENDED"), "INVALID_ENUM", "state"),
        (event(externalPlayContext="SMS"), "INVALID_ENUM", "externalPlayContext"),
        (event(contactId="101"), "INVALID_TYPE", "contactId"),
        (event(contactId=101.0), "INVALID_TYPE", "contactId"),
        (event(contactId=True), "INVALID_TYPE", "contactId"),
        (event(mediaBridgeId="9"), "INVALID_TYPE", "mediaBridgeId"),
        (event(pageId=1.5), "INVALID_TYPE", "pageId"),
        (event(occurredTimestamp="1700000000000"), "INVALID_TYPE", "occurredTimestamp"),
        (event(occurredTimestamp=1.7e12), "INVALID_TYPE", "occurredTimestamp"),
        (event(occurredTimestamp=2**63), "INVALID_TYPE", "occurredTimestamp"),
        (event(sessionId=123), "INVALID_TYPE", "sessionId"),
        (event(sessionId="  "), "INVALID_VALUE", "sessionId"),
        (event(pageUrl="", pageName="P"), "INVALID_VALUE", "pageUrl"),
        (event(contactId=None, contactUtk=""), "INVALID_VALUE", "contactUtk"),
        (event(mediaUrl=["a"]), "INVALID_TYPE", "mediaUrl"),
        (event(color="red"), "UNKNOWN_FIELD", "color"),
        (event(playedPercent=50), "UNKNOWN_FIELD", "playedPercent"),
        (event(contactId=None), "MISSING_CONTACT", "contactId"),
        (event(externalId=None), "MISSING_MEDIA", "mediaBridgeId"),
        (event(pageUrl="https://x.test/p"), "INCOMPLETE_PAGE", "pageName"),
        (event(pageName="P"), "INCOMPLETE_PAGE", "pageUrl"),
    ],
)
def test_400_names_the_rule_and_the_field(simulator: Simulator, body: dict[str, Any], code: str, field: str) -> None:
    response = post(simulator, body=body)
    assert response.status_code == 400
    payload = response.json()
    assert_error_shape(payload, "VALIDATION_ERROR")
    assert [(e["code"], e["context"]["field"]) for e in payload["errors"]] == [(code, [field])]
    assert all(isinstance(e["message"], str) and e["message"] for e in payload["errors"])
    assert response.headers["X-HubSpot-Correlation-Id"] == payload["correlationId"]
    assert simulator.client.events() == []


def test_every_problem_of_an_event_is_reported(simulator: Simulator) -> None:
    body = {"state": "X", "contactId": "1", "pageUrl": "u", "extra": 1}
    codes = sorted(e["code"] for e in post(simulator, body=body).json()["errors"])
    assert codes == sorted(
        ["INVALID_ENUM", "INVALID_TYPE", "INCOMPLETE_PAGE", "UNKNOWN_FIELD", "MISSING_MEDIA"] + ["REQUIRED"] * 3
    )


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_400(simulator: Simulator, content: bytes) -> None:
    response = httpx.post(
        simulator.url + PLAYED, content=content, headers={**auth(simulator.token), "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "INVALID_JSON"


def test_a_body_that_is_not_json_content_is_415(simulator: Simulator) -> None:
    response = httpx.post(simulator.url + PLAYED, data={"a": "b"}, headers=auth(simulator.token))
    assert response.status_code == 415


@pytest.mark.parametrize(
    "headers",
    [{}, auth("wrong-token"), {"Authorization": "Basic ZGVtby10b2tlbg=="}, {"Authorization": "Bearer"}],
)
def test_401_without_a_valid_token(simulator: Simulator, headers: dict[str, str]) -> None:
    response = httpx.post(simulator.url + PLAYED, json=event(), headers=headers)
    assert response.status_code == 401
    assert_error_shape(response.json(), "INVALID_AUTHENTICATION")
    assert simulator.client.events() == []


def test_403_names_the_missing_scope(make_simulator: Callable[..., Simulator]) -> None:
    sim = make_simulator(tokens={"reader": frozenset({"crm.objects.contacts.read"}), "writer": None})
    response = post(sim, body=event(), token="reader")
    assert response.status_code == 403
    body = response.json()
    assert_error_shape(body, "MISSING_SCOPES")
    assert "media_bridge.write" in body["message"]
    assert body["errors"][0]["context"]["requiredGranularScopes"] == ["media_bridge.write"]
    assert sim.client.events() == []
    assert post(sim, body=event(), token="writer").status_code == 200


def test_unknown_path_is_404_and_wrong_method_405(simulator: Simulator) -> None:
    assert post(simulator, path="/media-bridge/v2/events/media-played").status_code == 404
    assert httpx.get(simulator.url + PLAYED, headers=auth(simulator.token)).status_code == 405


def test_every_answer_carries_the_rate_limit_headers(make_simulator: Callable[..., Simulator]) -> None:
    sim = make_simulator(burst=3, window_ms=60_000, daily=1000, tokens={"t": None, "ro": frozenset()})
    responses = [
        post(sim, body=event(), token="t"),  # 200
        post(sim, body=event(state="NOPE"), token="t"),  # 400
        post(sim, body=event(), token="nope"),  # 401
        post(sim, body=event(), token="ro"),  # 403
        post(sim, path="/nowhere", token="t"),  # 404
        post(sim, path=CONTACTS, body={"inputs": []}, token="t"),  # 200, fills the window
        post(sim, body=event(), token="t"),  # 429
        httpx.post(sim.url + TOKEN_URL, data={"grant_type": "refresh_token"}),  # 400 from OAuth
    ]
    assert [r.status_code for r in responses] == [200, 400, 401, 403, 404, 200, 429, 400]
    for response in responses:
        for name in LIMIT_HEADERS + DAILY_HEADERS:
            assert name in response.headers, (response.status_code, name)
    assert [r.headers["X-HubSpot-RateLimit-Remaining"] for r in responses[:3]] == ["2", "1", "1"]
    assert responses[0].headers["X-HubSpot-RateLimit-Max"] == "3"
    assert responses[0].headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "60000"
    assert responses[0].headers["X-HubSpot-RateLimit-Daily-Remaining"] == "999"


def test_daily_headers_only_with_a_daily_limit(simulator: Simulator) -> None:
    response = post(simulator)
    assert all(name in response.headers for name in LIMIT_HEADERS)
    assert not any(name in response.headers for name in DAILY_HEADERS)


def test_media_played_percent(simulator: Simulator) -> None:
    ok = post(simulator, path=PERCENT, body=percent_event(playedPercent=75))
    assert ok.status_code == 200
    assert ok.json()["playedPercent"] == 75 and "state" not in ok.json()
    for bad, code in [
        (percent_event(playedPercent=30), "INVALID_VALUE"),
        (percent_event(playedPercent="50"), "INVALID_VALUE"),
        (percent_event(playedPercent=50.0), "INVALID_VALUE"),
        (percent_event(playedPercent=None), "REQUIRED"),
        (percent_event(state="STARTED"), "UNKNOWN_FIELD"),
        (percent_event(externalId=None), "MISSING_MEDIA"),
    ]:
        response = post(simulator, path=PERCENT, body=bad)
        assert response.status_code == 400
        assert [e["code"] for e in response.json()["errors"]] == [code]
    post(simulator, body=event())
    recorded = simulator.client.events(endpoint="media-played-percent")
    assert [r["event"]["playedPercent"] for r in recorded] == [75]
    assert simulator.client.stats()["accepted_events"] == 2
