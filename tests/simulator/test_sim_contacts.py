"""POST /crm/v3/objects/contacts/batch/read: 200, 207, 400 over 100 inputs, scopes, limits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from importer.simulator import Simulator

from .helpers import CONTACTS, assert_error_shape, post

KNOWN = {"ann@example.com": 11, "bob@example.com": 12}


@pytest.fixture
def sim(make_simulator: Callable[..., Simulator]) -> Simulator:
    return make_simulator(contacts=KNOWN, tokens={"all": None, "writer": frozenset({"media_bridge.write"})})


def read(sim: Simulator, ids: list[str], token: str = "all", **extra: Any) -> Any:
    body = {"idProperty": "email", "inputs": [{"id": i} for i in ids], "properties": ["email"], **extra}
    return post(sim, path=CONTACTS, body=body, token=token)


def test_200_when_every_email_is_found(sim: Simulator) -> None:
    response = read(sim, ["ann@example.com", "BOB@Example.com"])
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "COMPLETE" and "errors" not in body
    found = {r["properties"]["email"]: r["id"] for r in body["results"]}
    assert found == {"ann@example.com": "11", "bob@example.com": "12"}


def test_207_lists_the_emails_not_found(sim: Simulator) -> None:
    response = read(sim, ["ann@example.com", "nobody@example.com", "ghost@example.com"])
    assert response.status_code == 207
    body = response.json()
    assert [r["id"] for r in body["results"]] == ["11"]
    assert body["numErrors"] == 1
    assert body["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert body["errors"][0]["context"]["ids"] == ["nobody@example.com", "ghost@example.com"]


def test_lookup_by_contact_id_without_id_property(sim: Simulator) -> None:
    response = post(sim, path=CONTACTS, body={"inputs": [{"id": "12"}, {"id": "99"}]}, token="all")
    assert response.status_code == 207
    assert [r["properties"]["email"] for r in response.json()["results"]] == ["bob@example.com"]


def test_at_most_100_inputs(sim: Simulator) -> None:
    assert read(sim, [f"u{i}@example.com" for i in range(100)]).status_code == 207
    response = read(sim, [f"u{i}@example.com" for i in range(101)])
    assert response.status_code == 400
    assert_error_shape(response.json(), "VALIDATION_ERROR")
    assert "101" in response.json()["message"]


@pytest.mark.parametrize(
    "body",
    [{"idProperty": "email"}, {"inputs": [{"email": "x"}]}, {"inputs": "x"}, {"inputs": [], "idProperty": "phone"}],
)
def test_malformed_bodies_are_400(sim: Simulator, body: dict[str, Any]) -> None:
    assert post(sim, path=CONTACTS, body=body, token="all").status_code == 400


def test_needs_the_contacts_read_scope(sim: Simulator) -> None:
    response = read(sim, ["ann@example.com"], token="writer")
    assert response.status_code == 403
    assert_error_shape(response.json(), "MISSING_SCOPES")
    assert "crm.objects.contacts.read" in response.json()["message"]
    assert read(sim, ["ann@example.com"], token="wrong").status_code == 401


def test_rate_limited_like_the_rest(make_simulator: Callable[..., Simulator]) -> None:
    sim = make_simulator(contacts=KNOWN, burst=1, window_ms=60_000)
    assert read(sim, ["ann@example.com"], token=sim.token).status_code == 200
    limited = read(sim, ["ann@example.com"], token=sim.token)
    assert limited.status_code == 429 and limited.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert sim.client.stats()["accepted_events"] == 0  # lookups are not events
