"""Helpers for the sender tests: generated inputs and the events they should produce, scripted
HubSpot answers for ``httpx.MockTransport``, and reading what a run wrote."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
from support import (
    Key,
    Ran,
    accepted,
    assert_exactly_once,
    generator,
    key_of,
    results_rows,
    seed_sample_media,
    summary_of,
)

from importer.clock import Clock
from importer.hubspot.sender import RetryPolicy
from importer.simulator import Simulator
from importer.state.summary import RunSummary

REPO = Path(__file__).resolve().parents[2]
MAPPING = REPO / "mappings" / "generic.yaml"
PLAYED = "/media-bridge/v1/events/media-played"

# Defects of sample_data/generate.py that spoil only the STARTED event (its timestamp): the
# row's VIEWED event is still valid. Every other defect spoils both events of the row.
STARTED_ONLY_DEFECTS = {"bad timestamp", "timestamp before 2000"}


class Input:
    """A generated canonical-schema file and the (sessionId, state) pairs the mapping makes of it."""

    def __init__(self, path: Path, rows: int, *, seed: int = 1, invalid_every: int = 0, prefix: str = "s") -> None:
        gen = generator()
        table = gen.canonical(rows, seed=seed, invalid_every=invalid_every, prefix=prefix)
        gen.write(table, path)
        self.path = path
        self.valid: set[Key] = set()
        self.invalid: set[Key] = set()
        sessions = table.column("session_id").to_pylist()
        viewed = table.column("viewed_at").to_pylist()
        for i, (session, viewed_at) in enumerate(zip(sessions, viewed, strict=True)):
            defect = None
            if invalid_every and i % invalid_every == invalid_every - 1:
                defect = gen.INVALID_KINDS[(i // invalid_every) % len(gen.INVALID_KINDS)]
            (self.invalid if defect else self.valid).add((session, "STARTED"))
            if viewed_at:
                bad = defect is not None and defect not in STARTED_ONLY_DEFECTS
                (self.invalid if bad else self.valid).add((session, "VIEWED"))


def journal_statuses(state_dir: Path) -> Counter[str]:
    db = sqlite3.connect(state_dir / "journal.sqlite")
    try:
        return Counter({status: n for status, n in db.execute("SELECT status, COUNT(*) FROM events GROUP BY status")})
    finally:
        db.close()


# ---- scripted answers for httpx.MockTransport ------------------------------------------------


def echo(request: httpx.Request, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    """HubSpot's 200: the event echoed back with a few server fields."""
    body = json.loads(request.content)
    return httpx.Response(status, json={**body, "portalId": 1, "providerId": 2}, headers=headers)


def error(status: int, message: str = "boom", headers: dict[str, str] | None = None, **fields: Any) -> httpx.Response:
    body = {"status": "error", "message": message, "correlationId": "c0ffee00-0000-4000-8000-000000000001", **fields}
    return httpx.Response(status, json=body, headers=headers)


Step = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class Script:
    """A MockTransport handler answering event requests with ``steps`` in order, then echoing 200s.

    A step is a response, an exception to raise (``httpx.ReadTimeout`` ...), or a function of the
    request. OAuth token requests are answered by ``oauth`` (a fresh ``tok-N`` each time).
    Every request is kept in ``requests`` (events) and ``token_requests``.
    """

    def __init__(self, *steps: Step, then: Callable[[httpx.Request], httpx.Response] = echo) -> None:
        self.steps = list(steps)
        self.then = then
        self.requests: list[httpx.Request] = []
        self.token_requests: list[httpx.Request] = []
        self.oauth_answers: list[httpx.Response] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v1/token":
            self.token_requests.append(request)
            if self.oauth_answers:
                return self.oauth_answers.pop(0)
            return httpx.Response(200, json={"access_token": f"tok-{len(self.token_requests)}", "expires_in": 1800})
        self.requests.append(request)
        if not self.steps:
            return self.then(request)
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            if isinstance(step, httpx.RequestError):
                step.request = request
            raise step
        if isinstance(step, httpx.Response):
            return step
        return step(request)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def bearer_tokens(self) -> list[str]:
        return [r.headers["authorization"].removeprefix("Bearer ") for r in self.requests]


def payload(session: str = "sess-1", state: str = "STARTED", **extra: Any) -> bytes:
    body = {
        "mediaType": "VIDEO",
        "sessionId": session,
        "state": state,
        "occurredTimestamp": 1_735_689_600_000,
        "contactId": 101,
        "externalId": "vid-1",
        **extra,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def all_bytes_under(root: Path) -> Iterable[tuple[Path, bytes]]:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield path, path.read_bytes()


__all__ = ["Key", "Ran", "accepted", "assert_exactly_once", "generator", "key_of", "results_rows", "summary_of"]


def run_on_clock(state: Path, sim: Simulator, data_path: Path, clock: Clock, **options: object) -> RunSummary:
    """``Runner.run`` in this process on ``clock`` (the simulator's), with ``RunOptions`` fields set."""
    from importer.hubspot.auth import Credentials
    from importer.mapping.spec import load_mapping
    from importer.run.options import MediaOptions, RunOptions
    from importer.run.pipeline import Pipeline
    from importer.run.runner import Runner

    credentials = options.pop("credentials", None) or Credentials(sim.token)
    assert isinstance(credentials, Credentials)
    # These runs are about pacing: the media objects exist in the account, and no media sync runs.
    if not options.pop("media_sync", False):
        seed_sample_media(sim)
        options["media"] = MediaOptions(sync=False)
    opts = RunOptions(base_url=sim.url, state_dir=str(state), clock=clock)
    for name, value in options.items():
        assert hasattr(opts, name), name
        setattr(opts, name, value)
    results = state.parent / f"{state.name}-results.csv"
    return Runner(opts, credentials, results).run(Pipeline(load_mapping(str(MAPPING)), [str(data_path)]))


def run_scripted(tmp_path: Path, data: Input, script: Script, retry: RetryPolicy, results: Path) -> RunSummary:
    """``Runner.run`` in this process against ``script`` (events only: no media sync), state in
    ``tmp_path / "state"``, with the retry policy ``retry``."""
    from importer.hubspot.auth import Credentials
    from importer.mapping.spec import load_mapping
    from importer.run.options import MediaOptions, RunOptions
    from importer.run.pipeline import Pipeline
    from importer.run.runner import Runner

    options = RunOptions(
        base_url="https://api.hubapi.com",
        state_dir=str(tmp_path / "state"),
        rate=None,
        retry=retry,
        transport=script.transport,
        media=MediaOptions(sync=False),  # the script answers events only; media sync has tests of its own
    )
    return Runner(options, Credentials("pat-na1-scripted-test"), results).run(
        Pipeline(load_mapping(str(MAPPING)), [str(data.path)])
    )
