"""/__sim/: events with filters, stats, reset, runtime configuration and the JSON Lines record."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from importer.simulator import Simulator, SimulatorClient
from importer.simulator import store as store_module

from .helpers import PERCENT, event, percent_event, post


def seed_events(sim: Simulator) -> None:
    bodies = [
        event(sessionId="a", state="STARTED", contactId=1),
        event(sessionId="a", state="VIEWED", contactId=1),
        event(sessionId="b", state="STARTED", contactId=2),
        event(sessionId="c", state="STARTED", contactId=None, contactUtk="utk-c"),
    ]
    for body in bodies:
        assert post(sim, body=body).status_code == 200
    assert post(sim, path=PERCENT, body=percent_event(sessionId="a", contactId=1)).status_code == 200


def sessions(records: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [(r["event"]["sessionId"], r["index"]) for r in records]  # type: ignore[index]


def test_event_filters(simulator: Simulator) -> None:
    seed_events(simulator)
    client = simulator.client
    assert sessions(client.events()) == [("a", 0), ("a", 1), ("b", 2), ("c", 3), ("a", 4)]
    assert sessions(client.events(sessionId="a")) == [("a", 0), ("a", 1), ("a", 4)]
    assert sessions(client.events(state="STARTED")) == [("a", 0), ("b", 2), ("c", 3)]
    assert sessions(client.events(contactId=2)) == [("b", 2)]
    resolved = client.events(sessionId="c")[0]["response"]["contactId"]
    assert sessions(client.events(contactId=resolved)) == [("c", 3)]  # contactUtk resolved to an id
    assert sessions(client.events(since=2)) == [("b", 2), ("c", 3), ("a", 4)]
    assert sessions(client.events(limit=2)) == [("a", 0), ("a", 1)]
    assert sessions(client.events(sessionId="a", since=1, limit=1)) == [("a", 1)]
    assert sessions(client.events(endpoint="media-played-percent")) == [("a", 4)]
    assert client.events(sessionId="zzz") == []


def test_client_pages_through_everything(simulator: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "DEFAULT_PAGE", 2)  # the server runs in this process
    seed_events(simulator)
    page = httpx.get(simulator.url + "/__sim/events").json()
    assert len(page["events"]) == 2 and page["next"] == 2 and page["total"] == 5
    assert [i for _, i in sessions(simulator.client.events())] == [0, 1, 2, 3, 4]
    assert [i for _, i in sessions(simulator.client.events(sessionId="a"))] == [0, 1, 4]


def test_bad_filters_are_refused(simulator: Simulator) -> None:
    assert httpx.get(simulator.url + "/__sim/events", params={"since": "x"}).status_code == 400
    with pytest.raises(ValueError, match="limit"):
        simulator.client.events(limit=0)


def test_stats_count_statuses_duplicates_and_requests(simulator: Simulator) -> None:
    post(simulator, body=event())
    post(simulator, body=event())  # the same play again: a duplicate
    post(simulator, body=event(occurredTimestamp=1))  # another play of the session
    post(simulator, body=event(state="NOPE"))
    post(simulator, token="wrong")
    stats = simulator.client.stats()
    assert stats["requests_total"] == 5
    assert stats["by_status"] == {"200": 3, "400": 1, "401": 1}
    assert stats["accepted_events"] == 3 and stats["duplicates"] == 1
    assert stats["duplicate_keys"] == [["media-played", "session-1", "STARTED", 1_700_000_000_000]]
    assert stats["in_flight"] == 0 and stats["max_in_flight"] == 1


def test_max_in_flight_sees_concurrency(make_simulator: Callable[..., Simulator]) -> None:
    sim = make_simulator(latency_ms=300, burst=0)
    threads = [threading.Thread(target=post, args=(sim,)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = sim.client.stats()
    assert stats["max_in_flight"] >= 4 and stats["accepted_events"] == 6


def test_reset_clears_events_and_stats(simulator: Simulator) -> None:
    seed_events(simulator)
    simulator.client.reset()
    stats = simulator.client.stats()
    assert simulator.client.events() == []
    assert stats["requests_total"] == 0 and stats["accepted_events"] == 0 and stats["by_status"] == {}
    post(simulator)
    assert sessions(simulator.client.events()) == [("session-1", 0)]


def test_inspection_needs_no_token_and_is_never_limited(make_simulator: Callable[..., Simulator]) -> None:
    sim = make_simulator(burst=1, window_ms=60_000, drop_rate=1.0)
    for _ in range(5):
        response = httpx.get(sim.url + "/__sim/stats")
        assert response.status_code == 200
        assert "X-HubSpot-RateLimit-Remaining" not in response.headers
    assert response.json()["requests_total"] == 0


def test_configure_at_runtime(simulator: Simulator) -> None:
    client = simulator.client
    config = client.configure(tokens={"ro": {"crm.objects.contacts.read"}, "rw": None}, portal_id=777)
    assert config["tokens"] == {"ro": ["crm.objects.contacts.read"], "rw": None}
    assert post(simulator, token="demo-token").status_code == 401
    assert post(simulator, token="ro").status_code == 403
    assert post(simulator, token="rw").json()["portalId"] == 777
    assert client.config()["portal_id"] == 777


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"brust": 5}, "did you mean 'burst'"),
        ({"error_rate": 2}, "error_rate must be between 0 and 1"),
        ({"error_rate": 0.6, "drop_rate": 0.6}, "add up to"),
        ({"burst": "ten"}, "burst must be int"),
        ({"port": 80}, "only be set before the server starts"),
        ({"client_id": "only-this"}, "OAuth needs"),
    ],
)
def test_configure_refuses_bad_settings(simulator: Simulator, changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        simulator.client.configure(**changes)
    assert simulator.client.config()["burst"] == 100  # nothing was half-applied


def test_record_file_mirrors_accepted_events(make_simulator: Callable[..., Simulator], tmp_path: Path) -> None:
    record = tmp_path / "events.jsonl"
    sim = make_simulator(record_path=str(record))
    seed_events(sim)
    post(sim, body=event(state="NOPE"))
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert lines == sim.client.events()
    sim.client.reset()
    assert record.read_text() == ""


def test_config_accepts_plain_sets_and_mixed_case_emails(make_simulator: Callable[..., Simulator]) -> None:
    sim = make_simulator(tokens={"t": {"media_bridge.write"}}, contacts={"Ann@Example.COM": 4})
    assert sim.config.tokens == {"t": frozenset({"media_bridge.write"})}
    assert sim.client.config()["contacts"] == {"ann@example.com": 4}


def test_standalone_client_against_a_running_server(simulator: Simulator) -> None:
    with SimulatorClient(simulator.url) as client:
        post(simulator)
        assert client.stats()["accepted_events"] == 1
