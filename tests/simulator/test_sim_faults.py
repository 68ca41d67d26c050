"""Fault injection as a client sees it, and the rule that a fault never records an event."""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from importer.clock import ManualClock
from importer.simulator import Simulator

from .helpers import PLAYED, auth, event, post


def statuses(sim: Simulator, count: int) -> list[int]:
    with httpx.Client(base_url=sim.url, headers=auth(sim.token)) as client:
        return [client.post(PLAYED, json=event(sessionId=f"s{i}")).status_code for i in range(count)]


def test_5xx_rate_is_roughly_honoured_and_seeded(make_simulator: Callable[..., Simulator]) -> None:
    sim = make_simulator(burst=0, error_rate=0.3, seed=11)
    first = statuses(sim, 300)
    counts = Counter(first)
    assert set(counts) <= {200, 500, 502, 503, 504}
    errors = 300 - counts[200]
    assert 60 <= errors <= 120, counts  # 30 % of 300, well inside the binomial spread
    assert len(set(counts) - {200}) >= 3  # a mix of statuses, not one
    assert sim.client.stats()["accepted_events"] == counts[200]
    assert len(sim.client.events()) == counts[200]
    sim.client.reset()  # same seed, same sequence
    assert statuses(sim, 300) == first
    other = make_simulator(burst=0, error_rate=0.3, seed=12)
    assert statuses(other, 300) != first


def test_gateway_errors_are_not_json(make_simulator: Callable[..., Simulator]) -> None:
    sim = make_simulator(burst=0, error_rate=1.0, seed=3)
    with httpx.Client(base_url=sim.url, headers=auth(sim.token)) as client:
        answers = [client.post(PLAYED, json=event()) for _ in range(40)]
    types = {r.status_code: r.headers["content-type"] for r in answers}
    assert types[502].startswith("text/html") and types[500].startswith("application/json")


def test_dropped_connection_is_a_transport_error(make_simulator: Callable[..., Simulator]) -> None:
    sim = make_simulator(drop_rate=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        post(sim)
    # On the wire: not a single byte comes back before the close.
    host, port = sim.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        body = b'{"mediaType":"VIDEO"}'
        raw.sendall(
            b"POST " + PLAYED.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer demo-token\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        )
        assert raw.recv(1024) == b""
    stats = sim.client.stats()
    assert stats["faults"]["dropped"] == 2 and stats["accepted_events"] == 0 and stats["by_status"] == {}


def test_slow_answer_times_out_and_records_nothing(make_simulator: Callable[..., Simulator]) -> None:
    clock = ManualClock()
    sim = make_simulator(slow_rate=1.0, slow_ms=500, clock=clock)
    with pytest.raises(httpx.ReadTimeout):
        post(sim, timeout=httpx.Timeout(5.0, read=0.1))
    assert sim.client.stats()["faults"]["slow"] == 1  # held until the simulator's clock moves
    clock.advance(0.5)  # past slow_ms: the server looks again and finds the client gone
    stats = _eventually(sim, lambda s: s["abandoned"] == 1)
    assert stats["faults"]["slow"] == 1 and stats["abandoned"] == 1
    assert stats["accepted_events"] == 0 and sim.client.events() == []


def _eventually(sim: Simulator, done: Callable[[dict[str, Any]], bool], within_s: float = 10.0) -> dict[str, Any]:
    """The simulator's stats once ``done`` holds for them (the server thread gets there on its own)."""
    deadline = time.monotonic() + within_s
    while True:
        stats = sim.client.stats()
        if done(stats) or time.monotonic() > deadline:
            return stats
        time.sleep(0.01)


def test_a_patient_client_gets_the_slow_200_and_it_is_recorded(make_simulator: Callable[..., Simulator]) -> None:
    sim = make_simulator(slow_rate=1.0, slow_ms=300)
    started = time.monotonic()
    response = post(sim, timeout=5)
    assert response.status_code == 200 and time.monotonic() - started >= 0.3
    assert len(sim.client.events()) == 1


def test_latency_and_jitter(make_simulator: Callable[..., Simulator]) -> None:
    sim = make_simulator(latency_ms=80, jitter_ms=40, seed=1)
    with httpx.Client(base_url=sim.url, headers=auth(sim.token)) as client:
        for _ in range(3):
            started = time.monotonic()
            assert client.post(PLAYED, json=event()).status_code == 200
            assert time.monotonic() - started >= 0.08


def test_429_storms_come_and_go(make_simulator: Callable[..., Simulator]) -> None:
    clock = ManualClock()
    sim = make_simulator(burst=0, storm_every_s=1.0, storm_duration_s=0.5, retry_after_on_429=True, clock=clock)
    sim.client.configure(storm_every_s=1.0)  # restarts the storm schedule: calm for the first second

    def at(offset: float) -> httpx.Response:
        clock.advance(offset - clock.monotonic())
        return post(sim, body=event(sessionId=f"at-{offset}"))

    calm, storm, after = at(0.1), at(1.2), at(1.75)
    assert calm.status_code == 200 and after.status_code == 200
    assert storm.status_code == 429
    assert storm.json()["policyName"] == "TEN_SECONDLY_ROLLING" and storm.json()["errorType"] == "RATE_LIMIT"
    assert int(storm.headers["Retry-After"]) >= 1
    stats = sim.client.stats()
    assert stats["faults"]["storm"] == 1 and stats["rate_limited"]["TEN_SECONDLY_ROLLING"] == 1
    assert [e["event"]["sessionId"] for e in sim.client.events()] == ["at-0.1", "at-1.75"]


@pytest.mark.parametrize(("rate", "status"), [("locked_rate", 423), ("migration_rate", 477)])
def test_423_and_477_with_optional_retry_after(
    make_simulator: Callable[..., Simulator], rate: str, status: int
) -> None:
    sim = make_simulator(**{rate: 1.0})
    plain = post(sim)
    assert plain.status_code == status and "Retry-After" not in plain.headers
    sim.client.configure(fault_retry_after_s=3)
    with_header = post(sim)
    assert with_header.status_code == status and with_header.headers["Retry-After"] == "3"
    assert sim.client.events() == []


def test_faults_never_record_events(make_simulator: Callable[..., Simulator]) -> None:
    sim = make_simulator(
        burst=0,
        seed=5,
        error_rate=0.25,
        drop_rate=0.25,
        slow_rate=0.2,
        slow_ms=200,
        locked_rate=0.15,
        migration_rate=0.15,
    )
    outcomes: Counter[str] = Counter()
    with httpx.Client(base_url=sim.url, headers=auth(sim.token), timeout=httpx.Timeout(5.0, read=0.05)) as client:
        for i in range(60):
            try:
                outcomes[str(client.post(PLAYED, json=event(sessionId=f"s{i}")).status_code)] += 1
            except httpx.TransportError as exc:
                outcomes[type(exc).__name__] += 1
    _eventually(sim, lambda s: s["in_flight"] == 0)  # the slow answers have looked for their client
    assert "200" not in outcomes and outcomes["ReadTimeout"] > 0 and outcomes["RemoteProtocolError"] > 0
    stats = sim.client.stats()
    assert sum(stats["faults"].values()) == 60
    assert stats["accepted_events"] == 0 and sim.client.events() == []
